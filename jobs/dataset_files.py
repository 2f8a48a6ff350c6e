"""Read an uploaded dataset file, check every row and describe it (docs/contracts.md §2).

``inspect_dataset`` reads JSON Lines, CSV or Parquet in one streaming pass and returns a
``DatasetReport``: the format, the valid row count, every malformed line with its number, the
SHA-256 of the original bytes, length statistics and a preview. Given ``normalised_out`` it also
writes the normalised JSONL copy the trainer reads (one object per valid row with exactly its
format's keys) during that same pass.

Decisions:

- File type comes from the file name: ``.jsonl``, ``.jsonlines``, ``.ndjson`` and ``.json`` are
  JSON Lines (a ``.json`` file holding one JSON array is refused with a message saying so),
  ``.csv`` is comma-separated with a header row, ``.parquet`` / ``.pq`` is Parquet.
- The first valid row fixes the format. That keeps the read to one pass (rows can be written
  out as they are checked) and gives a rule a user can predict; a later row in another format
  is an error naming the line that set the format. A row's format is recognised by its keys,
  most specific first: ``messages`` (chat), then ``prompt``/``chosen``/``rejected``
  (preference), then ``instruction``/``output`` (instruction), then ``text``.
- Keys beyond the format's are ignored and dropped from the normalised copy (exports often
  carry ``id`` or ``source`` columns). ``input`` may be missing or null: it becomes ``""``.
- Text values must be non-blank strings, except ``input``. Chat rows need at least one user and
  one assistant turn, a system turn only first, and must end on an assistant turn: that last
  turn is what predictions compare against, and a trailing user turn is never trained on (it is
  usually a truncated export). Roles need not alternate. Identical ``chosen`` and ``rejected``
  are refused: such a pair teaches nothing.
- Blank lines: trailing blank lines are ignored; a blank line followed by more data is an error
  (``line 3: empty line``), since a hole in the middle of a JSONL file usually means a bad merge.
- Positions are 1-based: JSONL lines; CSV the file line where the record starts, the header being
  line 1; Parquet row numbers (messages say ``row N``).
- CSV: comma-separated, ``"`` quoting, parsed strictly (an unclosed quote is an error, not a
  cell swallowing the rest of the file); cells are strings, so a ``messages`` cell (as a Parquet
  string column) holds JSON. Python's csv module refuses cells over 131,072 characters; such a
  record is reported as a line error rather than raising the process-wide limit.
- Every problem is one ``RowError``; the first ``max_errors`` (200) are kept, ``error_count``
  counts them all. File-wide problems (empty file, unreadable Parquet, no valid rows) have no
  line and are always listed first.
- Length statistics count the characters of a row's text values (chat: the contents; template
  and role tokens excluded). Tokens are estimated as characters / 4, the usual rule of thumb for
  English with BPE tokenizers; code and non-Latin scripts take more tokens per character, so
  treat the estimate as a lower bound for them.

This module imports no Django.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import math
import os
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import PurePath
from typing import IO, Any, BinaryIO

from jobs.json_types import json_type_name

FORMAT_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "chat": ("messages",),
    "instruction": ("instruction", "input", "output"),
    "preference": ("prompt", "chosen", "rejected"),
}
ROLES = ("system", "user", "assistant")
FILE_TYPES = {
    ".jsonl": "jsonl",
    ".jsonlines": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}
MAX_ERRORS = 200
PREVIEW_ROWS = 10
CHARS_PER_TOKEN = 4
# Parquet rows are converted to Python one batch at a time to bound memory.
_PARQUET_BATCH_ROWS = 2048
_HASH_CHUNK = 1 << 20
_BOM = b"\xef\xbb\xbf"
# One encoder for every written row: json.dumps would build a new one per call.
_ENCODER = json.JSONEncoder(ensure_ascii=False)

Row = dict[str, Any]
Source = str | os.PathLike[str] | BinaryIO


class DatasetFileError(ValueError):
    """A dataset file is refused before its rows are read."""


class DatasetTooLarge(DatasetFileError):
    def __init__(self, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(f"the file is {_human_bytes(size)}; the limit is {_human_bytes(limit)}")


class UnsupportedFileType(DatasetFileError):
    pass


def check_dataset_size(size: int, limit: int) -> None:
    """Raise ``DatasetTooLarge`` when ``size`` bytes exceed ``limit`` bytes."""
    if size > limit:
        raise DatasetTooLarge(size, limit)


def file_type_for(filename: str) -> str:
    """``jsonl``, ``csv`` or ``parquet`` from the file name; ``UnsupportedFileType`` otherwise."""
    suffix = PurePath(filename).suffix.lower()
    if suffix not in FILE_TYPES:
        accepted = ", ".join(FILE_TYPES)
        raise UnsupportedFileType(
            f"unsupported file type {suffix or '(no extension)'!r}; upload one of {accepted}"
        )
    return FILE_TYPES[suffix]


def _human_bytes(size: int) -> str:
    value, unit = float(size), "bytes"
    for larger in ("KB", "MB", "GB"):
        if value < 999.95:  # would print as "1000.0"
            break
        value, unit = value / 1000, larger
    return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"


# ---------------------------------------------------------------- the report


@dataclass(frozen=True)
class RowError:
    """One problem. ``line`` is None for a problem with the whole file."""

    line: int | None
    message: str
    unit: str = "line"

    def __str__(self) -> str:
        return self.message if self.line is None else f"{self.unit} {self.line}: {self.message}"


@dataclass(frozen=True)
class LengthStats:
    """Characters per valid row, and tokens estimated as characters / CHARS_PER_TOKEN."""

    min_chars: int
    mean_chars: float
    p50_chars: int
    p95_chars: int
    max_chars: int
    total_chars: int
    approx_tokens_mean: float
    approx_tokens_p95: int
    approx_tokens_max: int
    approx_tokens_total: int


@dataclass
class DatasetReport:
    file_type: str | None
    format: str | None
    rows: int
    invalid_rows: int
    errors: list[RowError]
    error_count: int
    sha256: str
    size_bytes: int
    stats: LengthStats | None
    preview: list[Row]

    @property
    def ok(self) -> bool:
        """True when every row is valid and there is at least one."""
        return self.rows > 0 and self.error_count == 0

    def error_messages(self) -> list[str]:
        return [str(error) for error in self.errors]

    def as_dict(self) -> dict[str, Any]:
        """JSON-serialisable; errors as ``{"line", "message"}``."""
        data = asdict(self)
        data["ok"] = self.ok
        data["errors"] = [{"line": e.line, "message": e.message} for e in self.errors]
        return data


def length_stats(lengths: array[int] | list[int]) -> LengthStats | None:
    """Nearest-rank percentiles of row lengths in characters; None for no rows."""
    if not lengths:
        return None
    ordered = sorted(lengths)
    total = sum(ordered)
    mean = total / len(ordered)
    p95 = _nearest_rank(ordered, 95)
    return LengthStats(
        min_chars=ordered[0],
        mean_chars=mean,
        p50_chars=_nearest_rank(ordered, 50),
        p95_chars=p95,
        max_chars=ordered[-1],
        total_chars=total,
        approx_tokens_mean=mean / CHARS_PER_TOKEN,
        approx_tokens_p95=math.ceil(p95 / CHARS_PER_TOKEN),
        approx_tokens_max=math.ceil(ordered[-1] / CHARS_PER_TOKEN),
        approx_tokens_total=math.ceil(total / CHARS_PER_TOKEN),
    )


def _nearest_rank(ordered: list[int], percent: int) -> int:
    return ordered[max(math.ceil(percent / 100 * len(ordered)) - 1, 0)]


# ---------------------------------------------------------------- entry point


def inspect_dataset(
    source: Source,
    filename: str,
    *,
    normalised_out: IO[bytes] | None = None,
    max_errors: int = MAX_ERRORS,
) -> DatasetReport:
    """Check every row of ``source`` (a path or a binary file object) named ``filename``.

    A seekable file object is read from its start; Parquet needs a seekable one.

    Never raises for bad content: every problem lands in the report. ``normalised_out`` (binary,
    optional) receives the normalised JSONL of the valid rows; discard it when the report is not
    acceptable.
    """
    collector = _Collector(max_errors, normalised_out)
    with _open_binary(source) as raw:
        hashing = _HashingReader(raw)
        file_type = _read_rows(hashing, filename, collector)
        hashing.drain()
    return collector.report(file_type, hashing)


@contextlib.contextmanager
def _open_binary(source: Source) -> Iterator[BinaryIO]:
    if isinstance(source, str | os.PathLike):
        with open(source, "rb") as handle:
            yield handle
        return
    # An upload may already have been read (size check, storage): the checksum needs it all.
    if source.seekable():
        source.seek(0)
    yield source


def _read_rows(hashing: _HashingReader, filename: str, collector: _Collector) -> str | None:
    try:
        file_type = file_type_for(filename)
    except UnsupportedFileType as error:
        collector.file_error(str(error))
        return None
    readers = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}
    try:
        readers[file_type](hashing, collector)
    except _FileProblem as problem:
        collector.file_error(str(problem))
    return file_type


class _FileProblem(Exception):
    """The file as a whole cannot be read any further."""


class _HashingReader:
    """Hashes and counts every byte read, so the checksum costs no second pass."""

    def __init__(self, raw: BinaryIO) -> None:
        self.raw = raw
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.at_end = False

    def lines(self) -> Iterator[bytes]:
        # readline, not iteration: Django's File.__iter__ also splits on a bare "\r".
        for line in iter(self.raw.readline, b""):
            self._update(line)
            yield line

    def read_all_for_random_access(self) -> BinaryIO:
        """Hash the whole file and rewind it (Parquet readers seek around)."""
        self.drain()
        self.raw.seek(0)
        return self.raw

    def drain(self) -> None:
        """Hash whatever was not read yet (once: a Parquet reader moves around afterwards)."""
        if self.at_end:
            return
        for chunk in iter(lambda: self.raw.read(_HASH_CHUNK), b""):
            self._update(chunk)
        self.at_end = True

    def _update(self, data: bytes) -> None:
        self.sha256.update(data)
        self.size += len(data)


# ---------------------------------------------------------------- collecting results


@dataclass
class _Collector:
    max_errors: int
    out: IO[bytes] | None
    format: str | None = None
    format_position: int = 0
    unit: str = "line"
    rows: int = 0
    invalid_rows: int = 0
    error_count: int = 0
    errors: list[RowError] = field(default_factory=list)
    file_errors: list[RowError] = field(default_factory=list)
    lengths: array[int] = field(default_factory=lambda: array("q"))
    preview: list[Row] = field(default_factory=list)
    pending_blanks: list[int] = field(default_factory=list)

    def file_error(self, message: str) -> None:
        self.error_count += 1
        self.file_errors.append(RowError(None, message))

    def row_errors(self, position: int, messages: list[str]) -> None:
        self._flush_blanks()
        self.invalid_rows += 1
        for message in messages:
            self._error(position, message)

    def blank(self, position: int) -> None:
        # Held back: blank lines only count as errors if data follows them.
        self.pending_blanks.append(position)

    def valid(self, position: int, row: Row, chars: int) -> None:
        self._flush_blanks()
        self.rows += 1
        self.lengths.append(chars)
        if len(self.preview) < PREVIEW_ROWS:
            self.preview.append(row)
        if self.out is not None:
            self.out.write(_ENCODER.encode(row).encode() + b"\n")

    def _flush_blanks(self) -> None:
        for position in self.pending_blanks:
            self._error(position, "empty line")
        self.pending_blanks.clear()

    def _error(self, position: int, message: str) -> None:
        self.error_count += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(RowError(position, message, self.unit))

    def report(self, file_type: str | None, hashing: _HashingReader) -> DatasetReport:
        if self.rows == 0 and not self.file_errors:
            self.file_error("no valid rows found" if hashing.size else "the file is empty")
        return DatasetReport(
            file_type=file_type,
            format=self.format,
            rows=self.rows,
            invalid_rows=self.invalid_rows,
            errors=self.file_errors + self.errors,
            error_count=self.error_count,
            sha256=hashing.sha256.hexdigest(),
            size_bytes=hashing.size,
            stats=length_stats(self.lengths),
            preview=self.preview,
        )

    def check(self, position: int, row: Mapping[str, Any], *, tabular: bool) -> None:
        """Validate one decoded row against the dataset's format (fixing it if still open)."""
        detected = detect_row_format(row)
        expected = self.format or detected
        if expected is None:
            self.row_errors(position, [_unrecognised(row)])
            return
        if self.format is not None and detected != self.format and not _shares_keys(row, expected):
            self.row_errors(position, [self._wrong_format(detected)])
            return
        normalised, problems = normalise_row(expected, row, tabular=tabular)
        if problems or normalised is None:
            self.row_errors(position, problems)
            return
        if self.format is None:
            self.format, self.format_position = expected, position
        self.valid(position, normalised, row_chars(expected, normalised))

    def _wrong_format(self, detected: str | None) -> str:
        got = f"looks like the {detected} format" if detected else "has no known format"
        return (
            f"row {got}, but this dataset is in the {self.format} format "
            f"(set by {self.unit} {self.format_position})"
        )


