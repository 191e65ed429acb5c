"""`python -m tests.fuzz [-n N] [--seed S] ...`: run a fuzzing campaign and report its buckets.

Prints one line per failure bucket (count, targets, whether the corpus knows it, an example);
with `--save`, shrinks the first case of each bucket the corpus does not know yet and writes it
to tests/fuzz/corpus/ as an open failure. Exit status 0 when every bucket found is known to the
corpus, 1 when there is a new one.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from tests.fuzz import buckets, campaign
from tests.fuzz.harness import Limits


def _warm_up() -> None:
    """Import what the targets use once, here, so that every forked child has it."""
    import analyzer.cli
    import analyzer.report  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz", description=__doc__)
    parser.add_argument("-n", "--cases", type=int, default=2000, help="cases to run (2000)")
    parser.add_argument("--seed", type=int, default=1, help="campaign seed (1)")
    parser.add_argument("-j", "--jobs", type=int, default=2, help="children at a time (2)")
    parser.add_argument("--seconds", type=float, default=20.0, help="time limit per run (20)")
    parser.add_argument("--memory-mb", type=int, default=1024, help="memory limit per run (1024)")
    parser.add_argument(
        "--subprocess-every",
        type=int,
        default=10,
        metavar="K",
        help="run every K-th case's CLI targets as real `python -m analyzer` (10; 0: never)",
    )
    parser.add_argument(
        "--rotate", action="store_true", help="one CLI target per case, in turn (as the smoke test)"
    )
    parser.add_argument("--save", action="store_true", help="shrink and save new buckets")
    args = parser.parse_args(argv)
    _warm_up()
    limits = Limits(args.seconds, args.memory_mb << 20)

    def progress(outcome: campaign.Outcome) -> None:
        sys.stderr.write(f"\r{outcome.cases}/{args.cases} cases, {len(outcome.buckets)} bucket(s)")

    outcome = campaign.run(
        args.cases,
        args.seed,
        jobs=args.jobs,
        limits=limits,
        subprocess_every=args.subprocess_every,
        all_targets=not args.rotate,
        progress=progress if sys.stderr.isatty() else None,
    )
    entries = buckets.load()
    known = buckets.known_open(entries)
    print(f"{outcome.cases} cases in {outcome.seconds:.1f} s (seed {args.seed})")
    new = 0
    for bucket in sorted(outcome.buckets.values(), key=lambda b: (b.name not in known, -b.count)):
        state = "known" if bucket.name in known else "NEW"
        new += bucket.name not in known
        first = bucket.first
        assert first is not None and bucket.failure is not None
        print(
            f"{state:5} {bucket.count:6d}  {bucket.name}  [{','.join(sorted(bucket.targets))}]\n"
            f"              e.g. {first.seed} {'+'.join(first.steps) or '-'}: "
            f"{bucket.failure.detail[:160]}"
        )
        if args.save and bucket.name not in known:
            with tempfile.TemporaryDirectory(prefix="smtpfw-shrink-") as tmp:
                small = buckets.shrink(first, bucket.name, Path(tmp), limits)
            entry = buckets.add(small, bucket.name, entries, note=bucket.failure.detail[:300])
            buckets.save(entries)
            print(
                f"              saved {buckets.CORPUS / entry.file} "
                f"({len(first.data)} -> {len(small.data)} bytes)"
            )
    if not outcome.buckets:
        print("no failures")
    return 1 if new else 0


if __name__ == "__main__":
    raise SystemExit(main())
