"""The decision log: one record per call, its cost and what it would have cost unoptimized."""

from engine.ledger._cost import account, call_costs, split_writes, usage_fields
from engine.ledger._record import (
    SCHEMA_ID,
    CallShape,
    DecisionRecord,
    LatencyTolerance,
    MarkerRecord,
    PolicyRef,
    PrefixBlock,
    prefix_blocks,
    utc_now,
)
from engine.ledger._shadow import ShadowBilling
from engine.ledger._sinks import DecisionLog, JsonLinesSink, LoggingSink, Sink

__all__ = [
    "SCHEMA_ID",
    "CallShape",
    "DecisionLog",
    "DecisionRecord",
    "JsonLinesSink",
    "LatencyTolerance",
    "LoggingSink",
    "MarkerRecord",
    "PolicyRef",
    "PrefixBlock",
    "ShadowBilling",
    "Sink",
    "account",
    "call_costs",
    "prefix_blocks",
    "split_writes",
    "usage_fields",
    "utc_now",
]
