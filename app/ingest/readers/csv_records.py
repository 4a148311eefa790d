"""CSV records: cut by numpy, counted and checked, parsed by pandas' C parser, in batches.

CSV records are cut by us, not by pandas: numpy finds the record ends and counts each record's
fields from the positions of quotes, delimiters and newlines, so a line with too many or too few
fields is reported with its row number (pandas pads short lines silently, and its bad-line
callback needs the slow Python engine). The well-formed records then go through pandas' C
parser, which reads only the mapped columns. Quotes that numpy's parity rule cannot follow
send a block to Python's csv module instead.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd

from app.ingest.mapping import Mapping
from app.ingest.readers.columns import Converted, Errors, convert, read_batch
from app.ingest.readers.csv_bytes import (
    CUT_BYTES,
    MAX_RECORD_BYTES,
    NEWLINE,
    QUOTE,
    ByteStream,
    read_header,
)
from app.ingest.readers.plan import (
    BoolArray,
    Column,
    IntArray,
    Options,
    Plan,
    ReadBatch,
    ReadError,
    plan_for,
)

_CR = ord("\r")


@dataclass
class _Records:
    """Complete CSV records: their bytes, where each ends and how many fields each has.

    `fields` is 0 for a record whose quoted field never closes (the end of the file came
    first); `python` says the records were cut by Python's csv module (quotes that numpy's
    parity rule cannot follow), so they are parsed by it too.
    """

    data: bytes
    ends: IntArray
    fields: IntArray
    blank: BoolArray
    python: bool
    row: IntArray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def __len__(self) -> int:
        """The number of records."""
        return int(self.ends.size)

    @property
    def starts(self) -> IntArray:
        """Where each record starts."""
        return np.concatenate([np.zeros(1, dtype=np.int64), self.ends[:-1]])

    def split(self, k: int) -> tuple[_Records, _Records]:
        """The first k records and the rest."""
        cut = int(self.ends[k - 1])
        head = _Records(
            self.data[:cut], self.ends[:k], self.fields[:k], self.blank[:k], self.python
        )
        tail = _Records(
            self.data[cut:], self.ends[k:] - cut, self.fields[k:], self.blank[k:], self.python
        )
        head.row, tail.row = self.row[:k], self.row[k:]
        return head, tail

    def without_blank(self) -> _Records:
        """The records that are not blank, with their row numbers."""
        if not self.blank.any():
            return self
        keep = ~self.blank
        lengths = np.diff(self.ends, prepend=0)
        data = np.frombuffer(self.data, np.uint8)[np.repeat(keep, lengths)].tobytes()
        kept = _Records(
            data, np.cumsum(lengths[keep]), self.fields[keep], self.blank[keep], self.python
        )
        kept.row = self.row[keep]
        return kept

    @staticmethod
    def join(parts: list[_Records]) -> _Records:
        """Records one after the other."""
        if len(parts) == 1:
            return parts[0]
        offsets = np.cumsum([0] + [len(p.data) for p in parts[:-1]])
        joined = _Records(
            b"".join(p.data for p in parts),
            np.concatenate([p.ends + o for p, o in zip(parts, offsets, strict=True)]),
            np.concatenate([p.fields for p in parts]),
            np.concatenate([p.blank for p in parts]),
            any(p.python for p in parts),
        )
        joined.row = np.concatenate([p.row for p in parts])
        return joined


def _no_records(python: bool = False) -> _Records:
    """No records (cut by Python's csv module when python)."""
    empty = np.zeros(0, dtype=np.int64)
    return _Records(b"", empty, empty, np.zeros(0, dtype=bool), python)


def _cut(data: bytes, delimiter: str, final: bool) -> _Records:
    """The complete records at the start of data (all of it when final and well quoted)."""
    arr = np.frombuffer(data, np.uint8)
    newlines = np.flatnonzero(arr == NEWLINE)
    if newlines.size == 0:
        return _no_records()
    quotes = np.flatnonzero(arr[: newlines[-1]] == QUOTE)
    delim = ord(delimiter)
    if quotes.size and not _regular_quotes(arr, quotes, delim):
        return _cut_python(data, delimiter, final)
    # A newline ends a record only outside quotes: after an even number of quote characters.
    ends = newlines[np.searchsorted(quotes, newlines) % 2 == 0].astype(np.int64) + 1
    if ends.size == 0:
        return _no_records()
    size = int(ends[-1])
    quotes = quotes[quotes < size]
    starts = np.concatenate([np.zeros(1, dtype=np.int64), ends[:-1]])
    delims = np.flatnonzero(arr[:size] == delim)
    count = np.diff(np.searchsorted(delims, ends), prepend=0).astype(np.int64)
    if quotes.size:
        opens, closes = quotes[0::2], quotes[1::2]
        quoted = np.searchsorted(delims, closes) - np.searchsorted(delims, opens)
        record = np.searchsorted(ends, opens, side="right")
        count -= np.bincount(record, weights=quoted, minlength=ends.size).astype(np.int64)
    crlf = (ends - 2 >= starts) & (arr[np.maximum(ends - 2, 0)] == _CR)
    content = ends - 1 - starts - crlf
    # Nothing but delimiters (";;;;" from a spreadsheet) or an empty line.
    blank = content == count
    return _Records(data[:size], ends, count + 1, blank, python=False)


def _regular_quotes(arr: npt.NDArray[np.uint8], quotes: npt.NDArray[np.intp], delim: int) -> bool:
    """Whether every quote opens a field, closes one or is doubled (then parity is exact).

    The quotes given all come before a newline, so a last opening quote may stay unpaired (its
    field goes on in the next block).
    """
    opens, closes = quotes[0::2], quotes[1::2]
    before = arr[np.maximum(opens - 1, 0)]
    after = arr[closes + 1]
    previous_close = np.concatenate([[-2], closes])[: opens.size]
    next_open = np.concatenate([opens[1:], [-1]])[: closes.size]
    escaped = opens == previous_close + 1  # the second quote of a doubled ""
    opens_ok = (opens == 0) | (before == delim) | (before == NEWLINE) | escaped
    closes_ok = (after == delim) | (after == NEWLINE) | (after == _CR) | (closes + 1 == next_open)
    return bool(opens_ok.all() and closes_ok.all())


def split_lines(data: bytes) -> list[bytes]:
    """Lines with their newlines (the last one without, if it has none)."""
    pieces = data.split(b"\n")
    lines = [p + b"\n" for p in pieces[:-1]]
    return [*lines, pieces[-1]] if pieces[-1] else lines


def _cut_python(data: bytes, delimiter: str, final: bool) -> _Records:
    """Cut records with Python's csv module, which follows stray quotes as pandas does."""
    lines = split_lines(data)
    offsets = np.cumsum([0] + [len(line) for line in lines])
    consumed = 0

    def feed() -> Iterator[str]:
        """The lines as text, counting how many the csv module took."""
        nonlocal consumed
        for line in lines:
            consumed += 1
            yield line.decode("utf-8", "surrogateescape")

    ends: list[int] = []
    fields: list[int] = []
    blank: list[bool] = []
    try:
        for record in csv.reader(feed(), delimiter=delimiter, strict=False):
            ends.append(int(offsets[consumed]))
            fields.append(len(record))
            blank.append(not any(record))
    except csv.Error as e:
        raise ReadError(f"the CSV cannot be read after byte {offsets[consumed - 1]}: {e}") from None
    if not final and ends:
        # The last record may go on in the next block: cut it again from there.
        ends, fields, blank = ends[:-1], fields[:-1], blank[:-1]
    if not ends:
        return _no_records(python=True)
    size = ends[-1]
    return _Records(
        data[:size],
        np.array(ends, dtype=np.int64),
        np.array(fields, dtype=np.int64),
        np.array(blank, dtype=bool),
        python=True,
    )


@dataclass(frozen=True)
class _CsvLayout:
    """The header and which of its columns the plan reads (and which as numbers)."""

    names: list[str]
    delimiter: str
    used: list[tuple[str, int]]
    numeric: frozenset[int]
    decimal: str


def _csv_layout(names: list[str], delimiter: str, plan: Plan) -> _CsvLayout:
    """Where the plan's columns are in the header; refuse duplicates."""
    used = []
    for name in plan.columns():
        at = [i for i, n in enumerate(names) if n == name]
        if len(at) > 1:
            raise ReadError(f"the column {name!r} appears {len(at)} times in the header")
        used.append((name, at[0]))
    numeric = frozenset(i for name, i in used if name in plan.coordinate_columns)
    decimal = plan.mapping.decimal
    if decimal == delimiter:
        raise ReadError(f"the delimiter is {delimiter!r}, so the decimal mark cannot be too")
    return _CsvLayout(names, delimiter, used, numeric, decimal)


def read_csv(path: Path, mapping: Mapping, opts: Options, batch_size: int) -> Iterator[ReadBatch]:
    """Read a CSV file in batches of at most batch_size records."""
    with ByteStream(path, mapping.encoding) as stream:
        names, delimiter, rest = read_header(stream.blocks, mapping.delimiter)
        # what the header left of its block is cut like any block (and not held on to)
        blocks = itertools.chain([rest], stream.blocks)
        del rest
        plan = plan_for(mapping, names, opts)
        layout = _csv_layout(names, delimiter, plan)
        pending: list[_Records] = []
        waiting = 0
        skipped = 0  # blank records dropped since the last batch, counted in the next one
        rows_seen = 0
        for records, final in _cut_blocks(blocks, delimiter):
            if len(records):
                rows_seen = int(records.row[-1])
                # Blank lines leave here, before batching: a file of nothing but newlines
                # then costs no more memory or time per block than a file of rows.
                skipped += int(records.blank.sum())
                records = records.without_blank()
            if len(records):
                pending.append(records)
                waiting += len(records)
            while waiting >= batch_size or (final and (waiting or skipped)):
                batch = _take(pending, min(batch_size, waiting)) if waiting else _no_records()
                waiting -= len(batch)
                converted, _ = _csv_batch(batch, layout, plan)
                yield read_batch(
                    converted,
                    plan,
                    opts,
                    blank=skipped,
                    rows_read=int(batch.row[-1]) if waiting else rows_seen,
                    rows_total=None,
                    bytes_read=stream.position,
                    bytes_total=stream.total,
                )
                skipped = 0


def _cut_blocks(blocks: Iterator[bytes], delimiter: str) -> Iterator[tuple[_Records, bool]]:
    """The records of each block after the header, numbered from row 1, and if it is the last."""
    next_row = 1
    final = False
    tail = b""
    for block in _sliced(blocks):
        final = block is None
        data = tail + block if block is not None else tail
        if final and data and not data.endswith(b"\n"):
            data += b"\n"
        records = _cut(data, delimiter, final)
        tail = data[len(records.data) :]
        if final and tail:
            unclosed = _Records(
                tail, np.array([len(tail)]), np.zeros(1, np.int64), np.zeros(1, bool), False
            )
            records = _Records.join([records, unclosed]) if len(records) else unclosed
            tail = b""
        elif len(tail) > MAX_RECORD_BYTES:
            raise ReadError(
                f"row {next_row + len(records)} does not end within 1 MiB: a quoted field "
                'is probably not closed (check the " characters in that row)'
            )
        records.row = np.arange(next_row, next_row + len(records), dtype=np.int64)
        next_row += len(records)
        yield records, final


def _sliced(blocks: Iterator[bytes]) -> Iterator[bytes | None]:
    """The blocks in slices of at most CUT_BYTES, then None: the arrays of one cut stay small
    however short the records are (8 MiB of newlines would be 8 million records at once)."""
    for block in blocks:
        for at in range(0, len(block), CUT_BYTES):
            yield block[at : at + CUT_BYTES]
    yield None


def _take(pending: list[_Records], n: int) -> _Records:
    """Remove the first n records from the pending pieces and return them as one."""
    out: list[_Records] = []
    while n > 0:
        first = pending[0]
        if len(first) <= n:
            out.append(pending.pop(0))
            n -= len(first)
        else:
            head, pending[0] = first.split(n)
            out.append(head)
            n = 0
    return _Records.join(out)


def _csv_batch(records: _Records, layout: _CsvLayout, plan: Plan) -> tuple[Converted, int]:
    """Parse one batch of records: malformed ones become row errors, blank ones are skipped."""
    keep = ~records.blank
    ncols = len(layout.names)
    starts, ends = records.starts, records.ends
    nul = np.zeros(len(records), dtype=bool)
    if b"\x00" in records.data:
        at = np.flatnonzero(np.frombuffer(records.data, np.uint8) == 0)
        nul[np.searchsorted(ends, at, side="right")] = True
    wrong = keep & (records.fields != ncols)
    bad = wrong | (keep & nul)
    good = keep & ~bad
    errors = Errors()
    position = np.cumsum(keep) - 1
    for i in np.flatnonzero(bad):
        errors.add(int(position[i]), "record", _malformed(int(records.fields[i]), ncols, nul[i]))
    if good.all():
        data = records.data
    else:
        view = memoryview(records.data)
        data = b"".join(view[s:e] for s, e in zip(starts[good], ends[good], strict=True))
    count = int(good.sum())
    parsed = _parse_records(data, count, layout, records.python)
    if bad.any():
        parsed = {name: _spread(values, good[keep]) for name, values in parsed.items()}
    converted = convert(parsed, records.row[keep], plan, errors)
    return converted, int(records.blank.sum())


def _malformed(fields: int, expected: int, nul: bool) -> str:
    """Why a record cannot be read, in words."""
    if nul:
        return "contains a NUL byte: is the file UTF-16? save it as UTF-8"
    if fields == 0:
        return 'a quoted field is not closed (a " is missing): the rest of the file is in this row'
    if fields > expected:
        return (
            f"has {fields} fields where the header has {expected} (a delimiter inside a value "
            "that is not in quotes?)"
        )
    return (
        f"has {fields} {'field' if fields == 1 else 'fields'} where the header has {expected} "
        "(a line break inside a value that is not in quotes, or a cut line?)"
    )


def _spread(values: Column, at: BoolArray) -> Column:
    """Values of the good rows placed among placeholder rows (empty text, NaN)."""
    out: Column
    if values.dtype.kind == "f":
        out = np.full(at.size, np.nan)
    else:
        out = np.full(at.size, "", dtype=object)
    out[at] = values
    return out


def _parse_records(data: bytes, count: int, layout: _CsvLayout, python: bool) -> dict[str, Column]:
    """The used columns of well-formed records: pandas' C parser, or the csv module."""
    if count and not python:
        parsed = _parse_with_pandas(data, layout, layout.numeric)
        if parsed is None and layout.numeric:
            parsed = _parse_with_pandas(data, layout, frozenset())
        if parsed is not None and all(v.size == count for v in parsed.values()):
            return parsed
    return _parse_with_csv(data, count, layout)


def _parse_with_pandas(
    data: bytes, layout: _CsvLayout, numeric: frozenset[int]
) -> dict[str, Column] | None:
    """None when a number column holds text (then read it as text to name the rows)."""
    used = [i for _, i in layout.used]
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            sep=layout.delimiter,
            header=None,
            names=list(range(len(layout.names))),
            usecols=used,
            dtype={i: np.float64 if i in numeric else str for i in used},
            na_values={i: ["", "\r"] for i in numeric},
            keep_default_na=False,
            index_col=False,
            lineterminator="\n",
            quotechar='"',
            decimal=layout.decimal,
            encoding="utf-8",
            engine="c",
        )
    except UnicodeDecodeError as e:
        raise _not_utf8(data, e) from None
    except ValueError:  # text in a number column, or a record pandas splits otherwise than we do
        return None
    last = len(layout.names) - 1
    out: dict[str, Column] = {}
    for name, i in layout.used:
        series = frame[i]
        if i in numeric:
            out[name] = series.to_numpy(np.float64)
            continue
        if i == last and b"\r" in data:
            # lineterminator="\n" keeps a CRLF file's "\r" at the end of the last field.
            series = series.str.removesuffix("\r")
        out[name] = series.to_numpy(object)  # no NA: keep_default_na=False reads "" as ""
    return out


