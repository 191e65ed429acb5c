"""The command queue: which waiting command each reply answers, with pipelining, gaps and
resynchronisation (RFC 2920 §3.1), and the bound on what it keeps."""

from __future__ import annotations

from analyzer._common import Direction
from analyzer.smtp.anomalies import AnomalyReporter
from analyzer.smtp.events import AnomalySeen, Command, Event, SmtpAnomaly
from analyzer.smtp.limits import MAX_PENDING_COMMANDS
from analyzer.smtp.pending import CommandQueue


def command(verb: str, offset: int = 0) -> Command:
    return Command(verb, b"", verb.encode(), b"\r\n", offset, None, 0.0, True)


def queue_of(*verbs: str) -> tuple[CommandQueue, list[Command]]:
    queue = CommandQueue(AnomalyReporter())
    commands = [command(verb, offset=10 * i) for i, verb in enumerate(verbs)]
    for c in commands:
        queue.push(c)
    return queue, commands


def anomalies(out: list[Event]) -> list[SmtpAnomaly]:
    return [e.kind for e in out if isinstance(e, AnomalySeen)]


def test_pipelined_commands_are_answered_in_the_order_they_were_sent() -> None:
    queue, (mail, rcpt1, rcpt2, data) = queue_of("MAIL", "RCPT", "RCPT", "DATA")
    out: list[Event] = []
    assert queue.match(250, out) is mail
    assert queue.match(250, out) is rcpt1
    assert queue.match(550, out) is rcpt2  # a failure fits any command
    assert queue.match(354, out) is data
    assert len(queue) == 1  # 354 is intermediate: DATA waits for its final reply
    assert out == []


def test_the_final_reply_to_data_answers_it_after_its_message() -> None:
    queue, (data,) = queue_of("DATA")
    out: list[Event] = []
    assert queue.match(354, out) is data
    queue.drop_head(data)  # the message started
    queue.await_final(data)
    assert queue.match(250, out) is data
    assert len(queue) == 0 and out == []


def test_a_reply_with_nothing_waiting_answers_nothing() -> None:
    queue = CommandQueue(AnomalyReporter())
    assert queue.match(250, []) is None


def test_a_gap_in_the_server_stream_drops_the_commands_whose_replies_it_held() -> None:
    queue, (_mail, _rcpt, data, quit_) = queue_of("MAIL", "RCPT", "DATA", "QUIT")
    queue.gap(client=False)
    out: list[Event] = []
    assert queue.match(354, out) is data  # the 250s to MAIL and RCPT were lost
    assert queue.head() is data
    assert out == []  # lost replies are the gap's doing, not the server's
    queue.drop_head(data)
    assert queue.match(221, out) is quit_


def test_after_a_server_gap_a_reply_that_fits_the_oldest_command_answers_it() -> None:
    queue, (mail, rcpt) = queue_of("MAIL", "RCPT")
    queue.gap(client=False)
    assert queue.match(250, []) is mail
    assert queue.head() is rcpt


def test_after_a_client_gap_a_reply_that_cannot_answer_the_oldest_answers_none() -> None:
    queue, (mail,) = queue_of("MAIL")
    queue.gap(client=True)
    out: list[Event] = []
    assert queue.match(354, out) is None  # its DATA was lost in the gap
    assert queue.head() is mail and out == []
    assert queue.match(250, out) is mail


def test_the_gap_marks_hold_until_nothing_waits() -> None:
    queue, (_mail, _rcpt) = queue_of("MAIL", "RCPT")
    queue.gap(client=True)
    queue.gap(client=False)
    queue.match(250, [])
    assert queue.client_gap and queue.server_gap
    queue.match(250, [])
    assert not queue.client_gap and not queue.server_gap


def test_without_a_gap_a_reply_only_a_later_command_can_get_resynchronises() -> None:
    queue, (_mail, _rcpt, data) = queue_of("MAIL", "RCPT", "DATA")
    out: list[Event] = []
    assert queue.match(354, out) is data
    assert anomalies(out) == [SmtpAnomaly.REPLIES_OUT_OF_STEP]
    (seen,) = out
    assert isinstance(seen, AnomalySeen)
    assert seen.direction is Direction.SERVER_TO_CLIENT and seen.offset == data.offset
    assert "2 earlier command(s)" in seen.detail
    assert queue.head() is data


def test_without_a_gap_an_ill_fitting_reply_with_no_later_match_answers_the_oldest() -> None:
    queue, (ehlo, mail) = queue_of("EHLO", "MAIL")
    out: list[Event] = []
    assert queue.match(220, out) is ehlo  # 220 is no reply to EHLO, but nothing says more
    assert queue.head() is mail and out == []
    queue, (mail, rcpt) = queue_of("MAIL", "RCPT")
    assert queue.match(354, out) is mail  # 354 answers only DATA, and no DATA waits
    assert queue.head() is rcpt and out == []


def test_beyond_the_bound_the_oldest_command_is_forgotten_and_counted() -> None:
    queue, commands = queue_of(*["NOOP"] * (MAX_PENDING_COMMANDS + 2))
    assert len(queue) == MAX_PENDING_COMMANDS
    assert queue.forgotten == 2
    assert queue.head() is commands[2]
    assert queue.last() is commands[-1]


def test_exactly_at_the_bound_nothing_is_forgotten() -> None:
    queue, commands = queue_of(*["NOOP"] * MAX_PENDING_COMMANDS)
    assert queue.forgotten == 0 and queue.head() is commands[0]


def test_a_reply_answering_nothing_is_an_anomaly_named_for_a_client_gap() -> None:
    queue = CommandQueue(AnomalyReporter())
    out: list[Event] = []
    queue.unanswered(out, 250, False, 5, None, 1.0)
    queue.unanswered(out, 250, True, 9, None, 2.0)
    assert anomalies(out) == [SmtpAnomaly.REPLY_WITHOUT_COMMAND, SmtpAnomaly.REPLY_AFTER_GAP]


def test_an_unsolicited_421_answering_nothing_is_no_anomaly() -> None:
    queue = CommandQueue(AnomalyReporter())
    out: list[Event] = []
    queue.unanswered(out, 421, False, 5, None, 1.0)
    assert out == []
