"""The committed sample capture pairs are exactly what the generator makes, and tshark reads them
back to the intended dialogues."""

from __future__ import annotations

from pathlib import Path

import pytest
from pairs_support import CAPTURES, load_generator, tshark_follow, tshark_path

gen = load_generator()
NAMES = list(gen.SCENARIOS)
SIDES = (gen.CLIENT_SIDE, gen.SERVER_SIDE)


def test_every_scenario_of_the_brief_is_generated() -> None:
    assert set(NAMES) >= {
        "clean-starttls",
        "pix-starttls-masked",
        "esa-starttls-xxxxxxxx",
        "banner-masked",
        "pix-dkim-reset",
        "long-header-drop",
        "interactive-telnet",
        "proxy-token-removed",
    }


def test_two_runs_give_identical_bytes_equal_to_the_committed_files(tmp_path: Path) -> None:
    first = gen.write(tmp_path / "a")
    second = gen.write(tmp_path / "b")
    assert [p.relative_to(tmp_path / "a") for p in first] == [
        p.relative_to(tmp_path / "b") for p in second
    ]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
        committed = CAPTURES / a.relative_to(tmp_path / "a")
        assert committed.read_bytes() == a.read_bytes(), f"{committed} is stale: regenerate"
    assert gen.check(CAPTURES) == []


def test_check_reports_a_file_that_differs(tmp_path: Path) -> None:
    gen.write(tmp_path, ["old-pix-noop"])
    victim = tmp_path / "old-pix-noop" / gen.SERVER_SIDE
    victim.write_bytes(victim.read_bytes()[:-1])
    assert gen.check(tmp_path, ["old-pix-noop"]) == [victim]


def test_readme_session_table_matches_the_generator() -> None:
    readme = (CAPTURES / "README.md").read_text(encoding="utf-8")
    table = gen.session_table(gen.built())
    assert f"{gen.README_BEGIN}\n{table}\n{gen.README_END}" in readme
    for name in NAMES:
        assert f"`{name}`" in readme


@pytest.mark.parametrize("name", NAMES)
def test_files_stay_small(name: str) -> None:
    for side in SIDES:
        size = (CAPTURES / name / side).stat().st_size
        assert 2_000 < size < 64_000, (name, side, size)


@pytest.mark.tshark
@pytest.mark.skipif(tshark_path() is None, reason="tshark not installed")
@pytest.mark.parametrize("side", SIDES)
@pytest.mark.parametrize("name", NAMES)
def test_tshark_reads_the_file_and_follows_each_session_to_its_dialogue(
    name: str, side: str
) -> None:
    scenario = gen.SCENARIOS[name]()
    run = tshark_follow(CAPTURES / name / side, len(scenario.sessions))
    assert run.returncode == 0, run.stderr
    assert "appears to be damaged" not in run.stderr + run.stdout
    assert "cut short" not in run.stderr
    assert "Interval" in run.stdout  # the io,stat table
    assert sorted(run.streams) == list(range(len(scenario.sessions)))
    for index, plan in enumerate(scenario.sessions):
        streams = plan.client_side if side == gen.CLIENT_SIDE else plan.server_side
        assert run.streams[index] == (streams.client_to_server, streams.server_to_client), (
            plan.label
        )
