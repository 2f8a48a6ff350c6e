from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.dataset_files import (
    DatasetReport,
    DatasetTooLarge,
    UnsupportedFileType,
    check_dataset_size,
    file_type_for,
    inspect_bytes,
    inspect_dataset,
)


def _jsonl(*rows: Any) -> bytes:
    return b"".join(json.dumps(row).encode() + b"\n" for row in rows)


def _chat(*turns: tuple[str, Any]) -> dict[str, Any]:
    return {"messages": [{"role": role, "content": content} for role, content in turns]}


def _messages(report: DatasetReport) -> list[str]:
    return report.error_messages()


def _normalised(data: bytes, filename: str = "data.jsonl") -> tuple[DatasetReport, list[Any]]:
    out = io.BytesIO()
    report = inspect_bytes(data, filename, normalised_out=out)
    return report, [json.loads(line) for line in out.getvalue().splitlines()]


# ---------------------------------------------------------------- formats


def test_it_detects_the_text_format() -> None:
    report = inspect_bytes(_jsonl({"text": "hello"}, {"text": "world"}), "d.jsonl")

    assert (report.format, report.rows, report.error_count, report.ok) == ("text", 2, 0, True)


def test_it_detects_the_chat_format() -> None:
    row = _chat(("system", "be brief"), ("user", "hi"), ("assistant", "hello"))

    report = inspect_bytes(_jsonl(row, row), "d.jsonl")

    assert (report.format, report.rows, report.ok) == ("chat", 2, True)


def test_it_detects_the_instruction_format() -> None:
    rows = [
        {"instruction": "add", "input": "1 2", "output": "3"},
        {"instruction": "hi", "output": "yo"},
    ]

    report = inspect_bytes(_jsonl(*rows), "d.jsonl")

    assert (report.format, report.rows, report.ok) == ("instruction", 2, True)


def test_it_detects_the_preference_format() -> None:
    row = {"prompt": "2+2?", "chosen": "4", "rejected": "5"}

    report = inspect_bytes(_jsonl(row), "d.jsonl")

    assert (report.format, report.rows, report.ok) == ("preference", 1, True)


def test_the_first_valid_row_fixes_the_format_and_other_formats_are_errors() -> None:
    data = _jsonl({"text": 1}, {"text": "a"}, {"prompt": "p", "chosen": "c", "rejected": "r"})

    report = inspect_bytes(data, "d.jsonl")

    assert report.format == "text"
    assert _messages(report) == [
        'line 1: "text" must be a string, got number',
        "line 3: row looks like the preference format, but this dataset is in the text format "
        "(set by line 2)",
    ]


# ---------------------------------------------------------------- line errors


def test_it_reports_each_malformed_line_with_its_number() -> None:
    data = b"\n".join(
        [
            b'{"instruction": "a", "output": "b"}',
            b'{"instruction": "a" "output": "b"}',
            b'{"instruction": "a", "output": 7}',
            b'{"instruction": "a"}',
            b"[1, 2]",
            b'{"instruction": "a", "input": "x", "output": "b"}',
        ]
    )

    report = inspect_bytes(data, "d.jsonl")

    assert report.rows == 2
    assert report.error_count == 3 + 1
    assert report.invalid_rows == 4
    assert _messages(report) == [
        "line 2: invalid JSON (Expecting ',' delimiter at column 21)",
        'line 3: "output" must be a string, got number',
        'line 4: missing key "output" for instruction format',
        "line 5: expected a JSON object, got array",
    ]


def test_a_missing_preference_key_is_named() -> None:
    data = _jsonl({"prompt": "p", "chosen": "c", "rejected": "r"}, {"prompt": "p", "rejected": "r"})

    report = inspect_bytes(data, "d.jsonl")

    assert _messages(report) == ['line 2: missing key "chosen" for preference format']


def test_identical_chosen_and_rejected_is_an_error() -> None:
    report = inspect_bytes(_jsonl({"prompt": "p", "chosen": "same", "rejected": "same"}), "d.jsonl")

    assert 'line 1: "chosen" and "rejected" are identical' in _messages(report)


