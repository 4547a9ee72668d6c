"""``plan``, ``recommend`` and ``report`` on small traces built here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main
from engine.plan import TraceRecord, record_from_payload, write_trace
from engine.policy import load_policy

SYSTEM = "Extract the metadata as the schema says. " * 150  # ~1,500 tokens: above the 1,024 minimum
POLICY = Path(__file__).resolve().parents[2] / "policies" / "examples" / "pipeshub-savings.yaml"


def _traffic() -> list[TraceRecord]:
    records = []
    for i in range(20):
        doc = {
            "model": "claude-sonnet-4-5",
            "system": SYSTEM,
            "messages": [{"role": "user", "content": f"document {i} " * 200}],
        }
        records.append(
            record_from_payload(
                doc,
                ts=i * 30.0,
                call_site="indexing.doc_extraction.extract_metadata",
                output_tokens=50,
                latency="awaitable",
                role="indexing",
            )
        )
        query = {
            "model": "claude-sonnet-4-5",
            "system": "Rewrite the query.",
            "messages": [{"role": "user", "content": f"query {i} " * 30}],
        }
        records.append(
            record_from_payload(
                query, ts=i * 30.0 + 1, call_site="retrieval.search.rewrite_expand", output_tokens=20
            )
        )
    return records


@pytest.fixture
def trace(tmp_path: Path) -> Path:
    path = tmp_path / "trace.jsonl"
    write_trace(path, _traffic())
    return path


def test_plan_reports_per_call_site_against_baseline_and_floor(trace: Path, capsys: Any) -> None:
    assert main(["plan", "--policy", str(POLICY), "--trace", str(trace), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sites = doc["call_sites"]
    indexing = sites["indexing.doc_extraction.extract_metadata"]
    assert (
        indexing["batch_share"] == 1.0 and indexing["hit_rate"] == 0.95
    )  # all batched; all but the first read
    assert indexing["cost_usd"] < indexing["baseline_usd"] / 2
    retrieval = sites["retrieval.search.rewrite_expand"]
    assert retrieval["cost_usd"] == retrieval["baseline_usd"] and retrieval["cache_write_tokens"] == 0
    assert doc["lower_bound_usd"] <= doc["total"]["cost_usd"] <= doc["baseline_usd"]
    assert doc["recorded_usd"] is None  # a trace from requests records no cost


def test_plan_text_names_every_site(trace: Path, capsys: Any) -> None:
    assert main(["plan", "--policy", str(POLICY), "--trace", str(trace)]) == 0
    out = capsys.readouterr().out
    assert "indexing.doc_extraction.extract_metadata" in out and "saving vs. no policy" in out


def test_plan_refuses_a_missing_or_bad_trace(tmp_path: Path, capsys: Any) -> None:
    assert main(["plan", "--policy", str(POLICY), "--trace", str(tmp_path / "none.jsonl")]) == 2
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n", encoding="utf-8")
    assert main(["plan", "--policy", str(POLICY), "--trace", str(bad)]) == 1
    assert f"{bad}:1: not JSON" in capsys.readouterr().err


def test_recommend_proposes_a_valid_policy_that_saves(trace: Path, tmp_path: Path, capsys: Any) -> None:
    out = tmp_path / "proposed.yaml"
    assert main(["recommend", "--trace", str(trace), "--output", str(out)]) == 0
    policy = load_policy(out)  # validates
    rules = {r["match"]["callSite"]: r for r in yaml.safe_load(out.read_text())["spec"]["rules"]}
    indexing = rules["indexing.doc_extraction.extract_metadata"]
    assert indexing["batch"] == {"mode": "accumulate"} and "system" in indexing["cache"]["breakpoints"]
    retrieval = rules["retrieval.search.rewrite_expand"]
    assert retrieval["cache"] == {"mode": "off"} and "batch" not in retrieval  # interactive, never reused
    assert policy.metadata.name == "recommended"
    assert "% saved" in capsys.readouterr().out


def _log_line(site: str, realized: float, counterfactual: float, tier: str = "standard") -> str:
    return json.dumps(
        {
            "call_site": site,
            "usage": {"service_tier": tier, "cache_read_input_tokens": 5 if realized < counterfactual else 0},
            "cost": {
                "realized_usd": realized,
                "counterfactual_usd": counterfactual,
                "saved_usd": counterfactual - realized,
            },
            "error": None,
        }
    )


def test_report_sums_realized_savings_per_call_site(tmp_path: Path, capsys: Any) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text(
        "\n".join([_log_line("a", 1.0, 4.0, "batch"), _log_line("a", 1.0, 4.0), _log_line("b", 2.0, 2.0)])
        + "\n",
        encoding="utf-8",
    )
    assert main(["report", "--log", str(log), "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["call_sites"]["a"]["saved_usd"] == 6.0 and doc["call_sites"]["a"]["saved_pct"] == 75.0
    assert doc["call_sites"]["a"]["batch_calls"] == 1 and doc["call_sites"]["b"]["saved_usd"] == 0.0
    assert doc["total"]["calls"] == 3 and doc["total"]["saved_pct"] == 60.0


def test_report_names_the_bad_line(tmp_path: Path, capsys: Any) -> None:
    log = tmp_path / "decisions.jsonl"
    log.write_text(_log_line("a", 1.0, 1.0) + "\n[1]\n", encoding="utf-8")
    assert main(["report", "--log", str(log)]) == 1
    assert f"{log}:2: not a decision-log record" in capsys.readouterr().err


def test_recommend_speaks_json(trace: Path, capsys: Any) -> None:
    assert main(["recommend", "--trace", str(trace), "--format", "json"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["policy"]["metadata"]["name"] == "recommended"
    assert body["projection"]["cost_usd"] <= body["projection"]["baseline_usd"]
    assert {c["call_site"] for c in body["call_sites"]}