def _parse_with_csv(data: bytes, count: int, layout: _CsvLayout) -> dict[str, Column]:
    """The used columns of well-formed records, parsed by Python's csv module."""
    try:
        lines = [line.decode("utf-8") for line in split_lines(data)]
    except UnicodeDecodeError as e:
        raise _not_utf8(data, e) from None
    try:
        rows = list(csv.reader(lines, delimiter=layout.delimiter, strict=False))
    except csv.Error as e:
        raise ReadError(f"the CSV cannot be read: {e}") from None
    if len(rows) != count:
        raise ReadError(f"the CSV cannot be cut into rows consistently ({len(rows)} ≠ {count})")
    return {
        name: np.array([r[i] if i < len(r) else "" for r in rows], dtype=object)
        for name, i in layout.used
    }


def _not_utf8(data: bytes, error: UnicodeDecodeError) -> ReadError:
    """A ReadError saying where the data is not UTF-8."""
    try:
        data.decode("utf-8")
        where = ""
    except UnicodeDecodeError as e:
        where = f" (near {data[max(e.start - 20, 0) : e.start + 1]!r})"
    return ReadError(
        f"the file is not valid UTF-8{where}: set encoding in the mapping (cp1252 for a file "
        f"saved by Excel on Windows, latin-1 for older systems); {error.reason}"
    )
