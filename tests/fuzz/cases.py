"""One fuzz case: a capture's bytes and what to run on it; run it and judge the outcome.

A `Case` is written into its own folder (the capture, its readable prefix when it has one),
turned into `harness.Task`s (the API first, then the CLI targets) and judged by `oracles`.
`evaluate_many` runs the tasks of several cases side by side. The campaign, the shrinker and
the corpus tests all go through here.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from tests.fuzz import harness, oracles
from tests.fuzz.harness import DEFAULT_LIMITS, Limits, Task
from tests.fuzz.oracles import Failure

ROOT = harness.ROOT
CLI_TARGETS = ("sessions", "analyze", "analyze2", "sessions-workers")


@dataclass(frozen=True, slots=True)
class Case:
    """A capture to try, and how."""

    data: bytes
    other: Path
    """Intact capture for the two-sided run."""
    suffix: str = ".pcap"
    mutant_side: str = "client"
    targets: tuple[str, ...] = CLI_TARGETS
    """CLI targets to run besides the API."""
    prefix: bytes | None = None
    """The readable prefix (see `mutators.Mutant.prefix`)."""
    tellable: str | None = None
    seed: str = ""
    steps: tuple[str, ...] = ()
    subprocess: bool = False
    """Run the CLI targets as real `python -m analyzer` processes."""
    label: str = field(default="", compare=False)

    def with_data(self, data: bytes, prefix: bytes | None) -> Case:
        return replace(self, data=data, prefix=prefix)


def tasks(case: Case, workdir: Path, only: Sequence[str] | None = None) -> list[Task]:
    """Write the case into `workdir` and return its tasks (`api` first)."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    path = workdir / f"capture{case.suffix}"
    path.write_bytes(case.data)
    prefix_path = None
    if case.prefix is not None:
        prefix_path = workdir / "prefix.pcap"
        prefix_path.write_bytes(case.prefix)
    wanted = [t for t in case.targets if only is None or t in only]
    out = [Task("api", path, workdir, prefix=prefix_path)]
    for target in wanted:
        out.append(
            Task(
                target,
                path,
                workdir,
                other=case.other,
                mutant_side=case.mutant_side,
                subprocess=case.subprocess,
            )
        )
    return out


def evaluate_many(
    cases: Sequence[Case],
    workroot: Path,
    limits: Limits = DEFAULT_LIMITS,
    jobs: int = 1,
    only: Sequence[str] | None = None,
) -> list[list[Failure]]:
    """The failures of each case, running up to `jobs` children at a time."""
    all_tasks: list[Task] = []
    spans: list[tuple[int, int]] = []
    for i, case in enumerate(cases):
        mine = tasks(case, workroot / f"case{i}", only)
        spans.append((len(all_tasks), len(all_tasks) + len(mine)))
        all_tasks += mine
    results = harness.run_tasks(all_tasks, limits, jobs)
    return [
        oracles.judge(all_tasks[a:b], results[a:b], case.tellable)
        for case, (a, b) in zip(cases, spans, strict=True)
    ]


def evaluate(
    case: Case, workdir: Path, limits: Limits = DEFAULT_LIMITS, only: Sequence[str] | None = None
) -> list[Failure]:
    return evaluate_many([case], workdir, limits, 1, only)[0]
