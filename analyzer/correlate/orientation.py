"""Which capture is the client side: the orientation judgment of a two-sided run.

An operator can give the two captures the wrong way round (`--client-side inside.pcap
--server-side outside.pcap`). Every finding would then describe the box undoing damage that
it did. The captures themselves say which side is which, in ways that do not depend on the
clock offset between the capture hosts:

- `damage_direction`: a middlebox's damage appears downstream of it. What the server sent
  (its banner, its EHLO keywords) is intact on the server side and masked (`XXXXXXXA`, a
  banner of `*`) or missing on the client side; what the client sent is intact on the client
  side and masked (`XXXXXXXX`) on the server side.
- `ttl_distance`: every router, and a routing firewall, decrements the TTL (RFC 791 §3.2,
  RFC 1812 §5.3.1): the client's packets are fewer hops from their initial TTL on the client
  side than on the server side, and the server's packets the other way round.
- `mss_clamp`: MSS clamping only ever lowers the MSS option of a SYN it forwards (RFC 4459
  §3.2): the client's SYN carries its own MSS on the client side and at most that on the
  server side, and the server's SYN-ACK the other way round.
- `reply_latency`: a reply reaches the server-side capture point before the client-side one,
  so the time from a command to the server's (identical) reply is longer on the client side;
  the client's think time from a reply to its next command is longer on the server side.
- `nat_address`: an endpoint's private address (RFC 1918, RFC 6598 shared space, RFC 4193
  unique local) is seen only on its own side of a NAT; the other side sees a public one.

Each signal votes pair by pair; a signal counts when at least `MAJORITY` of its votes agree.
The judgment swaps the sides only when the signals that count all say so; signals that
contradict each other leave the sides as given. What the pipeline does with the judgment
(analyse the other way round, or keep the given orientation) is not decided here.
"""

from __future__ import annotations

import enum
import ipaddress
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from analyzer._common import Direction
from analyzer.flows.events import EndKind
from analyzer.session.model import SmtpSession

from .match import SessionPair

MAJORITY: Final = 0.75
"""Share of a signal's pair votes that must agree for the signal to count."""
INITIAL_TTLS: Final = (32, 64, 128, 255)
"""Initial TTLs stacks use (RFC 1700's 64 default; Windows 128; network gear 255; old 32)."""
MIN_LATENCY_S: Final = 50e-6
"""A median latency difference smaller than this (50 µs, a few switch hops) says nothing."""
LATENCY_LINES: Final = 40
"""Replies compared per pair for the latency signal."""
MASK_SHARE: Final = 0.5
"""A banner is masked when at least this share of its characters after the code are `*`."""
PRIVATE_NETWORKS: Final = tuple(
    ipaddress.ip_network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "fc00::/7")
)
"""RFC 1918, RFC 6598 (carrier-grade NAT) and RFC 4193 (unique local IPv6) space."""


class Side(enum.StrEnum):
    """What a piece of evidence says about the captures as given."""

    GIVEN = "given"
    SWAPPED = "swapped"
    MIXED = "mixed"


class Judgment(enum.StrEnum):
    GIVEN = "given"
    """The sides are as given."""
    SWAPPED = "swapped"
    """The client-side capture is the server side and the other way round."""
    CONFLICTING = "conflicting"
    """The signals disagree: analysed as given."""
    UNDECIDED = "undecided"
    """No signal: analysed as given."""


@dataclass(frozen=True, slots=True)
class Clue:
    """What one signal says, over every pair it could judge."""

    signal: str
    says: Side
    for_given: int
    """Pairs whose evidence fits the given orientation."""
    for_swapped: int
    """Pairs whose evidence fits the swapped one."""
    detail: str
    """One example, in words, naming the captures as given ("the given client side")."""


@dataclass(frozen=True, slots=True)
class Orientation:
    judgment: Judgment
    confidence: str
    """'high' (two or more signals agree, none against), 'medium' (one), 'low' (none or
    conflicting)."""
    clues: tuple[Clue, ...]

    @property
    def swapped(self) -> bool:
        return self.judgment is Judgment.SWAPPED


Vote = tuple[int, str]
"""+1 (fits the given orientation), -1 (fits the swapped one) or 0, and why."""


# -- damage direction ---------------------------------------------------------------------------


def _masked_banner(banner: str | None) -> bool:
    if not banner:
        return False
    text = banner.split("\n", 1)[0][4:].replace(" ", "")
    return len(text) >= 4 and text.count("*") >= MASK_SHARE * len(text)


