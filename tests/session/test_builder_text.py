"""The session builder's transcript text of a reply is what decoding it line by line gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from analyzer.session.builder import _transcript_text
from analyzer.session.message import decode_text
from analyzer.smtp.events import Reply

reply_lines = st.lists(st.binary(max_size=16).map(lambda b: b.replace(b"\n", b"")), max_size=6)


def line_by_line(reply: Reply) -> str:
    last = len(reply.lines) - 1
    if not reply.code:
        return "\n".join(decode_text(text) for text in reply.lines)
    return "\n".join(
        f"{reply.code:03d}{'-' if i < last else ' '}{decode_text(text)}"
        for i, text in enumerate(reply.lines)
    )


@settings(max_examples=500, deadline=None)
@given(st.sampled_from([0, 220, 250, 554, 999]), reply_lines)
def test_a_reply_decoded_in_one_piece_reads_as_decoded_line_by_line(
    code: int, lines: list[bytes]
) -> None:
    reply = Reply(code, tuple(lines), b"", None, False, 0, None, None, 0.0, 0.0)
    assert _transcript_text(reply) == line_by_line(reply)