def _shares_keys(row: Mapping[str, Any], fmt: str) -> bool:
    return any(key in row for key in FORMAT_KEYS[fmt])


def _unrecognised(row: Mapping[str, Any]) -> str:
    keys = ", ".join(map(str, row)) or "none"
    return (
        "no known format: expected the keys text | messages | instruction, input, output | "
        f"prompt, chosen, rejected; got {keys}"
    )


# ---------------------------------------------------------------- row rules


def detect_row_format(row: Mapping[str, Any]) -> str | None:
    """The format a row's keys point at, most specific first; None when none does."""
    if "messages" in row:
        return "chat"
    if any(key in row for key in FORMAT_KEYS["preference"]):
        return "preference"
    if "instruction" in row or "output" in row:
        return "instruction"
    if "text" in row:
        return "text"
    return None


def normalise_row(
    fmt: str, row: Mapping[str, Any], *, tabular: bool = False
) -> tuple[Row | None, list[str]]:
    """The row with exactly ``fmt``'s keys, or None and what is wrong with it."""
    if fmt == "chat":
        return _normalise_chat(row, tabular=tabular)
    problems: list[str] = []
    normalised: Row = {}
    for key in FORMAT_KEYS[fmt]:
        if key == "input" and row.get(key) is None:
            normalised[key] = ""
        elif key not in row:
            problems.append(f'missing key "{key}" for {fmt} format')
        else:
            normalised[key] = _text_value(row[key], f'"{key}"', problems, blank_ok=key == "input")
    if fmt == "preference" and not problems and normalised["chosen"] == normalised["rejected"]:
        problems.append('"chosen" and "rejected" are identical')
    return (None, problems) if problems else (normalised, [])


