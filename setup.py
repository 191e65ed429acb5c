"""The optional compiled build: the modules on the per-packet and per-line path, compiled with
mypyc (part of mypy) into C extensions, as black and mypy ship themselves.

Everything else is declared in pyproject.toml. Without `SMTPFW_USE_MYPYC=1` this adds nothing
and smtpfw is pure Python, the reference build. With it (gcc, the Python headers and mypy
needed at build time, nothing extra at run time):

    SMTPFW_USE_MYPYC=1 pip install --no-build-isolation .    # install the compiled build
    make compiled                                            # compile in place (tests, bench)
    make pure                                                # remove what `make compiled` built

The compiled build reads the same captures into the same bytes of output in about half the
time.
"""

from __future__ import annotations

import os

from setuptools import setup

COMPILED_MODULES = [
    "analyzer/_frame.py",
    "analyzer/capture/conversation.py",
    "analyzer/capture/decode.py",
    "analyzer/capture/fragments.py",
    "analyzer/capture/pcap.py",
    "analyzer/capture/pcapng.py",
    "analyzer/capture/source.py",
    "analyzer/dispatch.py",
    "analyzer/flows/key.py",
    "analyzer/flows/reassembly.py",
    "analyzer/flows/record.py",
    "analyzer/flows/table.py",
    "analyzer/jsontext.py",
    "analyzer/parallel.py",
    "analyzer/pipeline.py",
    "analyzer/session/builder.py",
    "analyzer/session/message.py",
    "analyzer/smtp/anomalies.py",
    "analyzer/smtp/commands.py",
    "analyzer/smtp/detect.py",
    "analyzer/smtp/limits.py",
    "analyzer/smtp/lines.py",
    "analyzer/smtp/message.py",
    "analyzer/smtp/observer.py",
    "analyzer/smtp/pending.py",
    "analyzer/smtp/replies.py",
    "analyzer/smtp/state.py",
    "analyzer/smtp/tls.py",
    "analyzer/text.py",
    "analyzer/tunnel.py",
]
"""Left interpreted: the modules that define the public frozen dataclasses built per line or per
event (`analyzer._quick` builds those faster than a compiled dataclass's generated `__init__`
would; `_frame`'s `FrameRef`, one per packet, has a written-out one instead), `capture/reader`
(a compiled generator dropped before its end would skip its `finally`, which accounts for what
was read), and everything that runs once per capture or per report."""

ext_modules = []
if os.environ.get("SMTPFW_USE_MYPYC") == "1":
    from mypyc.build import mypycify

    # The modules share one library, analyzer/compiled__mypyc*.so, inside the package.
    ext_modules = mypycify(COMPILED_MODULES, opt_level="3", group_name="analyzer.compiled")

setup(ext_modules=ext_modules)
