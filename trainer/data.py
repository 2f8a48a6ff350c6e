"""Dataset rows (contracts §2) → the dataset shapes trl trains on, plus prediction samples.

SFT trains on one `text` column whatever the upload format, rendered through the tokenizer's
chat template when it has one; DPO/ORPO train on string `prompt` / `chosen` / `rejected` where
the prompt already ends with the template's generation prompt, so trl never needs a template.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import Dataset

FORMAT_KEYS: dict[str, tuple[str, ...]] = {
    "text": ("text",),
    "chat": ("messages",),
    "instruction": ("instruction", "input", "output"),
    "preference": ("prompt", "chosen", "rejected"),
}
PREFERENCE_METHODS = ("dpo", "orpo")

Row = dict[str, Any]
Message = dict[str, str]


class DataError(ValueError):
    """The dataset cannot be used as asked."""


@dataclass(frozen=True)
class Sample:
    """One fixed prediction sample: what we show, what the model sees, what we hope for."""

    sample_id: str
    prompt: str
    model_input: str
    expected: str


@dataclass
class PreparedData:
    train: Dataset
    eval: Dataset | None
    samples: list[Sample]
    data_format: str


class ChatRenderer:
    """Renders messages with the tokenizer's chat template, or 'role: content' lines without one."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.has_template = bool(getattr(tokenizer, "chat_template", None))

    def render(self, messages: list[Message], add_generation_prompt: bool = False) -> str:
        if self.has_template:
            text = self.tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=add_generation_prompt
            )
            return str(text)
        lines = "".join(f"{m['role']}: {m['content']}\n" for m in messages)
        return lines + ("assistant:" if add_generation_prompt else "")

    def completion(self, prompt_messages: list[Message], answer: str) -> tuple[str, str]:
        """Split a rendered conversation into (prompt with generation prompt, completion)."""
        prompt = self.render(prompt_messages, add_generation_prompt=True)
        full = self.render([*prompt_messages, {"role": "assistant", "content": answer}])
        if full.startswith(prompt):
            return prompt, full[len(prompt) :]
        return prompt, answer


def read_jsonl(path: Path) -> list[Row]:
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{path.name} line {number} is not JSON: {exc.msg}") from exc
    if not rows:
        raise DataError(f"{path.name} holds no rows")
    return rows


def detect_format(rows: list[Row]) -> str:
    first = rows[0]
    if not isinstance(first, dict):
        raise DataError("dataset rows must be JSON objects")
    for name, keys in FORMAT_KEYS.items():
        if all(key in first for key in keys):
            return name
    raise DataError(f"row 1 matches no dataset format (keys: {sorted(first)})")


def validate_rows(rows: list[Row], data_format: str) -> None:
    for number, row in enumerate(rows, start=1):
        missing = [key for key in FORMAT_KEYS[data_format] if key not in row]
        if missing:
            raise DataError(f"row {number} of a {data_format} dataset lacks {missing}")


def user_turn(row: Row, data_format: str) -> list[Message]:
    if data_format == "instruction":
        text = row["instruction"] + (f"\n\n{row['input']}" if row["input"] else "")
        return [{"role": "user", "content": text}]
    return [{"role": "user", "content": row["prompt"]}]


def sft_text(row: Row, data_format: str, chat: ChatRenderer) -> str:
    if data_format == "text":
        return str(row["text"])
    if data_format == "chat":
        return chat.render(row["messages"])
    answer = row["output"] if data_format == "instruction" else row["chosen"]
    return chat.render([*user_turn(row, data_format), {"role": "assistant", "content": answer}])