def _text_value(value: Any, label: str, problems: list[str], *, blank_ok: bool = False) -> Any:
    if not isinstance(value, str):
        problems.append(f"{label} must be a string, got {json_type_name(value)}")
    elif not blank_ok and not value.strip():
        problems.append(f"{label} must not be empty")
    return value


def _normalise_chat(row: Mapping[str, Any], *, tabular: bool) -> tuple[Row | None, list[str]]:
    messages = row["messages"]
    if tabular and isinstance(messages, str):
        try:
            messages = json.loads(messages)
        except json.JSONDecodeError as error:
            return None, [f'"messages" is not valid JSON ({_json_error(error)})']
    if not isinstance(messages, list):
        return None, [f'"messages" must be an array, got {json_type_name(messages)}']
    problems: list[str] = []
    turns = [_chat_turn(index, message, problems) for index, message in enumerate(messages)]
    if not problems:
        problems.extend(_conversation_problems(turns))
    return (None, problems) if problems else ({"messages": turns}, [])


def _chat_turn(index: int, message: Any, problems: list[str]) -> dict[str, Any]:
    label = f"messages[{index}]"
    if not isinstance(message, Mapping):
        problems.append(f"{label} must be an object, got {json_type_name(message)}")
        return {}
    role = message.get("role")
    if role not in ROLES:
        problems.append(f"{label}.role must be one of {', '.join(ROLES)}; got {_short(role)}")
    if "content" not in message:
        problems.append(f'{label} is missing "content"')
    else:
        _text_value(message["content"], f"{label}.content", problems)
    return {"role": role, "content": message.get("content")}


