"""How to verify each finding in Wireshark: display filters and what to look for.

Part of `report.digest` (see its docstring).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..model import FindingEntry
from .common import as_int, as_str
from .lookups import Index


@dataclass(frozen=True, slots=True)
class Check:
    """Where to look in one capture file to see a finding's evidence."""

    capture: str
    role: str
    file: str
    session: str | None
    stream: int | None
    frames: tuple[int, ...]

    @property
    def frame_filter(self) -> str:
        return " || ".join(f"frame.number == {n}" for n in self.frames)

    @property
    def stream_filter(self) -> str:
        return f"tcp.stream eq {self.stream}" if self.stream is not None else ""


def checks(finding: FindingEntry, index: Index) -> list[Check]:
    """One check per capture file holding evidence of `finding` (or holding its sessions)."""
    frames: dict[tuple[str, str], list[int]] = {}
    for ev in finding.get("evidence") or []:
        capture = as_str(ev.get("capture"))
        file = as_str(ev.get("file")) or index.file_of(capture)
        numbers = frames.setdefault((capture, file), [])
        frame = as_int(ev.get("frame"))
        if frame is not None and frame not in numbers:
            numbers.append(frame)
    sessions = [as_str(s) for s in finding.get("sessions") or []]
    for session_id in sessions:
        capture = index.capture_of(session_id)
        if not any(c == capture for c, _ in frames):
            frames[(capture, index.file_of(capture))] = []
    out = []
    for (capture, file), numbers in frames.items():
        session = next((s for s in sessions if index.capture_of(s) == capture), None)
        out.append(
            Check(
                capture,
                index.role(capture) or capture,
                file,
                session,
                index.stream(session) if session else None,
                tuple(sorted(numbers)),
            )
        )
    out.sort(key=lambda c: (c.role != "client-side", c.capture))
    return out
