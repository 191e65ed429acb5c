"""The DataFrames of `analyzer.frames`: declared dtypes, joins on `session`, and what they say
about the sample captures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import analyzer
from analyzer import Analysis, frames
from tests import craft

from .conftest import CAPTURES, ROOT, SAMPLES

TABLE_NAMES = tuple(frames.TABLES)
PER_SESSION = ("transactions", "commands", "findings", "evidence", "streams", "pairs")
"""Tables whose `session` names a row of the sessions table."""


def assert_declared(df: pd.DataFrame, name: str) -> None:
    declared = frames.TABLES[name].dtypes
    assert list(df.columns) == list(declared), name
    assert {c: str(t) for c, t in df.dtypes.items()} == {c: str(t) for c, t in declared.items()}
    assert dict(df.dtypes) == declared, name


@pytest.fixture(scope="module")
def empty_analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    """A capture with one TCP connection that is not SMTP: an analysis without sessions."""
    path = tmp_path_factory.mktemp("empty") / "web.pcap"
    web = craft.connection(
        [("c", b"GET / HTTP/1.1\r\nHost: example.org\r\n\r\n"), ("s", b"HTTP/1.1 200 OK\r\n\r\n")],
        server=("203.0.113.80", 80),
    )
    analysis = analyzer.analyze(craft.write(path, web))
    assert analysis.sessions == []
    return analysis


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_every_table_has_its_declared_columns_and_dtypes(
    name: str, masked: Analysis, rotation: Analysis
) -> None:
    build = frames.BUILDERS[name]
    assert_declared(build(masked), name)
    assert_declared(build(rotation), name)
    assert_declared(
        build(analyzer.read_sessions(CAPTURES / "banner-masked" / "client-side.pcap")), name
    )


@pytest.mark.parametrize("name", TABLE_NAMES)
def test_empty_input_gives_an_empty_table_with_the_declared_dtypes(
    name: str, empty_analysis: Analysis
) -> None:
    for source in ([], (), empty_analysis):
        df = frames.BUILDERS[name](source)
        assert len(df) == 0
        assert_declared(df, name)


README = ROOT / "notebooks" / "README.md"
COLUMNS_BEGIN = "<!-- columns:begin (python -m tests.frames.test_frames rewrites it) -->"
COLUMNS_END = "<!-- columns:end -->"


def _dtype(dtype: frames.Dtype) -> str:
    if isinstance(dtype, pd.CategoricalDtype):
        sep = " < " if dtype.ordered else ", "
        return f"category ({sep.join(str(c) for c in dtype.categories)})"
    return str(dtype)


def columns_markdown() -> str:
    """The column reference of notebooks/README.md, from the declared tables."""
    out: list[str] = []
    for name, table in frames.TABLES.items():
        out += [
            f"### `frames.{name}(x)`",
            "",
            table.doc,
            "",
            "| column | dtype | meaning |",
            "|---|---|---|",
        ]
        out += [
            f"| `{c.name}` | {_dtype(c.dtype)} | {c.doc.replace('|', chr(92) + '|')} |"
            for c in table.columns
        ]
        out.append("")
    return "\n".join(out).rstrip("\n")


def test_the_schema_documents_every_column() -> None:
    for name, table in frames.TABLES.items():
        schema = frames.schema(name)
        assert list(schema["column"]) == [c.name for c in table.columns]
        assert all(len(doc) > 5 for doc in schema["meaning"]), name
    text = README.read_text(encoding="utf-8")
    block = text.split(COLUMNS_BEGIN, 1)[1].split(COLUMNS_END, 1)[0].strip("\n")
    assert block == columns_markdown(), (
        "notebooks/README.md's column reference is stale: python -m tests.frames.test_frames"
    )


@pytest.mark.parametrize("sample", SAMPLES)
def test_tables_join_on_session(sample: str, pairs: dict[str, Analysis]) -> None:
    analysis = pairs[sample]
    sessions = frames.sessions(analysis)
    assert sessions["session"].is_unique
    for name in PER_SESSION:
        table = frames.BUILDERS[name](analysis)
        joined = table.merge(
            sessions[["session", "server_host"]],
            on="session",
            how="left",
            validate="m:1",
            indicator=True,
        )
        assert len(joined) == len(table), name
        assert (joined["_merge"] == "both").all(), f"{name}: a session missing from sessions"
    # peers point both ways
    peers = sessions.dropna(subset=["peer"]).set_index("session")["peer"]
    assert all(peers[peers[s]] == s for s in peers.index)


def test_findings_of_the_masked_pair_are_confirmed_and_cite_both_captures(masked: Analysis) -> None:
    found = frames.findings(masked)
    masks = found[found["kind"] == "ehlo_keyword_masked"]
    assert len(masks) == 3
    assert (masks["confidence"] == "confirmed").all()
    assert set(masks["session"]) == {"client#0", "client#2", "client#3"}
    assert set(masks["peer"]) == {"server#0", "server#2", "server#3"}
    assert masks["details"].str.contains('"original": "STARTTLS"').all()
    evidence = frames.evidence(masked)
    cited = evidence[evidence["finding"].isin(masks["finding"])]
    assert set(cited["capture"]) == {"client", "server"}
    assert cited["excerpt"].str.contains("XXXXXXXA").any()
    assert cited["excerpt"].str.contains("250-STARTTLS").any()
    # a finding's time is on the client-side clock, inside the client-side capture
    client = masked.captures[0]
    first = pd.Timestamp(client.first_ts, unit="s", tz="UTC")
    last = pd.Timestamp(client.last_ts, unit="s", tz="UTC")
    assert found["ts"].between(first, last).all()


def test_server_summary_shows_which_servers_starttls_is_masked_and_since_when(
    masked: Analysis,
) -> None:
    summary = frames.server_summary(masked)
    assert list(summary["server_host"]) == ["203.0.113.10"]
    row = summary.iloc[0]
    assert (
        row["sessions"],
        row["starttls_offered"],
        row["starttls_used"],
        row["starttls_masked"],
    ) == (4, 3, 0, 3)
    commands = frames.commands(masked)
    masked_replies = commands[
        (commands["capture"] == "client") & commands["text"].str.contains("250-XXXXXXXA")
    ]
    assert row["first_masked"] <= masked_replies["ts"].min()
    assert row["last_masked"] <= masked_replies["ts"].max()
    assert row["first_masked"] >= pd.Timestamp(masked.captures[0].first_ts, unit="s", tz="UTC")


def test_server_summary_of_a_clean_pair_counts_tls_and_no_mask(pairs: dict[str, Analysis]) -> None:
    row = frames.server_summary(pairs["clean-starttls"]).iloc[0]
    assert (
        row["sessions"],
        row["starttls_offered"],
        row["starttls_used"],
        row["starttls_masked"],
    ) == (3, 3, 3, 0)
    assert pd.isna(row["first_masked"]) and pd.isna(row["last_masked"])


def test_the_rotation_set_shows_one_peer_masked_from_10_40(rotation: Analysis) -> None:
    summary = frames.server_summary(rotation).set_index("server_host")
    assert list(summary.index) == ["203.0.113.10", "203.0.113.20", "203.0.113.30"]
    assert list(summary["starttls_masked"]) == [21, 0, 0]
    since = summary.loc["203.0.113.10", "first_masked"]
    assert since.strftime("%H:%M") == "10:40"
    sessions = frames.sessions(rotation)
    before = sessions[sessions["end"] < since]
    assert not before["outcome"].isin(["reset", "delivered"]).any()
    tx = frames.transactions(rotation)
    attempts = tx.groupby("message_id").size()
    assert (attempts > 1).sum() == 5


def test_outcomes_follow_the_sample_scenarios(pairs: dict[str, Analysis]) -> None:
    def outcomes(sample: str) -> list[str]:
        s = frames.sessions(pairs[sample])
        return list(s[s["capture"] == "client"]["outcome"].astype(str))

    assert outcomes("clean-starttls") == ["tls", "tls", "tls"]
    assert outcomes("pix-dkim-reset") == ["delivered", "reset", "reset", "delivered"]
    assert outcomes("pix-starttls-masked") == ["delivered", "no_mail", "delivered", "delivered"]
    assert outcomes("esa-starttls-xxxxxxxx") == ["delivered", "no_mail", "failed"]


@pytest.mark.parametrize("sample", SAMPLES)
def test_every_reply_link_points_at_a_command_and_back(
    sample: str, pairs: dict[str, Analysis]
) -> None:
    commands = frames.commands(pairs[sample]).set_index(["session", "line"])
    for (session, line), row in commands.iterrows():
        if not pd.isna(row["answers"]):
            assert commands.loc[(session, int(row["answers"])), "kind"] == "command"
        if not pd.isna(row["answered_by"]):
            reply = commands.loc[(session, int(row["answered_by"]))]
            assert reply["kind"] == "reply" and reply["answers"] == line
            assert reply["code"] == row["reply_code"]


def test_pairs_show_the_clock_offset_and_the_removed_keyword(pairs: dict[str, Analysis]) -> None:
    removed = frames.pairs(pairs["proxy-token-removed"])
    assert len(removed) == 3
    assert removed["clock_offset_s"].between(37.40, 37.42).all()
    tampered = removed[~removed["identical"]]
    assert list(tampered["length_server_side_s2c"] - tampered["length_client_side_s2c"]) == [14, 14]
    assert (removed["length_server_side_c2s"] == removed["length_client_side_c2s"]).all()
    assert frames.pairs(pairs["clean-starttls"])["identical"].all()


def test_streams_count_the_forged_resets(pairs: dict[str, Analysis]) -> None:
    streams = frames.streams(pairs["pix-dkim-reset"])
    client = streams[streams["capture"] == "client"].set_index("tcp_stream")
    assert list(client["end_s2c"].astype(str)) == ["fin", "rst", "rst", "fin"]
    assert list(client.loc[[1, 2], "end_ttl_s2c"]) == [255, 255]
    assert list(client.loc[[1, 2], "usual_ttl_s2c"]) == [63, 63]


def test_findings_over_time_counts_every_finding_in_bins_spanning_the_capture(
    rotation: Analysis,
) -> None:
    found = frames.findings(rotation)
    by_kind = frames.findings_over_time(rotation, "5min")
    assert int(by_kind.to_numpy().sum()) == len(found)
    assert set(by_kind.columns) == set(found["kind"].astype(str))
    assert all(str(t) == "Int64" for t in by_kind.dtypes)
    steps = by_kind.index.to_series().diff().dropna().unique()
    assert list(steps) == [pd.Timedelta("5min")]
    sessions = frames.sessions(rotation)
    assert by_kind.index[0] == sessions["start"].min().floor("5min")
    assert by_kind.loc[by_kind.index < pd.Timestamp("2024-03-19 10:40", tz="UTC")].sum().sum() == 0
    by_severity = frames.findings_over_time(rotation, "15min", by="severity")
    assert list(by_severity.columns) == ["medium", "high", "critical"]
    assert int(by_severity.to_numpy().sum()) == len(found)


def test_findings_over_time_of_nothing_is_empty(empty_analysis: Analysis) -> None:
    table = frames.findings_over_time(empty_analysis)
    assert table.empty and str(table.index.dtype) == "datetime64[ns, UTC]"
    with pytest.raises(ValueError):
        frames.findings_over_time(empty_analysis, by="colour")


def test_a_list_of_sessions_gets_the_one_sided_detectors() -> None:
    sessions = analyzer.read_sessions(CAPTURES / "pix-starttls-masked" / "client-side.pcap")
    found = frames.findings(sessions)
    assert set(found["kind"].astype(str)) == {"tls_downgrade", "ehlo_keyword_masked"}
    assert set(found["confidence"].astype(str)) == {"likely"}
    assert list(found["finding"]) == [f"F{i}" for i in range(1, len(found) + 1)]
    summary = frames.server_summary(sessions).iloc[0]
    assert (summary["starttls_offered"], summary["starttls_masked"]) == (3, 3)


def test_severity_and_confidence_are_ordered(masked: Analysis) -> None:
    found = frames.findings(masked)
    assert found["severity"].max() == "critical"
    assert (found["severity"] >= "high").all()
    assert found["confidence"].min() == "confirmed"


def test_other_inputs_are_refused() -> None:
    with pytest.raises(TypeError):
        frames.sessions("capture.pcap")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        frames.sessions([1, 2])  # type: ignore[list-item]


def test_plots_return_axes_with_one_lane_per_server(rotation: Analysis) -> None:
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ax = frames.sessions_timeline(rotation)
    assert [t.get_text() for t in ax.get_yticklabels()] == [
        "203.0.113.10",
        "203.0.113.20",
        "203.0.113.30",
    ]
    legend = ax.get_legend()
    assert legend is not None
    assert {t.get_text() for t in legend.get_texts()} == {"tls", "delivered", "reset", "no_mail"}
    bars = frames.plot_findings_over_time(rotation, "10min", by="severity")
    assert {t.get_text() for t in bars.get_legend().get_texts()} == {"medium", "high", "critical"}
    plt.close("all")


def test_importing_analyzer_does_not_import_pandas_or_matplotlib() -> None:
    code = (
        "import sys, analyzer\n"
        "assert 'pandas' not in sys.modules, 'pandas'\n"
        "from analyzer import frames\n"
        "assert 'pandas' in sys.modules\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_frames_is_the_only_module_that_imports_pandas() -> None:
    importers = sorted(
        str(p.relative_to(ROOT))
        for p in (ROOT / "analyzer").rglob("*.py")
        if any(
            line.strip().startswith(("import pandas", "from pandas"))
            for line in p.read_text(encoding="utf-8").splitlines()
        )
    )
    assert importers == ["analyzer/frames.py"]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=4e9)), max_size=20))
def test_times_keep_microseconds_and_missing_stays_missing(values: list[float | None]) -> None:
    table = frames.Table("t", "", (frames.Column("ts", frames.TIME, "time"),))
    column = table.frame([{"ts": v} for v in values])["ts"]
    assert str(column.dtype) == "datetime64[ns, UTC]"
    for v, got in zip(values, column, strict=True):
        if v is None:
            assert pd.isna(got)
        else:
            assert abs(got.value / 1e9 - v) <= 1e-6 + abs(v) * 1e-15


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_any_subset_of_sessions_gives_the_same_rows(data: st.DataObject) -> None:
    sessions = _rotation_sessions()
    chosen = data.draw(st.lists(st.sampled_from(range(len(sessions))), unique=True, max_size=8))
    subset = [sessions[i] for i in chosen]
    whole = frames.sessions(sessions).set_index("session")
    part = frames.sessions(subset)
    assert_declared(part, "sessions")
    pd.testing.assert_frame_equal(part.set_index("session"), whole.loc[[s.id for s in subset]])


_CACHE: dict[str, list[analyzer.SmtpSession]] = {}


def _rotation_sessions() -> list[analyzer.SmtpSession]:
    if "rotation" not in _CACHE:
        _CACHE["rotation"] = analyzer.read_sessions(sorted((CAPTURES / "rotation").glob("*.pcap*")))
    return _CACHE["rotation"]


def test_the_rotation_set_is_what_make_py_builds() -> None:
    result = subprocess.run(
        [sys.executable, str(CAPTURES / "rotation" / "make.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_ring_buffer_names_do_not_sort_in_time_order(rotation: Analysis) -> None:
    by_time = [Path(f.path).name for f in rotation.captures[0].files]
    assert by_time == ["relay.pcap1", "relay.pcap2", "relay.pcap3", "relay.pcap0"]
    first = frames.sessions(rotation).iloc[0]
    assert "midstream_start" in str(first["anomaly_kinds"])


if __name__ == "__main__":
    head, _, rest = README.read_text(encoding="utf-8").partition(COLUMNS_BEGIN)
    _, _, tail = rest.partition(COLUMNS_END)
    README.write_text(
        f"{head}{COLUMNS_BEGIN}\n{columns_markdown()}\n{COLUMNS_END}{tail}", encoding="utf-8"
    )