def _conversation_problems(turns: list[dict[str, Any]]) -> list[str]:
    if not turns:
        return ['"messages" must not be empty']
    roles = [turn["role"] for turn in turns]
    problems = []
    if "system" in roles[1:]:
        problems.append(f"messages[{roles.index('system', 1)}]: a system turn may only come first")
    if "user" not in roles or "assistant" not in roles:
        problems.append("messages need at least one user and one assistant turn")
    elif roles[-1] != "assistant":
        problems.append(f"the last turn must be the assistant's, got {roles[-1]}")
    return problems


def row_chars(fmt: str, row: Row) -> int:
    """Characters of a normalised row's text values."""
    if fmt == "chat":
        return sum(len(turn["content"]) for turn in row["messages"])
    return sum(len(row[key]) for key in FORMAT_KEYS[fmt])


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _json_error(error: json.JSONDecodeError) -> str:
    return f"{error.msg} at column {error.colno}"


# ---------------------------------------------------------------- JSON Lines


def _read_jsonl(hashing: _HashingReader, collector: _Collector) -> None:
    for position, text, problem in _decoded_lines(hashing):
        if problem is not None:
            collector.row_errors(position, [problem])
        elif not text.strip():
            collector.blank(position)
        else:
            _check_json_line(position, text, collector)


