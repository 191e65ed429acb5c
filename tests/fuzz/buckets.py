"""Failure buckets: shrink a failing case, and keep one reproducer per bucket in the corpus.

A bucket is named by `oracles` (exception type and innermost analyzer frame, or the kind of
outcome). `shrink` makes a reproducer smaller while it still lands in the same bucket: records
dropped (halves, then quarters, ... then one at a time) and the file cut shorter, within a
budget of evaluations. `Corpus` is `tests/fuzz/corpus/`: one capture file per bucket and
`manifest.json`, whose entries say what each case must do today: `"ok"`, or
`"open:<bucket>"` for a known failure nobody has fixed yet (the corpus tests then check that it
still fails that way, and say so when it no longer does).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from tests.fuzz import layout
from tests.fuzz.cases import ROOT, Case, evaluate
from tests.fuzz.harness import DEFAULT_LIMITS, Limits

CORPUS = Path(__file__).resolve().parent / "corpus"
MANIFEST = CORPUS / "manifest.json"
SHRINK_EVALUATIONS = 80
SHRINK_SECONDS = 40.0


def slug(bucket: str) -> str:
    """A file name for a bucket."""
    return re.sub(r"[^A-Za-z0-9_-]+", "-", bucket).strip("-")[:120]


def _reproduces(case: Case, bucket: str, work: Path, limits: Limits) -> bool:
    targets = None if bucket.startswith(("workers-differ", "lost", "unnoticed")) else case.targets
    return any(f.bucket == bucket for f in evaluate(case, work, limits, targets))


def _candidate(case: Case, data: bytes) -> Case:
    """`case` with other bytes; a prefix oracle follows the new bytes."""
    prefix = layout.readable_prefix(data) if case.prefix is not None else None
    return case.with_data(data, prefix)


def shrink(
    case: Case,
    bucket: str,
    work: Path,
    limits: Limits = DEFAULT_LIMITS,
    evaluations: int = SHRINK_EVALUATIONS,
    seconds: float = SHRINK_SECONDS,
) -> Case:
    """A smaller case in the same bucket (the case itself when nothing smaller is found).

    A gzip-wrapped case is first tried decompressed; when its failure needs the compressed
    bytes (a damaged stream) it is kept as it is."""
    deadline = time.monotonic() + seconds
    budget = [evaluations]

    def still(candidate: Case) -> bool:
        if budget[0] <= 0 or time.monotonic() > deadline:
            return False
        budget[0] -= 1
        return _reproduces(candidate, bucket, work, limits)

    best = case
    if case.data[:2] == layout.GZIP_MAGIC:
        plain = layout.gunzip_prefix(case.data)
        candidate = replace(case, data=plain, suffix=case.suffix.removesuffix(".gz"))
        if case.prefix is not None or not plain or not still(candidate):
            return case
        best = candidate
    parsed = layout.parse(best.data)
    if parsed is not None and len(parsed.records) > 1:
        best = _drop_records(best, parsed, still)
    if best.prefix is None and not bucket.startswith("unnoticed"):
        best = _cut_end(best, still)
    return best


def _drop_records(case: Case, parsed: layout.Layout, still: Callable[[Case], bool]) -> Case:
    """ddmin over the records (pcapng: the blocks after the first section header)."""
    first = 1 if parsed.format == "pcapng" else 0
    pieces = [case.data[r.start : r.end] for r in parsed.records[first:]]
    if not pieces:
        return case
    head = case.data[: parsed.records[first].start]
    tail = case.data[parsed.records[-1].end :]
    chunk = max(1, len(pieces) // 2)
    while chunk >= 1 and pieces:
        i, changed = 0, False
        while i < len(pieces):
            kept = pieces[:i] + pieces[i + chunk :]
            candidate = _candidate(case, head + b"".join(kept) + tail)
            if still(candidate):
                pieces, changed = kept, True
                case = candidate
            else:
                i += chunk
        if not changed:
            if chunk == 1:
                break
            chunk //= 2
    return case


def _cut_end(case: Case, still: Callable[[Case], bool]) -> Case:
    """The shortest end cut that still fails (a binary search)."""
    low, high = 0, len(case.data)
    while high - low > 16:
        middle = (low + high) // 2
        candidate = _candidate(case, case.data[:middle])
        if still(candidate):
            high, case = middle, candidate
        else:
            low = middle
    return case


@dataclass(slots=True)
class Entry:
    """One corpus case."""

    file: str
    """Capture file under corpus/."""
    expected: str
    """"ok", or "open:<bucket>" for a known failure not fixed yet."""
    other: str
    """The intact capture for two-sided runs, relative to the project root."""
    mutant_side: str = "client"
    targets: list[str] = field(default_factory=list)
    tellable: str | None = None
    prefix: bool = False
    """Whether the file was only cut short, so that its readable prefix must be read in full."""
    seed: str = ""
    steps: list[str] = field(default_factory=list)
    note: str = ""

    def case(self) -> Case:
        data = (CORPUS / self.file).read_bytes()
        prefix = None
        if self.prefix:
            plain = layout.gunzip_prefix(data) if data[:2] == layout.GZIP_MAGIC else data
            prefix = layout.readable_prefix(plain)
        return Case(
            data=data,
            other=ROOT / self.other,
            suffix=_suffix(self.file),
            mutant_side=self.mutant_side,
            targets=tuple(self.targets),
            prefix=prefix,
            tellable=self.tellable,
            seed=self.seed,
            steps=tuple(self.steps),
            label=self.file,
        )

    @property
    def open_bucket(self) -> str | None:
        return self.expected[5:] if self.expected.startswith("open:") else None


def _suffix(name: str) -> str:
    for suffix in (".pcapng.gz", ".pcap.gz", ".pcapng", ".pcap"):
        if name.endswith(suffix):
            return suffix
    return ".pcap"


def load() -> list[Entry]:
    if not MANIFEST.exists():
        return []
    raw = json.loads(MANIFEST.read_text())
    return [Entry(**item) for item in raw["cases"]]


def save(entries: Sequence[Entry]) -> None:
    CORPUS.mkdir(parents=True, exist_ok=True)
    body = {
        "about": "Fuzz reproducers, one per failure bucket; tests/fuzz/test_fuzz_corpus.py runs "
        "each. expected: ok, or open:<bucket> for a known failure not fixed yet.",
        "cases": [asdict(e) for e in sorted(entries, key=lambda e: e.file)],
    }
    MANIFEST.write_text(json.dumps(body, indent=2) + "\n")


def known_open(entries: Sequence[Entry]) -> set[str]:
    """Buckets of the known open failures."""
    return {b for e in entries if (b := e.open_bucket) is not None}


def add(case: Case, bucket: str, entries: list[Entry], note: str = "") -> Entry:
    """Write `case` as the reproducer of `bucket` (an open failure) and list it."""
    suffix = ".pcap.gz" if case.data[:2] == layout.GZIP_MAGIC else case.suffix.removesuffix(".gz")
    name = slug(bucket) + suffix
    CORPUS.mkdir(parents=True, exist_ok=True)
    (CORPUS / name).write_bytes(case.data)
    try:
        other = str(case.other.resolve().relative_to(ROOT))
    except ValueError:
        other = str(case.other)
    entry = Entry(
        file=name,
        expected=f"open:{bucket}",
        other=other,
        mutant_side=case.mutant_side,
        targets=list(case.targets),
        tellable=case.tellable,
        prefix=case.prefix is not None,
        seed=case.seed,
        steps=list(case.steps),
        note=note,
    )
    entries[:] = [e for e in entries if e.file != name] + [entry]
    return entry
