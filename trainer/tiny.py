"""A tiny Llama-style model and tokenizer, built offline, for tests and demos.

    python -m trainer.tiny /tmp/tiny-llama

writes a `save_pretrained` directory that `python -m trainer` (and `from_pretrained`) can load
as `model.name`. The byte-level BPE tokenizer is trained on the given texts (plus a built-in
toy corpus) and has pad/bos/eos tokens and a simple chat template.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"

# "role: content" lines, the assistant turn closed by EOS so a tuned model learns to stop.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ message['role'] }}: {{ message['content'] }}"
    "{% if message['role'] == 'assistant' %}{{ eos_token }}{% endif %}{{ '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)

TOY_CORPUS = [
    "the cat sat on the mat",
    "the dog ran in the park",
    "one two three four five six seven eight nine ten",
    "a b c d e f g h i j k l m n o p q r s t u v w x y z",
    "user: what is the capital of france? assistant: paris",
    "hello there general kenobi",
    "Question: what comes after red? Answer: green",
]


def train_tokenizer(texts: Iterable[str], vocab_size: int = 512) -> PreTrainedTokenizerFast:
    core = Tokenizer(models.BPE(unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    bpe = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, BOS, EOS, UNK],
        # Every byte in the vocabulary: any text at all tokenizes, none becomes <unk>.
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(list(texts), trainer=bpe)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core, pad_token=PAD, bos_token=BOS, eos_token=EOS, unk_token=UNK
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def tiny_llama(tokenizer: PreTrainedTokenizerFast, seed: int = 0) -> LlamaForCausalLM:
    import torch

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
        # With the usual 0.02 the final RMSNorm + lm_head cap logits near zero, and LoRA on the
        # attention alone cannot make the tiny model confident: loss would barely move.
        initializer_range=0.2,
    )
    return LlamaForCausalLM(config)


def build_tiny_model(out_dir: Path, texts: Iterable[str] | None = None) -> Path:
    """Write a tiny Llama model + tokenizer to `out_dir` and return it (usable as model.name)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = train_tokenizer([*TOY_CORPUS, *(texts or [])])
    model = tiny_llama(tokenizer)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description="Build a tiny Llama-style model offline.")
    parser.add_argument("out_dir", type=Path, help="directory to write the model to")
    parser.add_argument("--texts", type=Path, help="optional text file to train the tokenizer on")
    args = parser.parse_args()
    texts = args.texts.read_text().splitlines() if args.texts else None
    print(build_tiny_model(args.out_dir, texts))


if __name__ == "__main__":
    main()