def _check_json_line(position: int, text: str, collector: _Collector) -> None:
    if collector.rows == 0 and collector.error_count == 0 and text.lstrip().startswith("["):
        raise _FileProblem(
            f"line {position}: this looks like a JSON array; upload JSON Lines instead "
            "(one JSON object per line, no enclosing [ ])"
        )
    try:
        # Without its line break, so that error columns stay on this line.
        value = json.loads(text.rstrip("\r\n"))
    except json.JSONDecodeError as error:
        collector.row_errors(position, [f"invalid JSON ({_json_error(error)})"])
        return
    if not isinstance(value, dict):
        collector.row_errors(position, [f"expected a JSON object, got {json_type_name(value)}"])
        return
    collector.check(position, value, tabular=False)


def _decoded_lines(hashing: _HashingReader) -> Iterator[tuple[int, str, str | None]]:
    """(line number, text, problem) for each line; bad UTF-8 gives replaced text + a problem."""
    for number, line in enumerate(hashing.lines(), start=1):
        if number == 1 and line.startswith(_BOM):
            line = line[len(_BOM) :]
        try:
            yield number, line.decode("utf-8"), None
        except UnicodeDecodeError as error:
            problem = (
                f"not valid UTF-8 (byte 0x{line[error.start]:02x} at column {error.start + 1}); "
                "save the file as UTF-8"
            )
            yield number, line.decode("utf-8", errors="replace"), problem


# ---------------------------------------------------------------- CSV


class _CsvLines:
    """Feeds decoded lines to csv.reader while remembering line numbers and bad UTF-8."""

    def __init__(self, hashing: _HashingReader) -> None:
        self._lines = _decoded_lines(hashing)
        self.consumed = 0
        self.last_problem: tuple[int, str] | None = None

    def __iter__(self) -> Iterator[str]:
        for number, text, problem in self._lines:
            self.consumed = number
            if problem is not None:
                self.last_problem = (number, problem)
            yield text

    def problem_since(self, start: int) -> str | None:
        if self.last_problem is not None and self.last_problem[0] >= start:
            return self.last_problem[1]
        return None


