"""A small Qwen-style byte-level BPE tokenizer, trained locally on a built-in corpus.

Same pipeline as Qwen2's tokenizer (NFC, Qwen's pre-tokenizer regex, byte-level, no BOS/EOS)
and the Qwen2.5-Omni special tokens, in Qwen's order after the learned vocabulary: the ids differ
from the real 151643+ ids, which keeps the code honest about reading them from the files.
"""

from __future__ import annotations

import json
from pathlib import Path

QWEN_PRETOKENIZE_REGEX = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"""
                          r""" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+""")

SPECIAL_TOKENS = [
    "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>",
    "<|box_end|>", "<|quad_start|>", "<|quad_end|>", "<|vision_bos|>", "<|vision_eos|>", "<|vision_pad|>",
    "<|IMAGE|>", "<|VIDEO|>",
]

# The attribute names Qwen2.5-Omni's processor reads off its tokenizer, and their tokens.
NAMED_TOKENS = {
    "audio_token": "<|AUDIO|>", "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
}

# A ChatML template in Qwen2.5-Omni's form (spec §3): a system turn unless the conversation has
# one, then each turn as <|im_start|>ROLE\n ... <|im_end|>\n, media items as their placeholder
# between begin/end tokens. The reference applies it and keeps what follows the last
# "<|im_start|>user\n"; avsearch builds the same rows itself and never reads it.
CHAT_TEMPLATE = (
    "{% if not messages or messages[0]['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'audio' %}<|audio_bos|><|AUDIO|><|audio_eos|>"
    "{% elif item['type'] == 'image' %}<|vision_bos|><|IMAGE|><|vision_eos|>"
    "{% elif item['type'] == 'video' %}<|vision_bos|><|VIDEO|><|vision_eos|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}"
    "{% endif %}{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

CORPUS = [
    "Please describe the audio.", "Please describe the video.",
    "Select the best answer to the following multiple choice question based on the video.",
    "Please respond with only the letter of the correct answer.",
    "A dog barks in the street while cars pass by.", "A woman is speaking to a crowd in a large hall.",
    "Birds sing in a garden at sunrise, and a fountain splashes.", "Someone plays the piano slowly.",
    "A man rides a bicycle along the beach; waves crash on the sand.", "Rain falls on a tin roof at night.",
    "Children laugh and shout on a playground.", "An engine starts, then a car drives away quickly.",
    "What is the person holding? Where does this happen? Which sound is the loudest?",
    "Is a woman speaking? Is there music? How many people are there?",
    "the of and a to in is it that with on for as was are be this at by from or an",
    "red green blue black white yellow orange music speech noise silence water fire wind",
    "0 1 2 3 4 5 6 7 8 9 10 100 2024 12:30 3.5 kHz",
]


def build_tokenizer(directory: Path, vocab_size: int = 512) -> tuple[int, dict[str, int]]:
    """Write tokenizer.json + tokenizer_config.json into `directory`.

    Returns the vocabulary size and the id of every special token.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE(unk_token=None, continuing_subword_prefix="", end_of_word_suffix="",
                                     fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size - len(SPECIAL_TOKENS), min_frequency=1,
                                  show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(CORPUS * 2, trainer)
    tokenizer.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    tokenizer.save(str(directory / "tokenizer.json"))
    config = {
        "tokenizer_class": "Qwen2Tokenizer",
        "model_max_length": 32768,
        "bos_token": None,
        "eos_token": "<|im_end|>",
        "pad_token": "<|endoftext|>",
        "unk_token": None,
        "add_bos_token": False,
        "add_prefix_space": False,
        "errors": "replace",
        "split_special_tokens": False,
        "clean_up_tokenization_spaces": False,
        # Qwen2.5-Omni names its media tokens here; its processor reads them as tokenizer
        # attributes (tokenizer.audio_token, ...), so the reference cannot load a checkpoint
        # without them.
        "extra_special_tokens": dict(NAMED_TOKENS),
        "chat_template": CHAT_TEMPLATE,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return tokenizer.get_vocab_size(), {t: tokenizer.token_to_id(t) for t in SPECIAL_TOKENS}
