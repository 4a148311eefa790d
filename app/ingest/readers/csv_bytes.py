"""A CSV file's bytes: gunzipped, transcoded to UTF-8 and read ahead on a thread; its header."""

from __future__ import annotations

import codecs
import csv
import os
import zlib
from collections.abc import Generator, Iterator
from pathlib import Path

from app.ingest.ahead import ahead_on_a_thread
from app.ingest.readers.plan import ReadError

BLOCK_BYTES = 8 << 20  # CSV bytes read (and gunzipped) at a time
CUT_BYTES = 1 << 18  # CSV bytes cut into records at a time: bounds the arrays of one cut
GZIP_INPUT_BYTES = 1 << 20  # compressed bytes handed to zlib at a time
MAX_RECORD_BYTES = 1 << 20  # a longer row is a quote that never closes, not an incident
QUOTE, NEWLINE = ord('"'), ord("\n")
_BOM = codecs.BOM_UTF8


class ByteStream:
    """A file's content as UTF-8 blocks: gunzipped and transcoded as needed, BOM removed.

    A worker thread (`ahead_on_a_thread`) reads and gunzips the next block while the caller
    parses this one: zlib releases the GIL, so the two overlap on a second core.
    """

    def __init__(self, path: Path, encoding: str) -> None:
        """Open the file and see whether it is gzipped."""
        self._file = path.open("rb")
        self.total = os.fstat(self._file.fileno()).st_size
        self._gzipped = self._file.read(2) == b"\x1f\x8b"
        self._file.seek(0)
        self._encoding = encoding
        self.position = 0  # bytes of the file (compressed, when it is) read so far
        self.blocks: Generator[bytes, None, None] = self._blocks()

    def __enter__(self) -> ByteStream:
        """Return the open stream."""
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop reading ahead and close the file."""
        self.blocks.close()  # stops the worker thread before the file closes under it
        self._file.close()

    def _blocks(self) -> Generator[bytes, None, None]:
        """Yield the content in blocks of at most BLOCK_BYTES (more when transcoded)."""
        decoder = None
        if self._encoding not in ("utf-8", "ascii"):
            decoder = codecs.getincrementaldecoder(self._encoding)()
        first = True
        # When this generator closes, the reader ahead is dropped and its `finally` stops the
        # thread (as soon as it is unreferenced: CPython finalises generators then).
        for raw in ahead_on_a_thread(self._raw_blocks(), depth=1):
            block = raw if decoder is None else self._transcode(decoder, raw, final=not raw)
            if first and block:
                block = block.removeprefix(_BOM)
                first = False
            if block:
                yield block
            if not raw:
                return

    def _transcode(self, decoder: codecs.IncrementalDecoder, raw: bytes, final: bool) -> bytes:
        """Decode a block from the file's encoding and encode it as UTF-8."""
        try:
            return decoder.decode(raw, final=final).encode("utf-8")
        except UnicodeDecodeError as e:
            raise ReadError(
                f"the file is not valid {self._encoding}: {e.reason} "
                "(set encoding in the mapping to the file's encoding)"
            ) from None

    def _raw_blocks(self) -> Iterator[bytes]:
        """The file's bytes, gunzipped; an empty block at the end."""
        if not self._gzipped:
            while block := self._file.read(BLOCK_BYTES):
                self.position += len(block)
                yield block
            yield b""
            return
        inflate = zlib.decompressobj(wbits=31)
        member_open = False
        try:
            while chunk := self._file.read(GZIP_INPUT_BYTES):
                self.position += len(chunk)
                while chunk:
                    member_open = True
                    if block := inflate.decompress(chunk, BLOCK_BYTES):
                        yield block
                    if inflate.eof:  # one gzip member ends; another may follow (cat a.gz b.gz)
                        chunk = inflate.unused_data
                        inflate = zlib.decompressobj(wbits=31)
                        member_open = False
                    else:
                        chunk = inflate.unconsumed_tail
            if member_open:
                if rest := inflate.flush():
                    yield rest
                if not inflate.eof:
                    raise ReadError("the gzip file is cut short")
        except zlib.error as e:
            raise ReadError(f"the gzip file is damaged: {e}") from None
        yield b""


def _first_record_end(data: bytes) -> int:
    """The offset of the newline that ends the first record, -1 if there is none yet.

    Walks newline by newline, counting the quotes before each, so a block of millions of
    short lines costs no arrays: only the first newline outside quotes is wanted.
    """
    quotes = 0
    start = 0
    while (end := data.find(b"\n", start)) >= 0:
        quotes += data.count(b'"', start, end)
        if quotes % 2 == 0:
            return end
        start = end + 1
    return -1


def read_header(blocks: Iterator[bytes], delimiter: str | None) -> tuple[list[str], str, bytes]:
    """Read the header record: column names, the delimiter (sniffed) and the bytes after it."""
    data = b""
    end = -1
    while end < 0:
        block = next(blocks, None)
        if block is None:
            break
        data += block
        end = _first_record_end(data)
        if end < 0 and len(data) > MAX_RECORD_BYTES:
            raise ReadError("the header line does not end within 1 MiB: is this a CSV file?")
    line, rest = (data, b"") if end < 0 else (data[:end], data[end + 1 :])
    try:
        text = line.decode("utf-8").removesuffix("\r")
    except UnicodeDecodeError:
        raise ReadError(
            "the header line is not UTF-8: set encoding in the mapping (cp1252 for a file "
            "saved by Excel on Windows, latin-1 for older systems)"
        ) from None
    if not text.strip():
        raise ReadError("the first line is empty: it must name the columns")
    if delimiter is None:
        widths = {d: len(next(csv.reader([text], delimiter=d))) for d in ",;"}
        delimiter = max(widths, key=lambda d: (widths[d], d == ","))
    names = [name.strip() for name in next(csv.reader([text], delimiter=delimiter))]
    return names, delimiter, rest
