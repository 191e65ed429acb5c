"""TCP flows: group a capture's segments into connections, decide client and server, and rebuild
each direction's byte stream with its gaps and ends.

`FlowTable` (in `table`) is the entry point; `reassembly` rebuilds one direction, `key` names
directions and guesses roles from ports, `events` holds the values handed to a `FlowSink`.
Payload is never parsed here.
"""

from analyzer.flows.events import (
    DirectionStats,
    EndKind,
    Endpoint,
    FlowAnomaly,
    FlowInfo,
    FlowStats,
    PacketOrigin,
    StreamData,
    StreamEnd,
    StreamGap,
)
from analyzer.flows.table import FlowSink, FlowTable, RoleHint

__all__ = [
    "DirectionStats",
    "EndKind",
    "Endpoint",
    "FlowAnomaly",
    "FlowInfo",
    "FlowSink",
    "FlowStats",
    "FlowTable",
    "PacketOrigin",
    "RoleHint",
    "StreamData",
    "StreamEnd",
    "StreamGap",
]
