"""Which build of smtpfw the tests run against: pure Python, or with `--compiled` the build of
`make compiled` (setup.py). A compiled module left beside its source would silently stand in for
it, so each run checks it gets the build it asks for."""

from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compiled",
        action="store_true",
        help="run against the compiled build (`make compiled`) instead of pure Python",
    )


def _compiled_modules() -> list[Path]:
    import analyzer

    return sorted(Path(analyzer.__file__).parent.rglob("*.so"))


def pytest_configure(config: pytest.Config) -> None:
    import analyzer.smtp.observer

    compiled = Path(analyzer.smtp.observer.__file__).suffix == ".so"
    if config.getoption("--compiled") and not compiled:
        raise pytest.UsageError("--compiled, but analyzer is pure Python: run `make compiled`")
    if not config.getoption("--compiled") and _compiled_modules():
        raise pytest.UsageError(
            f"compiled modules next to the sources ({_compiled_modules()[0]}...) would stand in "
            "for them: run `make pure`, or pytest --compiled to test that build"
        )


def pytest_report_header(config: pytest.Config) -> str:
    return "smtpfw build: " + ("compiled (mypyc)" if config.getoption("--compiled") else "pure")
