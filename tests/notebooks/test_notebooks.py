"""The notebooks run top to bottom on the bundled captures, say what they claim, and are
committed without outputs.

Each notebook is executed with nbclient in a kernel of this interpreter (a kernel spec written
for the test points at `sys.executable`, so no system-wide kernel can stand in for it); a cell
that raises fails the test. Cells tagged in the notebook are checked for the facts they print.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"
NAMES = ("01-first-look.ipynb", "02-both-sides.ipynb", "03-forensic-timeline.ipynb")
CELL_TIMEOUT_S = 120


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A `python3` kernel spec for this interpreter, first on JUPYTER_PATH."""
    base = tmp_path_factory.mktemp("jupyter")
    spec = base / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "Python 3 (smtpfw tests)",
                "language": "python",
                "env": {"MPLBACKEND": "module://matplotlib_inline.backend_inline",
                        "PYTHONPATH": str(ROOT)},
            }
        ),
        encoding="utf-8",
    )
    yield base


def _client(name: str) -> Any:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    return nbclient.NotebookClient(
        nb,
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )


async def _execute_all(clients: list[Any]) -> None:
    """The notebooks side by side, each in its own kernel (most of the time is imports)."""
    await asyncio.gather(*(client.async_execute() for client in clients))


def _tagged(nb: Any, tag: str) -> str:
    """Everything the cells tagged `tag` printed or displayed, as text."""
    out: list[str] = []
    for cell in nb.cells:
        if tag not in cell.get("metadata", {}).get("tags", []):
            continue
        for output in cell.get("outputs", []):
            if "text" in output:
                out.append(output["text"])
            data = output.get("data", {})
            out.append(data.get("text/plain", ""))
            out.append(data.get("text/html", ""))
    assert out, f"no output from the cells tagged {tag!r}"
    return "\n".join(out)


def _errors(nb: Any) -> list[str]:
    return [
        f"{o.get('ename')}: {o.get('evalue')}"
        for cell in nb.cells
        for o in cell.get("outputs", [])
        if o.get("output_type") == "error"
    ]


@pytest.fixture(scope="module")
def executed(kernel_path: Path) -> Iterator[dict[str, Any]]:
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
        monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
        clients = [_client(name) for name in NAMES]
        asyncio.run(_execute_all(clients))
        yield {name: client.nb for name, client in zip(NAMES, clients, strict=True)}


def test_every_notebook_runs_top_to_bottom_without_an_error(executed: dict[str, Any]) -> None:
    for name, nb in executed.items():
        assert _errors(nb) == [], name
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(c.execution_count is not None for c in code), name


def test_first_look_shows_the_masked_keywords_and_the_refused_command(
    executed: dict[str, Any],
) -> None:
    nb = executed["01-first-look.ipynb"]
    assert "XXXXXXXA" in _tagged(nb, "masked-keywords")
    failures = _tagged(nb, "failures")
    assert "STARTTLS" in failures and "500" in failures
    lab = _tagged(nb, "lab-tls")
    for client in ("198.51.100.10", "198.51.100.11", "198.51.100.12", "198.51.100.13"):
        assert client in lab


def test_both_sides_shows_the_pairing_and_the_masked_command(executed: dict[str, Any]) -> None:
    nb = executed["02-both-sides.ipynb"]
    pairing = _tagged(nb, "pairing")
    assert "server-side clock minus client-side clock: +37.41" in pairing
    assert "tcp_timestamp" in pairing
    diff = _tagged(nb, "diff")
    assert "XXXXXXXX" in diff and "STARTTLS" in diff and "XXXXXXXA" in diff
    assert "XXXXXXXX" in _tagged(nb, "evidence")


def test_forensic_timeline_answers_when_which_peers_and_how_many_retries(
    executed: dict[str, Any],
) -> None:
    nb = executed["03-forensic-timeline.ipynb"]
    files = _tagged(nb, "files")
    by_name = "by name: ['relay.pcap0', 'relay.pcap1', 'relay.pcap2', 'relay.pcap3']"
    assert by_name in files
    table = files.split(by_name, 1)[1]
    assert re.findall(r"relay\.pcap\d", table)[:4] == [
        "relay.pcap1", "relay.pcap2", "relay.pcap3", "relay.pcap0"]
    assert "first sign of damage: 2024-03-19 10:40:01 UTC" in _tagged(nb, "damage-start")
    peers = _tagged(nb, "peers")
    assert "203.0.113.10: STARTTLS masked in 21 of 35 sessions from 10:40:01" in peers
    assert "203.0.113.20: unaffected" in peers and "203.0.113.30: unaffected" in peers
    retries = _tagged(nb, "retries")
    assert "5 messages were retried (15 attempts), 0 of them delivered" in retries
    assert "all DKIM-signed: True" in retries


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_have_no_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert cell.outputs == [], f"{name}: a cell has outputs"
        assert cell.execution_count is None, f"{name}: a cell has an execution count"


@pytest.mark.parametrize("name", NAMES)
def test_notebooks_use_only_the_public_api_and_relative_capture_paths(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    source = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    imports = [line.strip() for line in source.splitlines()
               if line.strip().startswith(("import ", "from "))]
    allowed = ("import analyzer", "from analyzer import frames",
               "from analyzer.display import show_session", "import pandas as pd",
               "from pathlib import Path")
    assert sorted(set(imports) - set(allowed)) == []
    assert "/work" not in source and "/home" not in source and "/tmp" not in source
