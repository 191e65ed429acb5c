"""Flow identity: the key of one direction of a conversation, and the port rule for roles.

A conversation is an unordered pair of TCP endpoints; the flow table files both directions of it
under their directional keys, so that one dictionary look-up on a segment's own 4-tuple finds
the flow *and* the direction. When no handshake was captured, `port_says_source_is_server`
guesses which side is the server.

Nothing here keeps state, looks at payload or reads sequence numbers.
"""

from __future__ import annotations

from typing import TypeAlias

FlowKey: TypeAlias = tuple[str, int, str, int]
"""(source address, source port, destination address, destination port) of one direction."""

SMTP_SERVER_PORTS: frozenset[int] = frozenset({25, 465, 587, 2525, 1025})
"""Ports a mail server listens on: 25 relay (RFC 5321, IANA `smtp`), 465 implicit-TLS submission
(RFC 8314 §7.3), 587 submission (RFC 6409 §3.1); 2525 and 1025 are common unofficial stand-ins."""


def flow_key(src: str, sport: int, dst: str, dport: int) -> FlowKey:
    """The key of the direction a segment from `src:sport` to `dst:dport` travels."""
    return (src, sport, dst, dport)


def reverse_key(key: FlowKey) -> FlowKey:
    """The key of the opposite direction of the same conversation."""
    src, sport, dst, dport = key
    return (dst, dport, src, sport)


def port_says_source_is_server(sport: int, dport: int) -> bool:
    """Guess the roles of a conversation from its ports alone.

    A side whose port is a mail-server port is the server when the other side's is not;
    otherwise the lower port is the server (servers listen on low, well-known ports; clients
    get ephemeral ones). With equal ports the sender is taken as the client.
    """
    src_known = sport in SMTP_SERVER_PORTS
    if src_known != (dport in SMTP_SERVER_PORTS):
        return src_known
    return sport < dport
