"""A credential the middlebox changed is reported, compared by keyed digest: both captures
blank it with `*`, so only the digests (under a key made for the analysis and kept nowhere)
say that the server got other credentials than the client sent. Neither the credential, nor
its base64, nor the digest, nor the key appears in any output."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest
from scapy.utils import wrpcap

from analyzer import analyze
from analyzer.cli import EXIT_FINDINGS, main
from analyzer.detect.changes import CREDENTIAL_CHANGED, CREDENTIAL_RESIZED
from analyzer.result import Analysis
from analyzer.smtp.secrets import CredentialDigest, CredentialKey, digest_secrets
from tests.detect.transcripts import BANNER, EHLO, Item, packets

from .dialogues import (
    EHLO_REPLY,
    LOGIN_PASSWORD,
    LOGIN_USER,
    OK,
    PLAIN_TOKEN,
    analysis_leaks,
    b64,
    dialogue,
    frame_text,
    leaks,
    login,
    report_leaks,
)

CHANGED_PLAIN = PLAIN_TOKEN[:-3] + (b"B" if PLAIN_TOKEN[-3:-2] != b"B" else b"C") + PLAIN_TOKEN[-2:]
"""The PLAIN initial response with one base64 character changed: the same length."""
CHANGED_PASSWORD = b64(b"S3cr3t-Pa55word?")
"""LOGIN's password response for another password of the same length."""


def _one_char_apart(a: bytes, b: bytes) -> bool:
    return len(a) == len(b) and sum(x != y for x, y in zip(a, b, strict=True)) == 1


def _swap(items: list[Item], old: bytes, new: bytes) -> list[Item]:
    """The dialogue as it reached the server: the client line `old` arrived as `new`."""
    return [(who, new if data == old else data) for who, data in items]


def _plain(token: bytes) -> list[Item]:
    return dialogue([("c", b"AUTH PLAIN " + token + b"\r\n"), ("s", OK)])


def _analyse(tmp: Path, client: list[Item], server: list[Item]) -> tuple[Analysis, Path, Path]:
    client_path = tmp / "client.pcap"
    server_path = tmp / "server.pcap"
    wrpcap(str(client_path), packets(client))
    wrpcap(str(server_path), packets(server, start=1.7e9 + 0.002))
    analysis = analyze(client_side=client_path, server_side=server_path)
    assert analysis.alignments, "the two captures pair"
    return analysis, client_path, server_path


def _credential_changes(analysis: Analysis) -> list[dict[str, object]]:
    changes: list[dict[str, object]] = []
    for finding in analysis.findings:
        if str(finding.kind) == "payload_modified":
            found = finding.details.get("changes")
            assert isinstance(found, list)
            changes += [c for c in found if c.get("place") == "auth_credential"]
    return changes


def _report(tmp: Path, client: Path, server: Path) -> Path:
    out = tmp / "report"
    code = main(
        [
            "analyze",
            "--client-side",
            str(client),
            "--server-side",
            str(server),
            "--out",
            str(out),
            "--format",
            "json,md,html",
        ]
    )
    assert code == EXIT_FINDINGS
    return out


def _digests(analysis: Analysis) -> list[bytes]:
    return [c.digest for s in analysis.sessions for c in s.credentials if c.digest is not None]