def test_blank_values_are_errors_but_a_blank_input_is_fine() -> None:
    data = _jsonl(
        {"instruction": "a", "input": "", "output": "b"},
        {"instruction": "  ", "output": "b"},
        {"instruction": "a", "output": ""},
    )

    report = inspect_bytes(data, "d.jsonl")

    assert _messages(report) == [
        'line 2: "instruction" must not be empty',
        'line 3: "output" must not be empty',
    ]


def test_a_row_can_report_several_problems() -> None:
    data = _jsonl(
        {"prompt": "p", "chosen": "c", "rejected": "r"},
        {"prompt": 1, "chosen": None, "rejected": "r"},
    )

    report = inspect_bytes(data, "d.jsonl")

    assert _messages(report) == [
        'line 2: "prompt" must be a string, got number',
        'line 2: "chosen" must be a string, got null',
    ]
    assert report.error_count == 2
    assert report.invalid_rows == 1


def test_a_blank_line_in_the_middle_is_an_error_but_trailing_ones_are_ignored() -> None:
    data = b'{"text": "a"}\n\n  \n{"text": "b"}\n\n\n'

    report = inspect_bytes(data, "d.jsonl")

    assert report.rows == 2
    assert _messages(report) == ["line 2: empty line", "line 3: empty line"]


def test_windows_line_endings_and_a_byte_order_mark_are_accepted() -> None:
    data = b'\xef\xbb\xbf{"text": "a"}\r\n{"text": "b"}\r\n'

    report = inspect_bytes(data, "d.jsonl")

    assert (report.rows, report.error_count) == (2, 0)


def test_invalid_utf8_is_a_line_error() -> None:
    data = b'{"text": "a"}\n{"text": "caf\xe9"}\n{"text": "b"}\n'

    report = inspect_bytes(data, "d.jsonl")

    assert report.rows == 2
    assert _messages(report) == [
        "line 2: not valid UTF-8 (byte 0xe9 at column 14); save the file as UTF-8"
    ]


def test_unicode_line_separators_inside_strings_do_not_split_lines() -> None:
    data = '{"text": "a\u2028b\u0085c"}\n'.encode()

    report, rows = _normalised(data)

    assert report.rows == 1
    assert rows == [{"text": "a\u2028b\u0085c"}]


def test_a_row_with_no_known_keys_lists_the_expected_ones() -> None:
    report = inspect_bytes(_jsonl({"text": "a"}, {"question": "q", "answer": "a"}), "d.jsonl")

    assert _messages(report) == [
        "line 2: row has no known format, but this dataset is in the text format (set by line 1)"
    ]
    report = inspect_bytes(_jsonl({"question": "q"}), "d.jsonl")
    assert _messages(report)[1] == (
        "line 1: no known format: expected the keys text | messages | instruction, input, output"
        " | prompt, chosen, rejected; got question"
    )


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            _chat(("user", "hi"), ("bot", "yo")),
            "messages[1].role must be one of system, user, assistant; got 'bot'",
        ),
        (_chat(("user", "hi")), "messages need at least one user and one assistant turn"),
        (
            _chat(("user", "hi"), ("assistant", "yo"), ("user", "more?")),
            "the last turn must be the assistant's, got user",
        ),
        (
            _chat(("user", "hi"), ("system", "s"), ("assistant", "yo")),
            "messages[1]: a system turn may only come first",
        ),
        (_chat(("user", "hi"), ("assistant", " ")), "messages[1].content must not be empty"),
        (
            _chat(("user", "hi"), ("assistant", 5)),
            "messages[1].content must be a string, got number",
        ),
        ({"messages": [{"role": "user"}]}, 'messages[0] is missing "content"'),
        ({"messages": ["hi"]}, "messages[0] must be an object, got string"),
        ({"messages": []}, '"messages" must not be empty'),
        ({"messages": "hi"}, '"messages" must be an array, got string'),
    ],
)
def test_it_reports_what_is_wrong_with_a_conversation(row, message) -> None:
    report = inspect_bytes(_jsonl(_chat(("user", "a"), ("assistant", "b")), row), "d.jsonl")

    assert _messages(report) == [f"line 2: {message}"]


def test_a_json_array_file_is_refused_with_a_hint() -> None:
    report = inspect_bytes(json.dumps([{"text": "a"}]).encode(), "data.json")

    assert report.rows == 0
    assert not report.ok
    assert "looks like a JSON array; upload JSON Lines" in _messages(report)[0]


