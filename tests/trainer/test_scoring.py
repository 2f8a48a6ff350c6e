"""Offline BLEU/ROUGE give the numbers `evaluate` publishes for its own metrics.

References (huggingface/evaluate):
- metrics/bleu/README.md, "How to Use" and "Examples": predictions ["hello there general kenobi",
  "foo bar foobar"] against [["hello there general kenobi", "hello there !"], ["foo bar foobar"]]
  → bleu 1.0, precisions [1, 1, 1, 1], brevity_penalty 1.0, length_ratio 1.1666666666666667,
  translation_length 7, reference_length 6; with one reference each → length_ratio 1.0, 7 / 7.
- metrics/rouge/README.md and rouge.py docstring: ["hello there", "general kenobi"] against
  themselves → rouge1 = rouge2 = rougeL = 1.0.
The rouge README's non-aggregated example (["hello goodbye", "ankh morpork"] vs ["goodbye",
"general kenobi"]) prints rouge1 [0.5, 0.0], but the wrapper it documents calls
rouge_score's `score(ref, pred).fmeasure`, which is 2/3 for the first pair (P = 1/2, R = 1);
we assert the value that code computes.
"""

from __future__ import annotations

import pytest

from trainer.scoring import Scorer, bleu, rouge, tokenize_13a


def test_bleu_matches_evaluates_published_multi_reference_example() -> None:
    result = bleu(
        ["hello there general kenobi", "foo bar foobar"],
        [["hello there general kenobi", "hello there !"], ["foo bar foobar"]],
    )
    assert result == {
        "bleu": 1.0,
        "precisions": [1.0, 1.0, 1.0, 1.0],
        "brevity_penalty": 1.0,
        "length_ratio": 1.1666666666666667,
        "translation_length": 7,
        "reference_length": 6,
    }


def test_bleu_matches_evaluates_published_single_reference_example() -> None:
    result = bleu(
        ["hello there general kenobi", "foo bar foobar"],
        [["hello there general kenobi"], ["foo bar foobar"]],
    )
    assert result["bleu"] == 1.0
    assert (result["length_ratio"], result["translation_length"], result["reference_length"]) == (
        1.0, 7, 7,
    )  # fmt: skip


def test_bleu_counts_clipped_ngrams_and_brevity() -> None:
    # "the" x6 against "the cat is on the mat": unigram precision clipped to 2/6, no bigrams.
    repeated = bleu(["the the the the the the"], ["the cat is on the mat"])
    assert repeated["precisions"] == [2 / 6, 0.0, 0.0, 0.0] and repeated["bleu"] == 0.0
    short = bleu(["the cat sat on"], ["the cat sat on the mat"])
    assert short["brevity_penalty"] == pytest.approx(0.6065306597, rel=1e-9)  # exp(1 - 6/4)


def test_13a_tokenizer_splits_punctuation_but_not_numbers() -> None:
    assert tokenize_13a("Hello, world! It costs 3.50 &amp; more.") == (
        "Hello", ",", "world", "!", "It", "costs", "3.50", "&", "more", ".",
    )  # fmt: skip


def test_rouge_matches_evaluates_published_example() -> None:
    assert rouge(["hello there", "general kenobi"], ["hello there", "general kenobi"]) == {
        "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0,
    }  # fmt: skip


def test_rouge_averages_the_per_sample_f_measures() -> None:
    result = rouge(["hello goodbye", "ankh morpork"], ["goodbye", "general kenobi"])
    assert result["rouge1"] == pytest.approx((2 / 3 + 0.0) / 2)
    assert result["rouge2"] == 0.0


def test_scorer_works_offline_and_keeps_scores_in_range() -> None:
    scorer = Scorer()  # HF_HUB_OFFLINE=1 in these tests
    assert scorer.backend == "offline"
    scores = scorer.one("", "an expected answer")
    assert scores == {"bleu": 0.0, "rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    perfect = scorer.corpus(["a b c d e"], ["a b c d e"])
    assert perfect == {"bleu": 1.0, "rouge1": 1.0, "rouge2": 1.0, "rougeL": 1.0}


def test_scorer_falls_back_offline_when_evaluate_cannot_load() -> None:
    # Asking for evaluate under HF_HUB_OFFLINE: loading the Hub scripts fails, we score anyway.
    assert Scorer(prefer_evaluate=True).backend == "offline"