def _nothing_leaks(analysis: Analysis, out: Path, *extra: bytes) -> None:
    assert analysis_leaks(analysis) == []
    assert report_leaks(out) == []
    digests = _digests(analysis)
    assert digests, "the sessions hold the credentials' digests"
    shown = (frame_text(analysis) + repr(analysis)).encode("utf-8", "surrogateescape")
    for digest in digests:
        assert digest not in shown and digest.hex().encode() not in shown
        assert repr(digest)[2:-1].encode() not in shown
    for path in sorted(out.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for secret in extra:
            assert secret not in data, path.name
        for digest in digests:
            assert digest not in data and digest.hex().encode() not in data, path.name
        assert leaks(data) == []


def test_a_plain_response_changed_in_transit_is_payload_modified(tmp_path: Path) -> None:
    assert _one_char_apart(PLAIN_TOKEN, CHANGED_PLAIN)
    analysis, client, server = _analyse(tmp_path, _plain(PLAIN_TOKEN), _plain(CHANGED_PLAIN))
    (modified,) = [f for f in analysis.findings if str(f.kind) == "payload_modified"]
    assert str(modified.confidence) == "confirmed"
    assert "AUTH credential" in modified.summary
    (change,) = _credential_changes(analysis)
    assert change["note"] == CREDENTIAL_CHANGED
    assert (change["sent"], change["received"]) == ("", ""), "the bytes are not shown"
    session = analysis.session(modified.sessions[0])
    assert session is not None
    (credential,) = session.credentials
    assert change["sent_offset"] == credential.start
    auth = next(line for line in session.lines if line.verb == "AUTH")
    proof = [e for e in modified.evidence if CREDENTIAL_CHANGED in e.note]
    assert [(e.capture, e.excerpt) for e in proof] == [
        ("client", "AUTH PLAIN"),
        ("server", "AUTH PLAIN"),
    ]
    assert proof[0].frame == auth.frame, "the frame that carried the AUTH line"
    assert all(e.frame is not None for e in proof)
    out = _report(tmp_path, client, server)
    _nothing_leaks(analysis, out, CHANGED_PLAIN)
    (pair,) = json.loads((out / "report.json").read_text())["pairs"]
    (divergence,) = pair["divergences"]
    assert divergence["credential"] is True
    assert (divergence["sent"], divergence["received"]) == ("", "")
    assert divergence["sent_length"] == divergence["received_length"] == len(PLAIN_TOKEN)
    assert leaks(pickle.dumps(analysis) + repr(analysis).encode()) == []
    assert CHANGED_PLAIN not in pickle.dumps(analysis)


def test_the_same_credentials_on_both_sides_are_no_finding(tmp_path: Path) -> None:
    analysis, _, _ = _analyse(tmp_path, _plain(PLAIN_TOKEN), _plain(PLAIN_TOKEN))
    assert analysis.findings == []
    assert all(al.identical for al in analysis.alignments)
    client_session, server_session = (
        analysis.alignments[0].pair.client_side,
        analysis.alignments[0].pair.server_side,
    )
    mine, theirs = client_session.credentials, server_session.credentials
    assert len(mine) == len(theirs) == 1
    assert mine[0].digest is not None
    assert mine[0].digest == theirs[0].digest, "both sides digest with one key"


def test_a_changed_login_password_is_payload_modified(tmp_path: Path) -> None:
    assert len(CHANGED_PASSWORD) == len(LOGIN_PASSWORD)
    sent = dialogue(login())
    arrived = _swap(sent, LOGIN_PASSWORD + b"\r\n", CHANGED_PASSWORD + b"\r\n")
    analysis, client, server = _analyse(tmp_path, sent, arrived)
    (modified,) = [f for f in analysis.findings if str(f.kind) == "payload_modified"]
    (change,) = _credential_changes(analysis)
    session = analysis.session(modified.sessions[0])
    assert session is not None
    _user, password = session.credentials
    assert change["sent_offset"] == password.start, "the password, not the user name"
    assert {e.excerpt for e in modified.evidence if CREDENTIAL_CHANGED in e.note} == {"AUTH LOGIN"}
    out = _report(tmp_path, client, server)
    _nothing_leaks(analysis, out, CHANGED_PASSWORD, LOGIN_USER)


def test_a_credential_of_another_length_is_one_finding(tmp_path: Path) -> None:
    """The blanked runs differ in length: the byte comparison sees it, the digests add nothing."""
    longer = PLAIN_TOKEN + b"AAAA"
    analysis, client, server = _analyse(tmp_path, _plain(PLAIN_TOKEN), _plain(longer))
    assert [str(f.kind) for f in analysis.findings] == ["payload_modified"]
    assert _credential_changes(analysis) == []
    changes = analysis.findings[0].details["changes"]
    assert isinstance(changes, list)
    (change,) = changes
    assert change["place"] == "command" and change["note"] == CREDENTIAL_RESIZED
    assert "AUTH credentials" in analysis.findings[0].summary
    assert not any(d.credential for al in analysis.alignments for d in al.divergences)
    out = _report(tmp_path, client, server)
    _nothing_leaks(analysis, out, longer)


def test_a_credential_one_capture_lost_is_compared_with_nothing(tmp_path: Path) -> None:
    """The server-side capture lost the segment of the AUTH line: no digest there, no claim."""
    sent = _plain(PLAIN_TOKEN)
    arrived = _plain(CHANGED_PLAIN)
    client_path, server_path = tmp_path / "client.pcap", tmp_path / "server.pcap"
    wrpcap(str(client_path), packets(sent))
    lossy = packets(arrived, start=1.7e9 + 0.002)
    auth = next(i for i, (_, data) in enumerate(arrived) if data.startswith(b"AUTH"))
    del lossy[3 + auth]  # after the three handshake packets
    wrpcap(str(server_path), lossy)
    analysis = analyze(client_side=client_path, server_side=server_path)
    assert analysis.alignments
    assert _credential_changes(analysis) == []


def test_the_key_is_in_no_pickle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[CredentialKey] = []
    make = CredentialKey.__init__

    def recording(self: CredentialKey) -> None:
        make(self)
        made.append(self)

    monkeypatch.setattr(CredentialKey, "__init__", recording)
    analysis, _, _ = _analyse(tmp_path, _plain(PLAIN_TOKEN), _plain(CHANGED_PLAIN))
    assert _credential_changes(analysis)
    keys = {bytes(key._key) for key in made}
    assert len(keys) == len(made) >= 1
    blob = pickle.dumps(analysis)
    for key in keys:
        assert key not in blob
        assert key.hex().encode() not in blob
        assert key not in repr(analysis).encode("utf-8", "surrogateescape")
    restored = pickle.loads(blob)
    assert _credential_changes(restored) == _credential_changes(analysis)
    with pytest.raises(TypeError):
        pickle.dumps(made[0])
    assert "not shown" in repr(made[0])


def test_digests_need_every_byte_of_the_credential() -> None:
    key = CredentialKey()
    data = bytearray(b"AUTH PLAIN " + PLAIN_TOKEN + b"\r\n")
    start, end = 100 + 11, 100 + 11 + len(PLAIN_TOKEN)
    (whole,) = digest_secrets(key, data, 100, [], [(start, end)])
    (holed,) = digest_secrets(key, data, 100, [(start + 3, 2)], [(start, end)])
    (cut,) = digest_secrets(key, data[:20], 100, [], [(start, end)])
    (early,) = digest_secrets(key, data, start + 1, [], [(start, end)])
    assert whole.digest is not None and len(whole.digest) == 16
    assert (holed.digest, cut.digest, early.digest) == (None, None, None)
    (again,) = digest_secrets(key, bytearray(data), 100, [], [(start, end)])
    (other_key,) = digest_secrets(CredentialKey(), bytearray(data), 100, [], [(start, end)])
    assert again.digest == whole.digest and not again.differs_from(whole)
    assert not other_key.differs_from(whole), "digests of two keys are never compared"
    changed = CredentialDigest(start, end, bytes(16), key.tag)
    assert changed.differs_from(whole)
    assert not holed.differs_from(whole), "a credential not held whole is compared with nothing"
    assert PLAIN_TOKEN not in repr(whole).encode()


def test_an_auth_line_the_close_cuts_is_blanked(tmp_path: Path) -> None:
    """The client sends its AUTH line without CRLF and closes: the line is still AUTH's."""
    items: list[Item] = [
        ("s", BANNER),
        ("c", EHLO),
        ("s", EHLO_REPLY),
        ("c", b"AUTH PLAIN " + PLAIN_TOKEN),
    ]
    client_path, server_path = tmp_path / "client.pcap", tmp_path / "server.pcap"
    wrpcap(str(client_path), packets(items))
    wrpcap(str(server_path), packets(items, start=1.7e9 + 0.002))
    analysis = analyze(client_side=client_path, server_side=server_path)
    assert analysis_leaks(analysis) == []
