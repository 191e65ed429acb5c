"""Open a capture file as a byte stream (plain or gzip) and read it in chunks.

gzip is recognised by its magic bytes, not by the file name, and decompressed while reading, so
memory does not grow with the file. `ChunkReader.refill` keeps one record contiguous when it
straddles two chunks.

A capture may also be a stream that can be read only once: `-` (standard input), a FIFO, a
shell process substitution (`/dev/fd/N`), `/dev/stdin` on a pipe. Such a stream is opened once
per process and shared: every `Source` over it starts at its first byte, replayed from the bytes
already read, of which at most `STREAM_REPLAY_LIMIT` are kept. So the checks that read a file's
first records before the real pass (and a second pass over a small stream) work as on a file;
a pass over a stream whose beginning is no longer kept is refused with a `CaptureError`.
This module knows nothing about pcap or pcapng.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
import zlib
from pathlib import Path
from types import TracebackType
from typing import BinaryIO, Final, Protocol

from analyzer.errors import CaptureError

CHUNK_SIZE = 128 * 1024
"""Bytes asked of the stream per read: enough that refilling costs nothing per record, and few
enough that the allocator hands the same memory back for the next chunk. (Chunks of 2 MiB came
from fresh pages each time: a page fault per 4 KiB, as much kernel time as the reading itself.)"""

GZIP_MAGIC: Final = b"\x1f\x8b"
"""RFC 1952 §2.3.1: ID1 ID2."""

_READ_ERRORS: Final = (OSError, EOFError, zlib.error)
"""What a damaged or vanishing file raises mid-read (gzip.BadGzipFile is an OSError)."""


class Readable(Protocol):
    """What `ChunkReader` needs of a stream."""

    def read1(self, size: int = -1, /) -> bytes: ...


STDIN_NAME: Final = "-"
"""The capture name that means standard input."""
STREAM_REPLAY_LIMIT: Final = 16 * 1024 * 1024
"""Bytes of a stream kept for reading it again from its start (the up-front checks read a few
records; a stream this small can be read whole a second time). Beyond it the kept bytes are
dropped, so memory does not grow with the stream."""


class ChunkReader:
    """Reads a binary stream in `CHUNK_SIZE` pieces on demand.

    Reads go through `read1`, one underlying read or decompression step at a time, so that a
    read error (corrupt or cut gzip, I/O error) loses nothing already read: the stream then
    simply ends, `error` says why, and the format reader reports the file as cut short.
    """

    __slots__ = ("_stream", "error")

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self.error: str | None = None

    def refill(self, buf: bytes, pos: int, need: int) -> bytes:
        """Return `buf[pos:]` extended by further reads until it holds `need` bytes.

        Reads at least `CHUNK_SIZE` bytes when the stream has them. The result is shorter
        than `need` only when the stream ended (or failed) first.
        """
        parts = [buf[pos:]] if pos < len(buf) else []
        have = len(buf) - pos if pos < len(buf) else 0
        target = max(need, have + CHUNK_SIZE)
        read1 = self._stream.read1
        while have < target and self.error is None:
            try:
                data = read1(target - have)
            except _READ_ERRORS as exc:
                self.error = _describe(exc)
                break
            if not data:
                break
            parts.append(data)
            have += len(data)
        if len(parts) == 1:
            return parts[0]
        return b"".join(parts)


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0] if text else type(exc).__name__


def is_stream(path: Path | str) -> bool:
    """True for a capture that can be read only once: standard input, a FIFO, a character
    device or a socket (a regular file, even behind /dev/stdin, can be opened again)."""
    if str(path) == STDIN_NAME:
        return True
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def identity(path: Path | str) -> tuple[int, int] | None:
    """(device, inode) of a capture (standard input's for `-`), to tell whether two names are
    one file or one stream; None if it cannot be found."""
    try:
        info = os.fstat(sys.stdin.fileno()) if str(path) == STDIN_NAME else os.stat(path)
    except (OSError, ValueError):
        return None
    return info.st_dev, info.st_ino


class _SharedStream:
    """One once-only stream, opened once per process, with its first bytes kept for replay."""

    __slots__ = ("ended", "kept", "overflowed", "raw", "read")

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.kept = bytearray()
        self.read = 0
        """Bytes taken from the stream so far."""
        self.overflowed = False
        """More than `STREAM_REPLAY_LIMIT` bytes were read: the kept bytes are gone."""
        self.ended = False

    def fetch(self, size: int) -> bytes:
        """The next bytes of the stream itself (b"" at its end)."""
        if self.ended:
            return b""
        data = self.raw.read1(size) if hasattr(self.raw, "read1") else self.raw.read(size)
        if not data:
            self.ended = True
            return b""
        self.read += len(data)
        if not self.overflowed:
            if len(self.kept) + len(data) > STREAM_REPLAY_LIMIT:
                self.overflowed = True
                self.kept = bytearray()
            else:
                self.kept += data
        return data


_STREAMS: dict[tuple[int, int] | str, _SharedStream] = {}
"""The once-only streams opened by this process, by identity: standard input and a FIFO are
resources of the process, not of one reader."""


def _stream_key(path: Path | str) -> tuple[int, int] | str:
    return identity(path) or str(path)


def _shared(path: Path) -> _SharedStream:
    key = _stream_key(path)
    shared = _STREAMS.get(key)
    if shared is None:
        if str(path) == STDIN_NAME:
            raw: BinaryIO = sys.stdin.buffer
        else:
            try:
                raw = open(path, "rb")  # noqa: SIM115 - kept open for the process
            except PermissionError:
                raise CaptureError(path, "permission denied") from None
            except OSError as exc:
                raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from None
        shared = _SharedStream(raw)
        _STREAMS[key] = shared
    return shared


class _Replay:
    """A reader over a shared stream from its first byte: the kept bytes, then the stream."""

    __slots__ = ("_pos", "_shared")

    def __init__(self, shared: _SharedStream) -> None:
        self._shared = shared
        self._pos = 0

    def read1(self, size: int = -1, /) -> bytes:
        shared = self._shared
        want = CHUNK_SIZE if size < 0 else size
        if self._pos < shared.read:
            if shared.overflowed:
                raise OSError("the stream was read already and cannot be read again")
            data = bytes(shared.kept[self._pos : self._pos + want])
        else:
            data = shared.fetch(want)
        self._pos += len(data)
        return data

    def read(self, size: int = -1, /) -> bytes:
        if size < 0:
            parts = []
            while data := self.read1(CHUNK_SIZE):
                parts.append(data)
            return b"".join(parts)
        parts = []
        have = 0
        while have < size:
            data = self.read1(size - have)
            if not data:
                break
            parts.append(data)
            have += len(data)
        return b"".join(parts)

    def peek(self, size: int = 1, /) -> bytes:
        shared = self._shared
        while not shared.overflowed and not shared.ended and shared.read - self._pos < size:
            shared.fetch(CHUNK_SIZE)
        if shared.overflowed and self._pos < shared.read:
            raise OSError("the stream was read already and cannot be read again")
        return bytes(shared.kept[self._pos : self._pos + size])

    def close(self) -> None:
        """The stream stays open for the process's other readers."""


def rereadable(path: Path | str) -> bool:
    """Whether a capture can be read (again) from its first byte."""
    if not is_stream(path):
        return True
    shared = _STREAMS.get(_stream_key(path))
    return shared is None or not shared.overflowed


class _RawFile(Protocol):
    def read1(self, size: int = -1, /) -> bytes: ...
    def read(self, size: int = -1, /) -> bytes: ...
    def peek(self, size: int = 0, /) -> bytes: ...
    def close(self) -> None: ...


class Source:
    """An open capture file: a chunk reader over its (decompressed) bytes."""

    __slots__ = ("_gz", "_raw", "chunks", "compressed", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
        raw: _RawFile
        if is_stream(path):
            shared = _shared(path)
            if shared.overflowed:
                raise CaptureError(
                    path, "a stream can be read only once, and this one has been read already"
                )
            raw = _Replay(shared)
        else:
            if path.is_dir():
                raise CaptureError(path, "is a directory, not a capture file")
            try:
                raw = open(path, "rb")  # noqa: SIM115 - closed by close()
            except FileNotFoundError:
                raise CaptureError(path, "no such file") from None
            except PermissionError:
                raise CaptureError(path, "permission denied") from None
            except OSError as exc:
                raise CaptureError(path, f"cannot open: {exc.strerror or exc}") from None
        self._raw = raw
        self._gz: gzip.GzipFile | None = None
        try:
            head = raw.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)]
        except OSError as exc:
            raw.close()
            raise CaptureError(path, f"cannot read: {exc.strerror or exc}") from None
        self.compressed = head == GZIP_MAGIC
        stream: Readable = raw
        if self.compressed:
            self._gz = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
            stream = self._gz
        self.chunks = ChunkReader(stream)

    def close(self) -> None:
        if self._gz is not None:
            self._gz.close()
        self._raw.close()

    def __enter__(self) -> Source:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
