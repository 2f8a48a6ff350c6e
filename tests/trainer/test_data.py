"""Each dataset format of contracts §2 becomes the trl training shape and prediction samples."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from transformers import AutoTokenizer

from trainer.config import resolve
from trainer.data import ChatRenderer, DataError, prepare, read_jsonl

CHAT = {"messages": [
    {"role": "system", "content": "be brief"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
]}  # fmt: skip
INSTRUCTION = {"instruction": "add", "input": "2 and 2", "output": "4"}
PREFERENCE = {"prompt": "say cat", "chosen": "cat", "rejected": "dog"}
TEXT = {"text": "one two three four five six"}


@pytest.fixture(scope="module")
def tokenizer(tiny_model: Path) -> Any:
    return AutoTokenizer.from_pretrained(str(tiny_model))


@pytest.fixture(scope="module")
def plain_tokenizer(tokenizer: Any) -> Any:
    plain = copy.deepcopy(tokenizer)
    plain.chat_template = None
    return plain


def prepared(rows: list[dict[str, Any]], tokenizer: Any, **overrides: Any) -> Any:
    config = resolve({"data": {"eval_split": 0.0}, "training": overrides,
                      "predictions": {"sample_count": 1}})  # fmt: skip
    return prepare(rows, config, tokenizer)


def test_chat_rows_use_the_tokenizers_chat_template(tokenizer: Any) -> None:
    data = prepared([CHAT], tokenizer)
    assert data.data_format == "chat"
    assert data.train[0]["text"] == "system: be brief\nuser: hi\nassistant: hello</s>\n"


def test_chat_rows_fall_back_to_role_content_lines_without_a_template(
    plain_tokenizer: Any,
) -> None:
    data = prepared([CHAT], plain_tokenizer)
    assert data.train[0]["text"] == "system: be brief\nuser: hi\nassistant: hello\n"


def test_instruction_rows_join_instruction_and_input_as_the_user_turn(tokenizer: Any) -> None:
    data = prepared([INSTRUCTION], tokenizer)
    assert data.train[0]["text"] == "user: add\n\n2 and 2\nassistant: 4</s>\n"
    sample = data.samples[0]
    assert (sample.prompt, sample.expected) == ("add\n\n2 and 2", "4")
    assert sample.model_input == "user: add\n\n2 and 2\nassistant:"


def test_text_rows_train_as_is_and_predict_their_second_half(tokenizer: Any) -> None:
    data = prepared([TEXT], tokenizer)
    assert data.train[0]["text"] == TEXT["text"]
    assert (data.samples[0].prompt, data.samples[0].expected) == ("one two three", "four five six")


def test_chat_samples_predict_the_last_assistant_turn(tokenizer: Any) -> None:
    sample = prepared([CHAT], tokenizer).samples[0]
    assert sample.expected == "hello"
    assert sample.model_input == "system: be brief\nuser: hi\nassistant:"


@pytest.mark.parametrize("method", ["dpo", "orpo"])
def test_preference_rows_become_prompt_chosen_rejected(tokenizer: Any, method: str) -> None:
    data = prepared([PREFERENCE], tokenizer, method=method)
    assert data.train[0] == {
        "prompt": "user: say cat\nassistant:", "chosen": " cat</s>\n", "rejected": " dog</s>\n",
    }  # fmt: skip
    assert (data.samples[0].prompt, data.samples[0].expected) == ("say cat", "cat")


def test_sft_on_preference_rows_trains_on_the_chosen_answer(tokenizer: Any) -> None:
    assert (
        prepared([PREFERENCE], tokenizer).train[0]["text"] == "user: say cat\nassistant: cat</s>\n"
    )


def test_preference_methods_refuse_other_formats(tokenizer: Any) -> None:
    with pytest.raises(DataError, match="dpo needs a preference dataset"):
        prepared([INSTRUCTION], tokenizer, method="dpo")


def test_rows_missing_keys_are_refused_with_the_row_number(tokenizer: Any) -> None:
    with pytest.raises(DataError, match="row 2"):
        prepared([INSTRUCTION, {"instruction": "x", "output": "y"}], tokenizer)


def test_eval_split_and_max_samples_shape_the_datasets(tokenizer: Any) -> None:
    rows = [{"text": f"row {i} a b"} for i in range(50)]
    config = resolve({"data": {"eval_split": 0.2, "max_samples": 20}})
    data = prepare(rows, config, tokenizer)
    assert data.eval is not None
    assert (len(data.train), len(data.eval)) == (16, 4)
    assert len(data.samples) == 4  # sample_count 5, capped by the eval rows
    texts = set(data.train["text"]) | set(data.eval["text"])
    assert texts == {f"row {i} a b" for i in range(20)}


def test_unreadable_jsonl_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "ok"}\n{oops\n')
    with pytest.raises(DataError, match="line 2 is not JSON"):
        read_jsonl(path)


def test_the_fallback_template_adds_a_generation_prompt(plain_tokenizer: Any) -> None:
    rendered = ChatRenderer(plain_tokenizer).render([{"role": "user", "content": "q"}], True)
    assert rendered == "user: q\nassistant:"