def test_it_caps_the_listed_errors_but_counts_them_all() -> None:
    data = _jsonl({"text": "ok"}) + b"not json\n" * 500

    report = inspect_bytes(data, "d.jsonl")

    assert len(report.errors) == 200
    assert report.error_count == 500
    assert report.errors[-1].line == 201


def test_the_error_cap_can_be_changed() -> None:
    report = inspect_bytes(_jsonl({"text": "ok"}) + b"{\n" * 30, "d.jsonl", max_errors=5)

    assert (len(report.errors), report.error_count) == (5, 30)


# ---------------------------------------------------------------- file-level problems


def test_an_empty_file_is_an_error() -> None:
    report = inspect_bytes(b"", "d.jsonl")

    assert (report.ok, report.format, report.rows) == (False, None, 0)
    assert _messages(report) == ["the file is empty"]
    assert report.errors[0].line is None


def test_a_file_without_a_valid_row_says_so_first() -> None:
    report = inspect_bytes(b"{\n{\n", "d.jsonl")

    assert _messages(report)[0] == "no valid rows found"
    assert report.error_count == 3


def test_an_unsupported_file_type_is_reported() -> None:
    report = inspect_bytes(b"text\nhello\n", "notes.txt")

    assert report.file_type is None
    assert "unsupported file type '.txt'" in _messages(report)[0]


def test_the_file_type_comes_from_the_extension() -> None:
    assert file_type_for("a.JSONL") == "jsonl"
    assert file_type_for("a.json") == "jsonl"
    assert file_type_for("dir.v2/train.csv") == "csv"
    assert file_type_for("train.parquet") == "parquet"
    with pytest.raises(UnsupportedFileType, match="no extension"):
        file_type_for("train")


def test_a_file_over_the_limit_is_refused_with_both_sizes() -> None:
    check_dataset_size(1_000, 1_000)

    with pytest.raises(DatasetTooLarge) as caught:
        check_dataset_size(1_500_000_000, 1_000_000_000)

    assert str(caught.value) == "the file is 1.5 GB; the limit is 1.0 GB"
    assert (caught.value.size, caught.value.limit) == (1_500_000_000, 1_000_000_000)


# ---------------------------------------------------------------- results


def test_the_checksum_and_size_are_those_of_the_original_bytes() -> None:
    data = b'{"text": "a"}\n{oops\n\n{"text": "b"}'

    report = inspect_bytes(data, "d.jsonl")

    assert report.sha256 == hashlib.sha256(data).hexdigest()
    assert report.size_bytes == len(data)


def test_the_checksum_covers_a_file_whose_reading_stopped_early() -> None:
    data = b'[{"text": "a"},\n{"text": "b"}]\n' + b"x" * 10_000

    report = inspect_bytes(data, "d.json")

    assert report.sha256 == hashlib.sha256(data).hexdigest()


def test_length_statistics_count_characters_and_estimate_tokens() -> None:
    texts = ["x" * n for n in range(1, 101)]  # 1..100 characters

    report = inspect_bytes(_jsonl(*({"text": t} for t in texts)), "d.jsonl")

    stats = report.stats
    assert stats is not None
    assert (stats.min_chars, stats.max_chars, stats.total_chars) == (1, 100, 5050)
    assert stats.mean_chars == 50.5
    assert (stats.p50_chars, stats.p95_chars) == (50, 95)
    assert stats.approx_tokens_total == 1263  # ceil(5050 / 4)
    assert stats.approx_tokens_p95 == 24
    assert stats.approx_tokens_max == 25
    assert stats.approx_tokens_mean == 12.625


def test_row_length_sums_every_text_value_of_the_row() -> None:
    rows = [
        {"instruction": "abc", "input": "de", "output": "f"},
        _chat(("system", "12"), ("user", "345"), ("assistant", "6789")),
    ]

    instruction = inspect_bytes(_jsonl(rows[0]), "d.jsonl").stats
    chat = inspect_bytes(_jsonl(rows[1]), "d.jsonl").stats

    assert instruction is not None and instruction.total_chars == 6
    assert chat is not None and chat.total_chars == 9


