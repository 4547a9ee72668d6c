"""Peer-suite gate: langchain-anthropic's own integration tests, run against the emulator.

Downloads the sdist of the installed langchain-anthropic release from PyPI (``pip
download --no-deps --no-binary :all:``), starts the emulator in a process of its own,
runs the sdist's ``tests/integration_tests`` with ``ANTHROPIC_BASE_URL`` pointing at
it (VCR cassettes disabled, so every request reaches the emulator), and prints the
failures counted by cause. The only causes allowed are the named ones below:

- ``needs a real model's judgement``: the test asserts what a model decides or says
  (whether to call a tool, the arguments it picks, the words of its answer); the
  emulator answers deterministic placeholders. Each such test is named here, why.
- ``needs the network``: the test fetches an image or PDF from the internet, which
  this machine cannot reach (the error names the host).
- ``needs the LangChain monorepo``: the test reads a file that only the monorepo has.
- ``needs a VCR cassette``: the test times the replay of a recorded cassette.
- ``beta feature not emulated``: named beta features the emulator does not implement.

Anything else (a wrong shape, a 400 the API would not send, a missing 400, a crash)
is ``emulator defect`` and makes the gate fail (exit 1).

    python benchmarks/peer_suite.py [--keep DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _emulator import start_emulator

JUDGEMENT = {
    "test_tool_use": "the model must choose to call a tool for a weather question",
    "test_async_tool_use": "the model must choose to call a tool for a weather question",
    "test_builtin_tools_text_editor": "the model must choose the text editor tool",
    "test_builtin_tools_computer_use": "the model must choose to take a screenshot",
    "test_response_format_in_agent": "the agent's model must choose to call a tool",
    "test_strict_tool_use": "the model must choose to call a tool",
    "test_agent_loop": "the model must choose a tool, then answer from its result",
    "test_agent_loop_streaming": "the model must choose a tool, then answer from its result",
    "test_agent_loop_streaming_astream_events_v3_v1": "the model must choose a tool",
    "test_citations": "the model must decide to cite the document",
    "test_structured_output_thinking_enabled": "with thinking the tool is not forced: the model picks it",
    "test_web_search": "the model must choose to search",
    "test_web_fetch": "the model must choose to fetch",
    "test_web_fetch_v1": "the model must choose to fetch",
    "test_code_execution_old": "the model must choose to run code",
    "test_code_execution": "the model must choose to run code",
    "test_search_result_tool_message": "the model must decide to cite the search result",
    "test_search_result_top_level": "the model must decide to cite the search result",
    "test_memory_tool": "the model must choose the memory tool",
    "test_tool_search": "the model must choose to search its tools",
    "test_programmatic_tool_use": "the model must choose to call a tool from code",
    "test_programmatic_tool_use_streaming": "the model must choose to call a tool from code",
    "test_fine_grained_tool_streaming": "the model must choose to call a tool",
    "test_streaming_tool_call_v1_v2_parity": "the arguments must be what the text says (name and age)",
    "test_tool_calling": "the arguments must be what the question asks (3, not a placeholder)",
    "test_tool_calling_async": "the arguments must be what the question asks",
    "test_unicode_tool_call_integration": "the arguments must carry the Unicode name asked for",
    "test_skills": "the model must choose to use a skill in its container",
    "test_remote_mcp": "the model must choose to call the remote MCP server's tool",
    "test_system_tool_addition": "the model must choose the tool a system message added",
}
#: Tests that measure the recorded cassette, not the server: nothing to run with VCR off.
NEEDS_CASSETTE = {"test_stream_time": "times the replay of its VCR cassette"}
_COMPACTION = "context compaction (beta compact-2026-01-12): no compaction block is produced"
BETA_NOT_EMULATED = {"test_compaction": _COMPACTION, "test_compaction_streaming": _COMPACTION}
_NETWORK = ("Name or service not known", "NameResolutionError", "Failed to resolve", "nodename nor servname")


def _base(name: str) -> str:
    return name.split("[", 1)[0]


def cause(name: str, message: str) -> tuple[str, str]:
    """``(cause, why)`` of one failure."""
    base = _base(name)
    if any(marker in message for marker in _NETWORK):
        return "needs the network", message.split("\n", 1)[0][:120]
    if "FileNotFoundError" in message and "README.md" in message:
        return "needs the LangChain monorepo", "reads README.md from the monorepo root"
    if base in JUDGEMENT:
        return "needs a real model's judgement", JUDGEMENT[base]
    if base in NEEDS_CASSETTE:
        return "needs a VCR cassette", NEEDS_CASSETTE[base]
    if base in BETA_NOT_EMULATED:
        return "beta feature not emulated", BETA_NOT_EMULATED[base]
    return "emulator defect", message.split("\n", 1)[0][:200]


def _sdist(version: str, into: Path) -> Path:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "-q",
            "-d",
            str(into),
            f"langchain-anthropic=={version}",
        ],
        check=True,
    )
    archive = next(into.glob("langchain_anthropic-*.tar.gz"))
    with tarfile.open(archive) as tar:
        tar.extractall(into, filter="data")
    return into / archive.name.removesuffix(".tar.gz")


def run(workdir: Path) -> int:
    version = importlib.metadata.version("langchain-anthropic")
    source = _sdist(version, workdir)
    proc, base_url = start_emulator("--batch-latency", "0.1")
    report = workdir / "junit.xml"
    env = {
        **os.environ,
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-peer-suite",
    }
    try:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "tests/integration_tests",
                "-q",
                "-p",
                "no:cacheprovider",
                "-o",
                "addopts=",
                "--timeout",
                "120",
                "--disable-recording",
                f"--junitxml={report}",
            ],
            cwd=source,
            env=env,
            check=False,
            stdout=subprocess.DEVNULL,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    counts: Counter[str] = Counter()
    lines: list[str] = []
    for case in ET.parse(report).iter("testcase"):
        outcome = next((c for c in case if c.tag in ("failure", "error", "skipped")), None)
        if outcome is None:
            counts["passed"] += 1
        elif outcome.tag == "skipped":
            counts["skipped"] += 1
        else:
            kind, why = cause(case.get("name", ""), (outcome.get("message") or "") + (outcome.text or ""))
            counts[kind] += 1
            lines.append(f"  {kind:32} {case.get('name')}: {why}")
    print(f"langchain-anthropic {version} integration tests against the emulator ({base_url})")
    for kind, n in sorted(counts.items(), key=lambda kv: -kv[1]):
        print(f"{n:5}  {kind}")
    print("\n".join(sorted(lines)))
    return 1 if counts["emulator defect"] else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--keep", type=Path, help="work in this directory and keep it")
    args = parser.parse_args()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        return run(args.keep)
    with tempfile.TemporaryDirectory(prefix="peer-suite-") as tmp:
        return run(Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