def preference_row(row: Row, chat: ChatRenderer) -> Row:
    prompt, chosen = chat.completion(user_turn(row, "preference"), row["chosen"])
    _, rejected = chat.completion(user_turn(row, "preference"), row["rejected"])
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def to_training_rows(
    rows: list[Row], data_format: str, method: str, chat: ChatRenderer
) -> list[Row]:
    if method in PREFERENCE_METHODS:
        if data_format != "preference":
            raise DataError(f"{method} needs a preference dataset, got a {data_format} dataset")
        return [preference_row(row, chat) for row in rows]
    return [{"text": sft_text(row, data_format, chat)} for row in rows]


def prediction_sample(index: int, row: Row, data_format: str, chat: ChatRenderer) -> Sample:
    sample_id = f"s{index}"
    if data_format == "text":
        words = str(row["text"]).split()
        half = max(1, len(words) // 2)
        prompt = " ".join(words[:half])
        return Sample(sample_id, prompt, prompt, " ".join(words[half:]))
    if data_format == "chat":
        messages = row["messages"]
        last = max(i for i, m in enumerate(messages) if m["role"] == "assistant")
        shown = "\n".join(f"{m['role']}: {m['content']}" for m in messages[:last])
        model_input = chat.render(messages[:last], add_generation_prompt=True)
        return Sample(sample_id, shown, model_input, messages[last]["content"])
    turn = user_turn(row, data_format)
    expected = row["output"] if data_format == "instruction" else row["chosen"]
    model_input = chat.render(turn, add_generation_prompt=True)
    return Sample(sample_id, turn[0]["content"], model_input, expected)


def has_prediction_target(row: Row, data_format: str) -> bool:
    if data_format == "chat":
        return any(m.get("role") == "assistant" for m in row["messages"])
    return True


def split_rows(rows: list[Row], eval_split: float, seed: int) -> tuple[list[Row], list[Row]]:
    shuffled = rows[:]
    random.Random(seed).shuffle(shuffled)
    if eval_split <= 0 or len(shuffled) < 2:
        return shuffled, []
    eval_count = min(len(shuffled) - 1, max(1, round(len(shuffled) * eval_split)))
    return shuffled[eval_count:], shuffled[:eval_count]


def pick_samples(
    rows: list[Row], data_format: str, count: int, seed: int, chat: ChatRenderer
) -> list[Sample]:
    """A fixed, seeded choice of rows, so every prediction round scores the same prompts."""
    usable = [row for row in rows if has_prediction_target(row, data_format)]
    chosen = random.Random(seed).sample(usable, min(count, len(usable)))
    return [prediction_sample(i, row, data_format, chat) for i, row in enumerate(chosen)]


def prepare(rows: list[Row], config: dict[str, Any], tokenizer: Any) -> PreparedData:
    """Everything the trainer needs from the raw rows, following `data.*` of the config."""
    data_format = detect_format(rows)
    validate_rows(rows, data_format)
    if config["data"]["max_samples"]:
        rows = rows[: int(config["data"]["max_samples"])]
    seed = int(config["training"]["seed"])
    train_rows, eval_rows = split_rows(rows, float(config["data"]["eval_split"] or 0), seed)
    chat = ChatRenderer(tokenizer)
    method = config["training"]["method"]
    train = Dataset.from_list(to_training_rows(train_rows, data_format, method, chat))
    evaluation = (
        Dataset.from_list(to_training_rows(eval_rows, data_format, method, chat))
        if eval_rows
        else None
    )
    count = int(config["predictions"]["sample_count"])
    samples = pick_samples(eval_rows or train_rows, data_format, count, seed, chat)
    return PreparedData(train, evaluation, samples, data_format)


def mean_tokens_per_row(dataset: Dataset, tokenizer: Any, limit: int = 256) -> float:
    """Tokens per training row, from a prefix of the data: our tokens/s when trl gives none."""
    columns = [c for c in ("text", "prompt", "chosen", "rejected") if c in dataset.column_names]
    rows = dataset.select(range(min(limit, len(dataset))))
    total = 0
    for column in columns:
        total += sum(len(ids) for ids in tokenizer(list(rows[column]))["input_ids"])
    return total / max(1, len(rows))
