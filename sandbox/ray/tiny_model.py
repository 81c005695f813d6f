"""A tiny Llama-architecture model and its tokenizer, built in code (no downloads): the student that trainer=ray
fine-tunes on the local Ray head in tests and the demo.

The tokenizer is a byte-level BPE learnt from the texts given (any text still encodes, byte by byte), with a
ChatML chat template; the model is a randomly initialised LlamaForCausalLM of about 100k parameters. Its
initializer_range is 0.1, not Llama's 0.02: with 0.02 the logits of so small a model stay near uniform and LoRA,
which cannot touch the frozen head, barely moves the loss (spike of 2026-11-29, /work/notes/ray-trl.md §2). It knows
nothing: what it answers after training, it learnt from the training file.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

SPECIAL_TOKENS = ["<|pad|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHAT_TEMPLATE = (
    "{%- for m in messages %}"
    "{{- '<|im_start|>' + m['role'] + '\\n' + m['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)
INITIALIZER_RANGE = 0.1


def build_tiny_model(texts: Iterable[str], folder: Path, *, vocab_size: int = 512, seed: int = 0,
                     max_tokens: int = 1024) -> Path:
    """Write the tokenizer and the random model to `folder` (made if missing); returns it, resolved."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.train_from_iterator(list(texts), trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    wrapped = PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token=None, eos_token="<|im_end|>",
                                      pad_token="<|pad|>", unk_token=None, model_max_length=max_tokens)
    wrapped.chat_template = CHAT_TEMPLATE
    folder = Path(folder).resolve()
    wrapped.save_pretrained(folder)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(wrapped), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=max_tokens,
                         pad_token_id=wrapped.pad_token_id, eos_token_id=wrapped.eos_token_id, bos_token_id=None,
                         tie_word_embeddings=True, initializer_range=INITIALIZER_RANGE)
    model = LlamaForCausalLM(config)
    model.generation_config.pad_token_id = wrapped.pad_token_id
    model.generation_config.eos_token_id = wrapped.eos_token_id
    model.save_pretrained(folder)
    return folder
