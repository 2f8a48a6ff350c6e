"""Generate answers for the fixed prediction samples and score them against the expected ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from trainer.data import Sample
from trainer.scoring import Scorer


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 64
    temperature: float = 0.7
    top_p: float = 0.9

    @classmethod
    def from_config(cls, predictions: dict[str, Any]) -> GenerationSettings:
        return cls(
            int(predictions["max_new_tokens"]),
            float(predictions["temperature"]),
            float(predictions["top_p"]),
        )


@dataclass(frozen=True)
class PredictionRound:
    """One round: a `prediction` event payload per sample, and the corpus scores."""

    per_sample: list[dict[str, Any]]
    corpus: dict[str, float]


def generate_one(model: Any, tokenizer: Any, text: str, settings: GenerationSettings) -> str:
    # Templated prompts already carry BOS where the template wants it.
    inputs = tokenizer(text, return_tensors="pt", add_special_tokens=False).to(model.device)
    sampling = settings.temperature > 0
    output = model.generate(
        **inputs,
        max_new_tokens=settings.max_new_tokens,
        do_sample=sampling,
        temperature=settings.temperature if sampling else None,
        top_p=settings.top_p if sampling else None,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
        use_cache=True,
    )
    new_tokens = output[0, inputs["input_ids"].shape[1] :]
    return str(tokenizer.decode(new_tokens, skip_special_tokens=True)).strip()


def _cuda_devices() -> list[int]:
    # Sampling must not move the training RNG streams (dropout), on CPU or on any GPU.
    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def run_round(
    model: Any,
    tokenizer: Any,
    samples: list[Sample],
    settings: GenerationSettings,
    scorer: Scorer,
    seed: int,
) -> PredictionRound:
    """Generate for every sample (seeded, so rounds differ only by what the model learnt)."""
    was_training = model.training
    model.eval()
    try:
        with torch.random.fork_rng(devices=_cuda_devices()), torch.no_grad():
            torch.manual_seed(seed)
            generated = [generate_one(model, tokenizer, s.model_input, settings) for s in samples]
    finally:
        model.train(was_training)
    per_sample = [
        {
            "sample_id": sample.sample_id,
            "prompt": sample.prompt,
            "generated": text,
            "expected": sample.expected,
            "scores": scorer.one(text, sample.expected),
        }
        for sample, text in zip(samples, generated, strict=True)
    ]
    corpus = scorer.corpus(generated, [s.expected for s in samples])
    return PredictionRound(per_sample, corpus)
