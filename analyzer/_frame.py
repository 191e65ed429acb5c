"""`FrameRef`: where a byte was seen, as a frame a user can open in Wireshark.

In a module of its own because the compiled build compiles it (one is made per packet that
carries payload): its constructor is written out, so that compiled code builds one directly
instead of through a generated `__init__`, and it reduces to its constructor call for `pickle`
and `copy`, which a compiled frozen dataclass could not otherwise do. It does nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, order=True, init=False)
class FrameRef:
    """A packet a user can open in Wireshark.

    `frame_no` is 1-based within file number `file_no` (0-based, in time order) of the capture
    `capture_id`, exactly as Wireshark numbers frames when it opens that file.
    """

    capture_id: str
    frame_no: int
    file_no: int = 0

    def __init__(self, capture_id: str, frame_no: int, file_no: int = 0) -> None:
        # `object.__setattr__`, as a frozen dataclass's own `__init__` does; compiled, each is a
        # plain store.
        object.__setattr__(self, "capture_id", capture_id)
        object.__setattr__(self, "frame_no", frame_no)
        object.__setattr__(self, "file_no", file_no)

    def __reduce__(self) -> tuple[type[FrameRef], tuple[str, int, int]]:
        return (FrameRef, (self.capture_id, self.frame_no, self.file_no))

    def __str__(self) -> str:
        if self.file_no:
            return f"{self.capture_id}[{self.file_no}]#{self.frame_no}"
        return f"{self.capture_id}#{self.frame_no}"
