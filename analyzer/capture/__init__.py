"""The capture layer: pcap/pcapng/gzip files in, decoded TCP `Segment`s out.

`open_capture` checks the files of one capture point and orders a rotation set by time;
`Capture.segments()` streams every TCP segment with the frame it came from and fills
`Capture.stats` with what was not TCP and what looked odd. This layer knows nothing of SMTP.
"""

from analyzer.capture.reader import Capture, CaptureFile, PathLike, open_capture
from analyzer.capture.segment import ACK, FIN, PSH, RST, SYN, URG, CaptureAnomaly, Segment
from analyzer.capture.stats import CaptureStats

__all__ = [
    "ACK",
    "FIN",
    "PSH",
    "RST",
    "SYN",
    "URG",
    "Capture",
    "CaptureAnomaly",
    "CaptureFile",
    "CaptureStats",
    "PathLike",
    "Segment",
    "open_capture",
]
