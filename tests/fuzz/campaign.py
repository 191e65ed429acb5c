"""A fuzzing campaign: N mutated seeds, run and judged, failures bucketed, reproducers kept.

`generate` makes the cases of a campaign from its random seed alone, so the same (N, seed)
always tries the same captures. `run` evaluates them in batches across `jobs` processes,
groups failures by bucket, and (when asked) shrinks the first case of each new bucket and
writes it to the corpus.
"""

from __future__ import annotations

import random
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.fuzz import mutators
from tests.fuzz.cases import CLI_TARGETS, Case, evaluate_many
from tests.fuzz.harness import DEFAULT_LIMITS, Limits
from tests.fuzz.oracles import Failure
from tests.fuzz.seeds import Seed, seeds

CRAFTED_SHARE = 0.35
"""Share of cases mutated from a crafted seed (other formats and link types): there are few of
them next to the bundled pcap files."""
BATCH = 16
"""Cases whose tasks run side by side."""
ROTATION = (("sessions", "sessions-workers"), ("analyze",), ("analyze2",))
"""CLI targets taken in turn when a campaign does not run all of them on every case."""


def _suffix(seed: Seed, data: bytes) -> str:
    base = (
        ".pcapng" if data[:4] == b"\x0a\x0d\x0d\x0a" or seed.name.endswith(".pcapng") else ".pcap"
    )
    return base + ".gz" if data[:2] == b"\x1f\x8b" else base


def generate(
    count: int, seed: int, subprocess_every: int = 0, all_targets: bool = True
) -> Iterator[Case]:
    """The cases of campaign `seed`: each a mutated seed, with every CLI target run on it or
    (`all_targets` false) the targets of `ROTATION` in turn; the API runs on every case."""
    rng = random.Random(seed)
    pool = seeds()
    bundled = [s for s in pool if not s.name.startswith("crafted/")]
    crafted = [s for s in pool if s.name.startswith("crafted/")]
    others = [s.data for s in pool]
    for i in range(count):
        origin = rng.choice(crafted if crafted and rng.random() < CRAFTED_SHARE else bundled)
        mutant = mutators.mutate(rng, origin.data, others, origin.gz)
        yield Case(
            data=mutant.data,
            other=origin.other,
            suffix=_suffix(origin, mutant.data),
            mutant_side=rng.choice(("client", "server")),
            targets=CLI_TARGETS if all_targets else ROTATION[i % len(ROTATION)],
            prefix=mutant.prefix,
            tellable=mutant.tellable,
            seed=origin.name,
            steps=mutant.steps,
            subprocess=bool(subprocess_every) and i % subprocess_every == 0,
            label=f"{seed}:{i}",
        )


@dataclass(slots=True)
class Bucket:
    name: str
    count: int = 0
    first: Case | None = None
    failure: Failure | None = None
    targets: set[str] = field(default_factory=set)


@dataclass(slots=True)
class Outcome:
    cases: int = 0
    seconds: float = 0.0
    buckets: dict[str, Bucket] = field(default_factory=dict)

    def add(self, case: Case, failures: list[Failure]) -> None:
        for failure in failures:
            bucket = self.buckets.setdefault(failure.bucket, Bucket(failure.bucket))
            bucket.count += 1
            bucket.targets.add(failure.target)
            if bucket.first is None:
                bucket.first, bucket.failure = case, failure


def run(
    count: int,
    seed: int,
    *,
    jobs: int = 2,
    limits: Limits = DEFAULT_LIMITS,
    subprocess_every: int = 0,
    all_targets: bool = True,
    progress: Callable[[Outcome], None] | None = None,
) -> Outcome:
    """Evaluate the campaign's cases and bucket the failures."""
    outcome = Outcome()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="smtpfw-fuzz-") as tmp:
        batch: list[Case] = []
        for case in generate(count, seed, subprocess_every, all_targets):
            batch.append(case)
            if len(batch) == BATCH:
                _run_batch(batch, Path(tmp), limits, jobs, outcome)
                batch = []
                if progress is not None:
                    progress(outcome)
        if batch:
            _run_batch(batch, Path(tmp), limits, jobs, outcome)
    outcome.seconds = time.monotonic() - started
    return outcome


def _run_batch(batch: list[Case], tmp: Path, limits: Limits, jobs: int, outcome: Outcome) -> None:
    for case, failures in zip(batch, evaluate_many(batch, tmp, limits, jobs), strict=True):
        outcome.cases += 1
        outcome.add(case, failures)
