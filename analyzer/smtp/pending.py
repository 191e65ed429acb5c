"""The commands of one connection that wait for replies, and which of them a reply answers.

A client may send several commands before the first reply (RFC 2920 pipelining); the server
answers them in order (§3.1), so a reply answers the oldest waiting command. A `CommandQueue`
holds them (at most `MAX_PENDING_COMMANDS`; the oldest beyond that is forgotten and counted)
and matches each reply to one with the tables of `state`, guessing past what a capture lost:

- after a gap in the server's stream (`server_gap`), replies were lost, so a reply that cannot
  answer the oldest command answers the first later one it can, and the commands before it are
  dropped;
- after a gap in the client's stream (`client_gap`), the command a reply answers may be the one
  lost: a reply that cannot answer the oldest command answers none;
- with no gap, a reply that can only answer a later command (354 only DATA, 221 only QUIT:
  `RESYNC_CODES`) shows that earlier replies were merged or lost: the queue resynchronises on
  that command and reports `REPLIES_OUT_OF_STEP`.

The gap marks hold until the queue is empty again (both sides are then in step). It is shared
by the native observer and the tshark engine. It does not read bytes or lines, decide what a
reply does to the session (`state.reply_effect`), or do I/O.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from analyzer._common import Direction, FrameRef

from .anomalies import AnomalyReporter
from .events import Command, Event, SmtpAnomaly
from .limits import MAX_PENDING_COMMANDS
from .state import RESYNC_CODES, UNSOLICITED_CODES, keeps_command_open, reply_fits

S2C: Final = Direction.SERVER_TO_CLIENT


class CommandQueue:
    """Commands waiting for replies, oldest first."""

    __slots__ = ("_commands", "_done", "_reporter", "client_gap", "forgotten", "server_gap")

    def __init__(self, reporter: AnomalyReporter) -> None:
        self._commands: deque[Command] = deque()
        self._reporter = reporter
        self._done: Command | None = None
        """The last DATA whose message ended: its next reply is the final one."""
        self.client_gap = False
        """Client bytes were lost since the two directions were last in step."""
        self.server_gap = False
        """Server bytes were lost since the two directions were last in step."""
        self.forgotten = 0
        """Commands forgotten unanswered beyond `MAX_PENDING_COMMANDS`."""

    def __len__(self) -> int:
        return len(self._commands)

    def head(self) -> Command | None:
        """The oldest waiting command."""
        commands = self._commands
        return commands[0] if commands else None

    def last(self) -> Command | None:
        """The newest waiting command."""
        commands = self._commands
        return commands[-1] if commands else None

    def push(self, command: Command) -> None:
        """A command was sent: it waits for its reply (the oldest is forgotten beyond
        `MAX_PENDING_COMMANDS`)."""
        commands = self._commands
        commands.append(command)
        if len(commands) > MAX_PENDING_COMMANDS:
            commands.popleft()
            self.forgotten += 1

    def await_final(self, command: Command) -> None:
        """The message of the DATA `command` ended: it waits again, for its final reply."""
        self._commands.append(command)
        self._done = command

    def drop_last(self) -> None:
        """Take back the newest command (a DATA read as answered at once)."""
        self._commands.pop()

    def drop_head(self, command: Command) -> None:
        """`command` was answered for good by a reply that also started something."""
        commands = self._commands
        if commands and commands[0] is command:
            commands.popleft()

    def clear(self) -> None:
        """Nothing waits any more (TLS began: what was sent before is not answered in clear)."""
        self._commands.clear()

    def gap(self, client: bool) -> None:
        """Bytes of one direction were lost while commands and replies were being exchanged."""
        if client:
            self.client_gap = True
        else:
            self.server_gap = True

    def match(self, code: int, out: list[Event]) -> Command | None:
        """The command a reply with `code` answers (None when none is waiting for it), taken
        off the queue unless the reply leaves it open (354, 334)."""
        commands = self._commands
        if not commands:
            return None
        head = commands[0]
        done = self._done
        if not reply_fits(head.verb, code, continued=head is done):
            if self.server_gap:
                # Replies were lost: skip the commands they answered.
                for index, command in enumerate(commands):
                    if reply_fits(command.verb, code, continued=command is done):
                        for _ in range(index):
                            commands.popleft()
                        head = command
                        break
            elif self.client_gap:
                # The command this reply answers was lost.
                return None
            elif code in RESYNC_CODES:
                later = next(
                    (
                        i
                        for i, c in enumerate(commands)
                        if reply_fits(c.verb, code, continued=False)
                    ),
                    None,
                )
                if later:
                    skipped = commands[later]
                    self._reporter.report(
                        out,
                        SmtpAnomaly.REPLIES_OUT_OF_STEP,
                        S2C,
                        f"{code} can only answer {skipped.verb}; the replies to {later} "
                        "earlier command(s) were merged or missing",
                        skipped.offset,
                        skipped.frame,
                        skipped.ts,
                    )
                    for _ in range(later):
                        commands.popleft()
                    head = commands[0]
        if keeps_command_open(head.verb, code):
            return head
        commands.popleft()
        if not commands:
            self.client_gap = self.server_gap = False
        return head

    def unanswered(
        self,
        out: list[Event],
        code: int,
        client_gap: bool,
        offset: int,
        frame: FrameRef | None,
        ts: float,
    ) -> None:
        """A reply answered no command (`client_gap`: client bytes had been lost when it came):
        an anomaly, unless it is one a server may send unasked (421)."""
        if code in UNSOLICITED_CODES:
            return
        self._reporter.report(
            out,
            SmtpAnomaly.REPLY_AFTER_GAP if client_gap else SmtpAnomaly.REPLY_WITHOUT_COMMAND,
            S2C,
            f"{code} reply with no command waiting for it"
            + (" (client bytes were lost in a gap)" if client_gap else ""),
            offset,
            frame,
            ts,
        )
