"""Bytes one capture does not hold are capture coverage, never damage.

Each accident is made from a real lab pair (Postfix through our middlebox): one side's capture
starts late, stops early or is cut by a small snaplen. The analysis must state what was not
covered and find nothing in it; damage inside the covered part is still confirmed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from scapy.layers.inet import TCP
from scapy.layers.l2 import Ether
from scapy.packet import Packet
from scapy.utils import rdpcap, wrpcap

from analyzer import analyze
from analyzer._common import CaptureSide
from analyzer.correlate.coverage import Reason, late_shift

LAB = Path(__file__).resolve().parents[2] / "captures" / "lab"
CLEAN = LAB / "clean-postfix"
MASKED = LAB / "ehlo-masked"
FALSE_DAMAGE = {"data_missing", "payload_modified", "command_replaced", "reset_injected"}

Cut = Callable[[list[Packet]], list[Packet]]


def _first_payload(packets: list[Packet]) -> int:
    return next(i for i, p in enumerate(packets) if p.haslayer(TCP) and len(bytes(p[TCP].payload)))


def late_start(packets: list[Packet]) -> list[Packet]:
    """The capture began after the handshake and the first few payload segments."""
    return packets[_first_payload(packets) + 3 :]


def handshake_missed(packets: list[Packet]) -> list[Packet]:
    """The capture began just after the handshake: it holds the whole dialogue."""
    return packets[_first_payload(packets) :]


def early_stop(packets: list[Packet]) -> list[Packet]:
    """The capture ended two thirds of the way through the connection."""
    return packets[: len(packets) * 2 // 3]


def snaplen_96(packets: list[Packet]) -> list[Packet]:
    """Every frame cut to its first 96 bytes, as `tcpdump -s 96` writes them."""
    cut: list[Packet] = []
    for p in packets:
        short = Ether(bytes(p)[:96])
        short.time = p.time
        short.wirelen = len(bytes(p))
        cut.append(short)
    return cut


def _pair_with(tmp_path: Path, pair: Path, side: str, accident: Cut) -> tuple[Path, Path]:
    client, server = pair / "client-side.pcap", pair / "server-side.pcap"
    damaged = tmp_path / f"{side}.pcap"
    wrpcap(str(damaged), accident(list(rdpcap(str(pair / f"{side}.pcap")))))
    return (damaged, server) if side == "client-side" else (client, damaged)


ACCIDENTS = [
    (late_start, Reason.LATE_START),
    (early_stop, Reason.EARLY_STOP),
    (snaplen_96, Reason.NOT_CAPTURED),
]


@pytest.mark.parametrize("side", ["client-side", "server-side"])
@pytest.mark.parametrize(("accident", "reason"), ACCIDENTS, ids=lambda a: getattr(a, "__name__", a))
def test_a_capture_accident_is_coverage_not_damage(
    tmp_path: Path, side: str, accident: Cut, reason: Reason
) -> None:
    client, server = _pair_with(tmp_path, CLEAN, side, accident)
    result = analyze(client_side=client, server_side=server)
    assert [f.kind for f in result.findings] == []
    (alignment,) = result.alignments
    lacking = {(u.capture, u.reason) for u in alignment.uncovered}
    assert (CaptureSide(side), reason) in lacking
    assert not alignment.end_mismatches


@pytest.mark.parametrize("side", ["client-side", "server-side"])
@pytest.mark.parametrize("accident", [handshake_missed, early_stop], ids=lambda a: a.__name__)
def test_damage_inside_the_covered_part_is_still_confirmed(
    tmp_path: Path, side: str, accident: Cut
) -> None:
    whole = analyze(
        client_side=MASKED / "client-side.pcap", server_side=MASKED / "server-side.pcap"
    )
    client, server = _pair_with(tmp_path, MASKED, side, accident)
    cut = analyze(client_side=client, server_side=server)
    confirmed = {f.kind for f in cut.findings if f.confidence == "confirmed"}
    assert "ehlo_keyword_masked" in confirmed
    assert not {str(f.kind) for f in cut.findings} & FALSE_DAMAGE
    assert {f.kind for f in cut.findings} <= {f.kind for f in whole.findings}


def test_the_coverage_is_in_the_report(tmp_path: Path) -> None:
    from analyzer.report.build import build_report
    from analyzer.report.html import render_html
    from analyzer.report.markdown import render_markdown

    client, server = _pair_with(tmp_path, CLEAN, "server-side", early_stop)
    report = build_report(analyze(client_side=client, server_side=server))
    (pair,) = report["pairs"]
    assert {"capture": "server_side", "reason": "early_stop"}.items() <= pair["uncovered"][
        0
    ].items()
    assert "### Capture coverage" in render_markdown(report)
    assert "<h3>Capture coverage</h3>" in render_html(report)


def test_a_late_copy_is_lined_up_by_its_first_distinctive_bytes() -> None:
    early = b"220 mx ESMTP\r\nEHLO a\r\n250-mx\r\n250 PIPELINING\r\nMAIL FROM:<a@b>\r\n"
    late = early[14:]
    assert late_shift(early, late) == 14
    assert late_shift(early, b"nowhere to be found in the other copy, at all....") is None


@pytest.mark.parametrize("side", ["client-side", "server-side"])
def test_a_capture_that_began_after_the_greeting_says_nothing_about_the_banner(
    tmp_path: Path, side: str
) -> None:
    client, server = _pair_with(tmp_path, MASKED, side, late_start)
    kinds = {str(f.kind) for f in analyze(client_side=client, server_side=server).findings}
    assert not kinds & {"banner_masked", "banner_replaced"}


def test_a_greeting_cut_by_the_snaplen_is_still_compared_where_both_hold_it(
    tmp_path: Path,
) -> None:
    pair = Path(__file__).resolve().parents[2] / "captures" / "banner-masked"
    client, server = _pair_with(tmp_path, pair, "server-side", snaplen_96)
    result = analyze(client_side=client, server_side=server)
    assert {(str(f.kind), str(f.confidence)) for f in result.findings} == {
        ("banner_masked", "confirmed")
    }
    for alignment in result.alignments:
        assert all(b"\x00" not in d.sent for d in alignment.divergences)
