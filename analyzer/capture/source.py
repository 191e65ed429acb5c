"""Open a capture file as a byte stream (plain or gzip) and read it in chunks.

gzip is recognised by its magic bytes, not by the file name, and decompressed while reading, so
memory does not grow with the file. `ChunkReader.refill` keeps one record contiguous when it
straddles two chunks. This module knows nothing about pcap or pcapng.
"""

from __future__ import annotations

import gzip
import io
import zlib
from pathlib import Path
from types import TracebackType
from typing import Final, Protocol

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


class Source:
    """An open capture file: a chunk reader over its (decompressed) bytes."""

    __slots__ = ("_gz", "_raw", "chunks", "compressed", "path")

    def __init__(self, path: Path) -> None:
        self.path = path
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
        self._raw: io.BufferedReader = raw
        self._gz: gzip.GzipFile | None = None
        try:
            head = raw.peek(len(GZIP_MAGIC))[: len(GZIP_MAGIC)]
        except OSError as exc:
            raw.close()
            raise CaptureError(path, f"cannot read: {exc.strerror or exc}") from None
        self.compressed = head == GZIP_MAGIC
        stream: Readable = raw
        if self.compressed:
            self._gz = gzip.GzipFile(fileobj=raw, mode="rb")
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
