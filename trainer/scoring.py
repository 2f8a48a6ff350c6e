"""BLEU and ROUGE scores for predictions, with or without the Hugging Face Hub.

`evaluate.load("bleu")` / `evaluate.load("rouge")` fetch their scripts from the Hub, which a pod
may not reach (and tests must not). The offline path computes the same numbers:

- BLEU: the tensorflow/nmt `compute_bleu` that evaluate's bleu wraps, on tokens from the
  sacrebleu 13a tokenizer that evaluate uses by default (max_order 4, no smoothing).
- ROUGE: the `rouge_score` package with evaluate's options (no stemmer, its default tokenizer),
  F-measures. evaluate aggregates corpora with `BootstrapAggregator` whose `mid` is a resampled
  estimate of the mean; we take the mean itself, which it converges to (and equals when all
  samples score the same, as in evaluate's published examples).
"""

from __future__ import annotations

import collections
import logging
import math
import os
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from rouge_score import rouge_scorer

log = logging.getLogger(__name__)

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_13A_RULES = [
    # Punctuation and symbols become their own tokens (sacrebleu's "language-dependent part").
    (re.compile(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])"), r" \1 "),
    # Period and comma split off unless inside a number.
    (re.compile(r"([^0-9])([\.,])"), r"\1 \2 "),
    (re.compile(r"([\.,])([^0-9])"), r" \1 \2"),
    (re.compile(r"([0-9])(-)"), r"\1 \2 "),
]


@lru_cache(maxsize=4096)
def tokenize_13a(line: str) -> tuple[str, ...]:
    """sacrebleu's 13a tokenizer (mteval-v13a), as evaluate's bleu applies it."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(entity, char)
    line = f" {line} "
    for pattern, replacement in _13A_RULES:
        line = pattern.sub(replacement, line)
    return tuple(line.split())


def _ngrams(tokens: Sequence[str], max_order: int) -> collections.Counter[tuple[str, ...]]:
    counts: collections.Counter[tuple[str, ...]] = collections.Counter()
    for order in range(1, max_order + 1):
        for start in range(len(tokens) - order + 1):
            counts[tuple(tokens[start : start + order])] += 1
    return counts


def compute_bleu(
    references: Sequence[Sequence[Sequence[str]]],
    translations: Sequence[Sequence[str]],
    max_order: int = 4,
    smooth: bool = False,
) -> dict[str, Any]:
    """tensorflow/nmt `compute_bleu` on pre-tokenized text, returning evaluate's result keys."""
    matches = [0] * max_order
    possible = [0] * max_order
    reference_length = translation_length = 0
    for refs, translation in zip(references, translations, strict=True):
        reference_length += min(len(ref) for ref in refs)
        translation_length += len(translation)
        merged: collections.Counter[tuple[str, ...]] = collections.Counter()
        for ref in refs:
            merged |= _ngrams(ref, max_order)
        for ngram, count in (_ngrams(translation, max_order) & merged).items():
            matches[len(ngram) - 1] += count
        for order in range(1, max_order + 1):
            possible[order - 1] += max(0, len(translation) - order + 1)
    precisions = [
        (matches[i] + 1.0) / (possible[i] + 1.0)
        if smooth
        else (matches[i] / possible[i] if possible[i] > 0 else 0.0)
        for i in range(max_order)
    ]
    geo_mean = (
        math.exp(sum(math.log(p) / max_order for p in precisions)) if min(precisions) > 0 else 0.0
    )
    if reference_length == 0 or translation_length == 0:
        ratio = bp = 0.0
    else:
        ratio = translation_length / reference_length
        bp = 1.0 if ratio > 1.0 else math.exp(1 - 1.0 / ratio)
    return {
        "bleu": geo_mean * bp,
        "precisions": precisions,
        "brevity_penalty": bp,
        "length_ratio": ratio,
        "translation_length": translation_length,
        "reference_length": reference_length,
    }


def bleu(predictions: Sequence[str], references: Sequence[str | Sequence[str]]) -> dict[str, Any]:
    """Corpus BLEU with evaluate's defaults; each reference may be a string or a list of them."""
    refs = [[ref] if isinstance(ref, str) else list(ref) for ref in references]
    return compute_bleu(
        [[tokenize_13a(r) for r in group] for group in refs],
        [tokenize_13a(p) for p in predictions],
    )


@lru_cache(maxsize=1)
def _rouge_scorer() -> rouge_scorer.RougeScorer:
    return rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)


def rouge(predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
    """Mean ROUGE-1/2/L F-measures, as evaluate's rouge computes them."""
    scorer = _rouge_scorer()
    scores = [scorer.score(ref, pred) for ref, pred in zip(references, predictions, strict=True)]
    if not scores:
        return dict.fromkeys(ROUGE_TYPES, 0.0)
    return {key: sum(s[key].fmeasure for s in scores) / len(scores) for key in ROUGE_TYPES}


class Scorer:
    """Scores predictions through `evaluate` when its metrics load, else offline."""

    def __init__(self, prefer_evaluate: bool | None = None) -> None:
        if prefer_evaluate is None:
            prefer_evaluate = os.environ.get("HF_HUB_OFFLINE", "") not in ("1", "true", "True")
        self._bleu: Any = None
        self._rouge: Any = None
        if prefer_evaluate:
            self._load_evaluate()
        self.backend = "evaluate" if self._bleu is not None else "offline"
        log.info("prediction scores computed with the %s implementation", self.backend)

    def _load_evaluate(self) -> None:
        try:
            import evaluate

            self._bleu = evaluate.load("bleu")
            self._rouge = evaluate.load("rouge")
        except Exception as exc:  # any failure (network, hub, script) means: use our own copy
            log.info("evaluate metrics unavailable (%s); scoring offline", exc)
            self._bleu = self._rouge = None

    def corpus(self, predictions: Sequence[str], references: Sequence[str]) -> dict[str, float]:
        """bleu, rouge1, rouge2, rougeL for a set of predictions, each in [0, 1]."""
        if self._bleu is not None and self._rouge is not None:
            bleu_score = self._bleu.compute(
                predictions=list(predictions), references=[[r] for r in references]
            )["bleu"]
            rouge_scores = self._rouge.compute(
                predictions=list(predictions), references=list(references),
                rouge_types=list(ROUGE_TYPES),
            )  # fmt: skip
        else:
            bleu_score = bleu(predictions, references)["bleu"]
            rouge_scores = rouge(predictions, references)
        scores = {"bleu": float(bleu_score)}
        scores.update({key: float(rouge_scores[key]) for key in ROUGE_TYPES})
        return {key: min(1.0, max(0.0, value)) for key, value in scores.items()}

    def one(self, prediction: str, reference: str) -> dict[str, float]:
        return self.corpus([prediction], [reference])
