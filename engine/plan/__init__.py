"""Cost planning over recorded traffic: traces, replay, the lower bound, recommend, report.

::

    records = read_trace("trace.jsonl")          # or a decision log
    result = plan_policy(records, "policies/examples/pipeshub-savings.yaml")
    result.predicted.cost_usd, result.lower_bound_usd
"""

from engine.plan._bound import floor_shares, tolerates_batch
from engine.plan._floor import lower_bound
from engine.plan._online import Pauses, hindsight_lower_bound, observed_pauses, online_lower_bound
from engine.plan._place import caller_placer, fixed_placer, peer_placer, policy_placer, stand_in_payload
from engine.plan._plan import PlanResult, plan_policy, plan_with
from engine.plan._recommend import Choice, recommend
from engine.plan._report import LogError, savings_report
from engine.plan._simulate import Placement, SimulatedCall, Totals, replay, summarize
from engine.plan._trace import (
    SCHEMA_ID,
    TraceBlock,
    TraceError,
    TraceRecord,
    read_trace,
    record_from_decision,
    record_from_payload,
    write_trace,
)

__all__ = [
    "SCHEMA_ID",
    "Choice",
    "LogError",
    "Pauses",
    "Placement",
    "PlanResult",
    "SimulatedCall",
    "Totals",
    "TraceBlock",
    "TraceError",
    "TraceRecord",
    "caller_placer",
    "fixed_placer",
    "floor_shares",
    "hindsight_lower_bound",
    "lower_bound",
    "observed_pauses",
    "online_lower_bound",
    "peer_placer",
    "plan_policy",
    "plan_with",
    "policy_placer",
    "read_trace",
    "recommend",
    "record_from_decision",
    "record_from_payload",
    "replay",
    "savings_report",
    "stand_in_payload",
    "summarize",
    "tolerates_batch",
    "write_trace",
]