def _read_csv(hashing: _HashingReader, collector: _Collector) -> None:
    lines = _CsvLines(hashing)
    # strict: an unclosed quote is an error instead of silently swallowing the rest of the file.
    reader = csv.reader(lines, strict=True)
    header = _csv_header(reader, lines)
    while True:
        start = lines.consumed + 1
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as error:
            collector.row_errors(start, [_csv_problem(error)])
            continue
        _check_csv_record(start, cells, header, lines, collector)


def _csv_problem(error: csv.Error) -> str:
    if "unexpected end of data" in str(error):
        return "malformed CSV (a quoted cell is never closed)"
    return f"malformed CSV ({error})"


def _csv_header(reader: Iterator[list[str]], lines: _CsvLines) -> list[str]:
    try:
        header = next(reader)
    except StopIteration:
        raise _FileProblem("the file is empty") from None
    except csv.Error as error:
        raise _FileProblem(f"line 1: {_csv_problem(error)}") from None
    problem = lines.problem_since(1)
    if problem is not None:
        raise _FileProblem(f"line 1: {problem}")
    header = [name.strip() for name in header]
    _check_columns(header, "the header row")
    return header


def _check_columns(columns: list[str], where: str) -> None:
    if len(set(columns)) != len(columns):
        duplicates = sorted({name for name in columns if columns.count(name) > 1})
        raise _FileProblem(f"{where} repeats the column(s) {', '.join(duplicates)}")
    fmt = detect_row_format(dict.fromkeys(columns))
    if fmt is None:
        raise _FileProblem(
            f"{where} has no known columns: expected text | messages | "
            f"instruction, input, output | prompt, chosen, rejected; got {', '.join(columns)}"
        )
    missing = [key for key in FORMAT_KEYS[fmt] if key != "input" and key not in columns]
    if missing:
        raise _FileProblem(f"{where} lacks the column(s) {', '.join(missing)} of the {fmt} format")


def _check_csv_record(
    start: int, cells: list[str], header: list[str], lines: _CsvLines, collector: _Collector
) -> None:
    problem = lines.problem_since(start)
    if problem is not None:
        collector.row_errors(start, [problem])
    elif not cells:
        collector.blank(start)
    elif len(cells) != len(header):
        message = f"expected {len(header)} fields (one per header column), got {len(cells)}"
        collector.row_errors(start, [message])
    else:
        collector.check(start, dict(zip(header, cells, strict=True)), tabular=True)


# ---------------------------------------------------------------- Parquet


def _read_parquet(hashing: _HashingReader, collector: _Collector) -> None:
    # Imported here so that only Parquet uploads pay for loading pyarrow.
    import pyarrow as pa
    import pyarrow.parquet as pq

    collector.unit = "row"
    try:
        parquet = pq.ParquetFile(hashing.read_all_for_random_access())
    except (pa.ArrowException, OSError) as error:
        raise _FileProblem(f"not a readable Parquet file ({error})") from None
    columns = [str(name) for name in parquet.schema_arrow.names]
    _check_columns(columns, "the Parquet schema")
    known = [name for name in columns if any(name in keys for keys in FORMAT_KEYS.values())]
    position = 0
    try:
        for batch in parquet.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=known):
            for row in batch.to_pylist():
                position += 1
                collector.check(position, row, tabular=True)
    except (pa.ArrowException, OSError) as error:
        raise _FileProblem(f"row {position + 1}: cannot read the Parquet data ({error})") from None


def inspect_bytes(data: bytes, filename: str, **kwargs: Any) -> DatasetReport:
    """``inspect_dataset`` for content already in memory (small uploads, tests)."""
    return inspect_dataset(io.BytesIO(data), filename, **kwargs)