def test_the_preview_holds_the_first_ten_normalised_rows() -> None:
    data = _jsonl(*({"text": f"row {i}", "id": i} for i in range(25)))

    report = inspect_bytes(data, "d.jsonl")

    assert report.preview == [{"text": f"row {i}"} for i in range(10)]


def test_the_normalised_copy_has_exactly_the_format_keys_of_each_valid_row() -> None:
    data = _jsonl(
        {"output": "b", "instruction": "a", "source": "web"},
        {"instruction": "a", "input": None, "output": "b"},
        {"instruction": 1, "output": "b"},
        {"instruction": "c", "input": "d", "output": "e"},
    )

    report, rows = _normalised(data)

    assert report.rows == 3
    assert rows == [
        {"instruction": "a", "input": "", "output": "b"},
        {"instruction": "a", "input": "", "output": "b"},
        {"instruction": "c", "input": "d", "output": "e"},
    ]
    assert all(list(row) == ["instruction", "input", "output"] for row in rows)


def test_normalised_chat_messages_keep_only_role_and_content() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "hi", "name": "x"},
            {"role": "assistant", "content": "é"},
        ]
    }

    _, rows = _normalised(_jsonl(row))

    assert rows == [_chat(("user", "hi"), ("assistant", "é"))]


def test_the_report_is_json_serialisable() -> None:
    report = inspect_bytes(_jsonl({"text": "a"}) + b"{\n", "d.jsonl")

    data = json.loads(json.dumps(report.as_dict()))

    assert data["format"] == "text"
    assert data["ok"] is False
    assert data["errors"] == [
        {
            "line": 2,
            "message": "invalid JSON (Expecting property name enclosed in double quotes at "
            "column 2)",
        }
    ]
    assert data["stats"]["max_chars"] == 1


def test_it_reads_a_path_as_well_as_a_stream(tmp_path: Path) -> None:
    path = tmp_path / "train.jsonl"
    path.write_bytes(_jsonl({"text": "a"}, {"text": "b"}))

    report = inspect_dataset(path, "train.jsonl")

    assert (report.format, report.rows) == ("text", 2)


def test_a_stream_already_read_is_inspected_from_its_start() -> None:
    data = _jsonl({"text": "a"})
    stream = io.BytesIO(data)
    stream.read()

    report = inspect_dataset(stream, "d.jsonl")

    assert (report.rows, report.sha256) == (1, hashlib.sha256(data).hexdigest())


# ---------------------------------------------------------------- CSV