MASKED_WORD: Final = re.compile(r"X{2,}[A-Z]?")
"""`XXXXXXXA`, `XXXB`, `XXXXXXXX`: a word overwritten with X (PIX lets a final letter count
up per masked keyword, DOMAIN.md §1)."""


def _masked_word(word: str) -> bool:
    return MASKED_WORD.fullmatch(word) is not None


def _masked_commands(session: SmtpSession) -> int:
    return sum(
        1
        for line in session.lines
        if line.direction is Direction.CLIENT_TO_SERVER
        and line.text.strip()
        and _masked_word(line.text.split(" ", 1)[0])
    )


def _damage(pair: SessionPair) -> Vote:
    c, s = pair.client_side, pair.server_side
    votes = 0
    why = ""
    if _masked_banner(c.banner) != _masked_banner(s.banner):
        votes += 1 if _masked_banner(c.banner) else -1
        why = "the masked 220 banner is in the " + (
            "given client side" if _masked_banner(c.banner) else "given server side"
        )
    c_masked = sum(1 for k in c.ehlo_keywords if _masked_word(k))
    s_masked = sum(1 for k in s.ehlo_keywords if _masked_word(k))
    if c_masked != s_masked:
        votes += 1 if c_masked > s_masked else -1
        why = why or "masked EHLO keywords are in the " + (
            "given client side" if c_masked > s_masked else "given server side"
        )
    c_kw, s_kw = set(c.ehlo_keywords), set(s.ehlo_keywords)
    if c_kw and s_kw and not c_masked and not s_masked and c_kw != s_kw:
        if c_kw < s_kw:
            votes += 1
            why = (
                why or "the given server side's EHLO reply has keywords the given client side lacks"
            )
        elif s_kw < c_kw:
            votes -= 1
            why = (
                why or "the given client side's EHLO reply has keywords the given server side lacks"
            )
    c_cmd, s_cmd = _masked_commands(c), _masked_commands(s)
    if c_cmd != s_cmd:
        votes += 1 if s_cmd > c_cmd else -1
        why = why or "client commands overwritten with X are in the " + (
            "given server side" if s_cmd > c_cmd else "given client side"
        )
    return (1 if votes > 0 else -1 if votes < 0 else 0), why


# -- TTL distance -------------------------------------------------------------------------------


def _hops(ttl: int) -> int:
    return next(i for i in INITIAL_TTLS if i >= ttl) - ttl


def _ttl(session: SmtpSession, direction: Direction) -> int | None:
    """The usual TTL of one endpoint's packets in this capture."""
    for end in session.ends:
        if end.direction is not direction:
            continue
        if end.usual_origin is not None:
            return end.usual_origin.ttl
        if end.kind is EndKind.FIN:
            return end.origin.ttl
    return None


def _ttl_distance(pair: SessionPair) -> Vote:
    c, s = pair.client_side, pair.server_side
    votes = 0
    why = ""
    for direction, near_is_client in (
        (Direction.CLIENT_TO_SERVER, True),
        (Direction.SERVER_TO_CLIENT, False),
    ):
        tc, ts = _ttl(c, direction), _ttl(s, direction)
        if tc is None or ts is None or _hops(tc) == _hops(ts):
            continue
        closer_on_client = _hops(tc) < _hops(ts)
        fits = closer_on_client == near_is_client
        votes += 1 if fits else -1
        sender = "client" if near_is_client else "server"
        why = why or (
            f"the {sender}'s packets arrive with TTL {tc} in the given client side and {ts} in the "
            "given server side"
        )
    return (1 if votes > 0 else -1 if votes < 0 else 0), why


# -- MSS clamping -------------------------------------------------------------------------------


def _mss_clamp(pair: SessionPair) -> Vote:
    c, s = pair.client_side.flow.mss, pair.server_side.flow.mss
    votes = 0
    why = ""
    for i, sender in ((0, "client"), (1, "server")):
        mc, ms = c[i], s[i]
        if mc is None or ms is None or mc == ms:
            continue
        # the sender's own side carries its MSS; the box only lowers it on the way
        own, other = (mc, ms) if sender == "client" else (ms, mc)
        votes += 1 if other < own else -1
        why = why or (
            f"the {sender}'s SYN has MSS {mc} in the given client side and {ms} in the given "
            "server side"
        )
    return (1 if votes > 0 else -1 if votes < 0 else 0), why


