"""The command line as a whole: what every command shares."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `llm-policy schema | head -1`: the reader closes the pipe before the command has
    # written (here: before it starts); the command ends without a traceback.
    schema = subprocess.Popen(
        [sys.executable, "-m", "engine", "schema"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert schema.stdout is not None and schema.stderr is not None
    schema.stdout.close()
    err = schema.stderr.read().decode()
    assert schema.wait(timeout=60) == 0
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_no_command_prints_the_commands_and_exits_2() -> None:
    done = subprocess.run([sys.executable, "-m", "engine"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2
    for command in ("validate", "explain", "emulator", "publish", "disable", "demo", "bench", "plan"):
        assert command in done.stderr


def test_version_names_the_installed_package() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "engine", "--version"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("llm-policy ")


def test_the_exit_codes_are_the_documented_ones() -> None:
    from engine.cli import EXIT_CONFLICT, EXIT_INVALID, EXIT_OK, EXIT_UNAVAILABLE, EXIT_USAGE

    table = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8").split("## Exit codes", 1)[1]
    documented = [
        int(line.split("|")[1])
        for line in table.splitlines()
        if line[:4] in ("| 0 ", "| 1 ", "| 2 ", "| 3 ", "| 4 ")
    ]
    assert (
        documented == [EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_CONFLICT, EXIT_UNAVAILABLE] == [0, 1, 2, 3, 4]
    )


def test_every_command_takes_format_json() -> None:
    import argparse

    from engine.cli import build_parser

    parser = build_parser()
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    without = {
        name
        for name, command in sub.choices.items()
        if not any("--format" in a.option_strings and "json" in (a.choices or ()) for a in command._actions)
    }
    assert without <= {"demo", "bench"}, without  # the demo and the benchmark write reports of their own


def test_the_readme_store_walkthrough_runs_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shlex

    from engine.cli import main

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("## Store", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("LLM_POLICY_STORE", f"sqlite:///{tmp_path / 'policies.db'}")
    for line in block.splitlines():
        argv = shlex.split(line.split("#", 1)[0])
        if argv[0] == "export":
            monkeypatch.setenv(*argv[1].split("=", 1))
            continue
        assert argv[0] == "llm-policy"
        assert main(argv[1:]) == 0, (line, capsys.readouterr().err)
    assert "* indexing-batch-cache" in capsys.readouterr().out