def _write_csv(path: Path, rows: list[list[str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_it_reads_a_csv_file_with_a_header(tmp_path: Path) -> None:
    path = _write_csv(
        tmp_path / "d.csv",
        [["instruction", "input", "output"], ["add", "1 2", "3"], ["greet", "", "hello"]],
    )
    out = io.BytesIO()

    report = inspect_dataset(path, "d.csv", normalised_out=out)

    assert (report.file_type, report.format, report.rows, report.ok) == (
        "csv",
        "instruction",
        2,
        True,
    )
    assert (
        out.getvalue().decode().splitlines()[1]
        == '{"instruction": "greet", "input": "", "output": "hello"}'
    )
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_csv_errors_carry_the_file_line_counting_the_header_and_multiline_cells(
    tmp_path: Path,
) -> None:
    path = _write_csv(
        tmp_path / "d.csv",
        [["prompt", "chosen", "rejected"], ["two\nlines", "a", "b"], ["p", "c"], ["p", "", "r"]],
    )

    report = inspect_dataset(path, "d.csv")

    assert report.rows == 1
    assert _messages(report) == [
        "line 4: expected 3 fields (one per header column), got 2",
        'line 5: "chosen" must not be empty',
    ]


def test_a_csv_messages_cell_holds_json(tmp_path: Path) -> None:
    good = json.dumps(_chat(("user", "hi"), ("assistant", "yo"))["messages"])
    path = _write_csv(tmp_path / "d.csv", [["messages"], [good], ["[{"]])

    report, rows = _normalised(path.read_bytes(), "d.csv")

    assert report.format == "chat"
    assert rows == [_chat(("user", "hi"), ("assistant", "yo"))]
    assert _messages(report) == [
        'line 3: "messages" is not valid JSON (Expecting property name enclosed in double quotes '
        "at column 3)"
    ]


def test_a_csv_header_without_known_columns_is_one_file_error() -> None:
    report = inspect_bytes(b"question,answer\nq,a\nq2,a2\n", "d.csv")

    assert report.error_count == 1
    assert _messages(report) == [
        "the header row has no known columns: expected text | messages | instruction, input, "
        "output | prompt, chosen, rejected; got question, answer"
    ]


def test_a_csv_header_missing_a_format_column_is_one_file_error() -> None:
    report = inspect_bytes(b"instruction,input\na,b\n", "d.csv")

    assert _messages(report) == [
        "the header row lacks the column(s) output of the instruction format"
    ]


def test_a_csv_header_repeating_a_column_is_refused() -> None:
    report = inspect_bytes(b"text,text\na,b\n", "d.csv")

    assert _messages(report) == ["the header row repeats the column(s) text"]


def test_csv_blank_lines_and_bad_utf8_are_line_errors() -> None:
    data = b"text\nfirst\n\nsecond\nth\xffird\nfourth\n\n"

    report = inspect_bytes(data, "d.csv")

    assert report.rows == 3
    assert _messages(report) == [
        "line 3: empty line",
        "line 5: not valid UTF-8 (byte 0xff at column 3); save the file as UTF-8",
    ]


def test_malformed_csv_records_are_line_errors() -> None:
    data = b'text\nfirst\n"a"b\nsecond\n"never closed\nlast\n'

    report = inspect_bytes(data, "d.csv")

    assert report.rows == 2
    assert _messages(report) == [
        "line 3: malformed CSV (',' expected after '\"')",
        "line 5: malformed CSV (a quoted cell is never closed)",
    ]


def test_an_empty_csv_file_is_an_error() -> None:
    assert _messages(inspect_bytes(b"", "d.csv")) == ["the file is empty"]
    assert _messages(inspect_bytes(b"text\n", "d.csv")) == ["no valid rows found"]


# ---------------------------------------------------------------- Parquet


def _write_parquet(path: Path, table: pa.Table) -> Path:
    pq.write_table(table, path)
    return path


def test_it_reads_a_parquet_file(tmp_path: Path) -> None:
    table = pa.table({"text": ["alpha", "beta", "gamma"], "id": [1, 2, 3]})
    path = _write_parquet(tmp_path / "d.parquet", table)
    out = io.BytesIO()

    report = inspect_dataset(path, "d.parquet", normalised_out=out)

    assert (report.file_type, report.format, report.rows, report.ok) == ("parquet", "text", 3, True)
    assert out.getvalue() == b'{"text": "alpha"}\n{"text": "beta"}\n{"text": "gamma"}\n'
    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert report.size_bytes == path.stat().st_size


def test_parquet_chat_rows_come_from_a_list_of_structs(tmp_path: Path) -> None:
    conversations = [
        [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}],
        [{"role": "user", "content": "hi"}],
    ]
    path = _write_parquet(tmp_path / "chat.parquet", pa.table({"messages": conversations}))

    with path.open("rb") as handle:
        report = inspect_dataset(handle, "chat.parquet")

    assert (report.format, report.rows) == ("chat", 1)
    assert _messages(report) == ["row 2: messages need at least one user and one assistant turn"]


def test_parquet_errors_carry_the_row_number(tmp_path: Path) -> None:
    table = pa.table(
        {
            "instruction": ["a", None, "c", "d"],
            "input": [None, "x", None, None],
            "output": ["b", "b", "", "e"],
        }
    )
    path = _write_parquet(tmp_path / "d.parquet", table)

    report = inspect_dataset(path, "d.parquet")

    assert report.rows == 2
    assert _messages(report) == [
        'row 2: "instruction" must be a string, got null',
        'row 3: "output" must not be empty',
    ]


def test_a_parquet_file_with_the_wrong_columns_is_one_file_error(tmp_path: Path) -> None:
    path = _write_parquet(tmp_path / "d.parquet", pa.table({"question": ["q"]}))

    report = inspect_dataset(path, "d.parquet")

    assert report.error_count == 1
    assert "the Parquet schema has no known columns" in _messages(report)[0]


def test_a_file_that_is_not_parquet_is_reported() -> None:
    report = inspect_bytes(b'{"text": "a"}\n', "d.parquet")

    assert report.rows == 0
    assert _messages(report)[0].startswith("not a readable Parquet file")