# -- reply latency ------------------------------------------------------------------------------


def _timings(session: SmtpSession) -> list[tuple[str, float, float]]:
    """(reply text, command → reply seconds, reply → next command seconds or NaN), per reply."""
    lines = session.lines
    out: list[tuple[str, float, float]] = []
    for i, line in enumerate(lines):
        if line.answers is None or line.direction is not Direction.SERVER_TO_CLIENT:
            continue
        latency = line.ts - lines[line.answers].ts
        nxt = next((x for x in lines[i + 1 :] if x.direction is Direction.CLIENT_TO_SERVER), None)
        out.append((line.text, latency, nxt.ts - line.ts if nxt else float("nan")))
        if len(out) >= LATENCY_LINES:
            break
    return out


def _latency(pair: SessionPair) -> Vote:
    samples: list[float] = []
    for (ct, cl, cn), (st, sl, sn) in zip(
        _timings(pair.client_side), _timings(pair.server_side), strict=False
    ):
        if ct != st:
            continue  # a reply the box wrote or changed: its timing says nothing of the path
        samples.append(cl - sl)
        if cn == cn and sn == sn:  # not NaN
            samples.append(sn - cn)
    if len(samples) < 2:
        return 0, ""
    median = statistics.median(samples)
    if abs(median) < MIN_LATENCY_S:
        return 0, ""
    return (1 if median > 0 else -1), (
        f"replies take {abs(median) * 1000:.2f} ms longer to answer in the "
        + ("given client side" if median > 0 else "given server side")
    )


# -- NAT addresses ------------------------------------------------------------------------------


def _private(address: str) -> bool | None:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if not ip.is_global and not any(ip in n for n in PRIVATE_NETWORKS):
        return None  # documentation, loopback, link-local: says nothing about NAT
    return any(ip in n for n in PRIVATE_NETWORKS)


def _nat(pair: SessionPair) -> Vote:
    c, s = pair.client_side.flow, pair.server_side.flow
    votes = 0
    why = ""
    for endpoint, own_side_is_client in (("client", True), ("server", False)):
        on_c = _private((c.client if own_side_is_client else c.server).ip)
        on_s = _private((s.client if own_side_is_client else s.server).ip)
        if on_c is None or on_s is None or on_c == on_s:
            continue
        private_on_client_side = on_c
        votes += 1 if private_on_client_side == own_side_is_client else -1
        why = why or f"the {endpoint}'s private address is seen in the " + (
            "given client side" if on_c else "given server side"
        )
    return (1 if votes > 0 else -1 if votes < 0 else 0), why


SIGNALS: Final[tuple[tuple[str, Callable[[SessionPair], Vote]], ...]] = (
    ("damage_direction", _damage),
    ("ttl_distance", _ttl_distance),
    ("mss_clamp", _mss_clamp),
    ("reply_latency", _latency),
    ("nat_address", _nat),
)


def _clue(name: str, signal: Callable[[SessionPair], Vote], pairs: Sequence[SessionPair]) -> Clue:
    given = swapped = 0
    detail_given = detail_swapped = ""
    for pair in pairs:
        vote, why = signal(pair)
        if vote > 0:
            given += 1
            detail_given = detail_given or why
        elif vote < 0:
            swapped += 1
            detail_swapped = detail_swapped or why
    total = given + swapped
    if total and given >= MAJORITY * total:
        return Clue(name, Side.GIVEN, given, swapped, detail_given)
    if total and swapped >= MAJORITY * total:
        return Clue(name, Side.SWAPPED, given, swapped, detail_swapped)
    return Clue(name, Side.MIXED, given, swapped, detail_given or detail_swapped)


def judge_orientation(pairs: Sequence[SessionPair]) -> Orientation:
    """Judge from `pairs` (best: those known to be one connection) which side is which."""
    clues = tuple(
        clue
        for name, signal in SIGNALS
        if (clue := _clue(name, signal, pairs)).for_given or clue.for_swapped
    )
    given = [c for c in clues if c.says is Side.GIVEN]
    swapped = [c for c in clues if c.says is Side.SWAPPED]
    if given and swapped:
        return Orientation(Judgment.CONFLICTING, "low", clues)
    counted = given or swapped
    if not counted:
        return Orientation(Judgment.UNDECIDED, "low", clues)
    judgment = Judgment.SWAPPED if swapped else Judgment.GIVEN
    return Orientation(judgment, "high" if len(counted) >= 2 else "medium", clues)
