"""Token sequences per input kind (spec §3), built as pieces and rendered with the tokenizer only.

A row is a tuple of pieces: plain text, one special token, or a media block that expands to
its placeholders. No chat template, no system prompt, no generation prompt:

    text   TEXT<|im_end|>
    audio  <|audio_bos|> 2N x <|AUDIO|> <|audio_eos|>Please describe the audio.<|im_end|>
    video  <|vision_bos|> V x <|VIDEO|> <|vision_eos|>Please describe the video.<|im_end|>
    av     <|vision_bos|><|audio_bos|> [V_j x <|VIDEO|>, 2A_j x <|AUDIO|>]... <|audio_eos|><|vision_eos|>
           Please describe the video.<|im_end|>

With an instruction (prompt-aware embedding), the instruction replaces "Please describe ..." by
default, as the question text does in WAVE's multiple-choice data (ret_mc.json); the option
"append" puts it on a new line after that sentence instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Union

from avsearch.models.wave.config import TokenIds
from avsearch.models.wave.layout import AudioPlan, VideoGrid, av_chunks

DESCRIBE = {"audio": "Please describe the audio.", "video": "Please describe the video.",
            "av": "Please describe the video."}

SPECIAL_TOKENS = {
    "audio": "<|AUDIO|>", "image": "<|IMAGE|>", "video": "<|VIDEO|>",
    "audio_bos": "<|audio_bos|>", "audio_eos": "<|audio_eos|>",
    "vision_bos": "<|vision_bos|>", "vision_eos": "<|vision_eos|>",
    "im_end": "<|im_end|>", "pad": "<|endoftext|>",
}


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Special:
    name: str  # a TokenIds field


@dataclass(frozen=True)
class AudioBlock:
    tokens: int  # <|AUDIO|> count: 2N with interleaving


@dataclass(frozen=True)
class VideoBlock:
    grid: VideoGrid


@dataclass(frozen=True)
class AVBlock:
    grid: VideoGrid
    chunks: tuple[tuple[int, int], ...]  # (video tokens, audio tokens) per chunk, audio already doubled

    @property
    def audio_tokens(self) -> int:
        return sum(a for _, a in self.chunks)


Piece = Union[Text, Special, AudioBlock, VideoBlock, AVBlock]


def text_row(text: str) -> tuple[Piece, ...]:
    """A query or caption: the text alone, then <|im_end|> (D:464-469)."""
    return (Text(text), Special("im_end"))


def prompt_text(view: str, instruction: Optional[str], placement: str = "replace",
                describe: Optional[str] = None) -> str:
    describe = describe if describe is not None else DESCRIBE[view]
    if instruction is None or not instruction.strip():
        return describe
    if placement == "append":
        return f"{describe}\n{instruction.strip()}"
    return instruction.strip()


def media_row(view: str, *, grid: Optional[VideoGrid] = None, audio: Optional[AudioPlan] = None,
              tokens_per_whisper_token: int = 2, instruction: Optional[str] = None,
              placement: str = "replace", position_id_per_seconds: int = 25,
              describe: Optional[str] = None) -> tuple[Piece, ...]:
    """The media block of `view` followed by the prompt text and <|im_end|>."""
    if view == "audio":
        block: Piece = AudioBlock(tokens_per_whisper_token * audio.whisper_tokens)
    elif view == "video":
        block = VideoBlock(grid)
    elif view == "av":
        chunks = av_chunks(grid, audio.whisper_tokens, position_id_per_seconds=position_id_per_seconds)
        block = AVBlock(grid, tuple((v, tokens_per_whisper_token * a) for v, a in chunks))
    else:
        raise ValueError(f"unknown view {view!r}; choose audio, video or av")
    return (block, Text(prompt_text(view, instruction, placement, describe)), Special("im_end"))


def piece_ids(piece: Piece, ids: TokenIds, tokenize) -> list[int]:
    """Token ids of one piece; `tokenize(text) -> list[int]` adds no special tokens."""
    if isinstance(piece, Text):
        return list(tokenize(piece.text))
    if isinstance(piece, Special):
        return [getattr(ids, piece.name)]
    if isinstance(piece, AudioBlock):
        return [ids.audio_bos, *[ids.audio] * piece.tokens, ids.audio_eos]
    if isinstance(piece, VideoBlock):
        return [ids.vision_bos, *[ids.video] * piece.grid.tokens, ids.vision_eos]
    if isinstance(piece, AVBlock):
        out = [ids.vision_bos, ids.audio_bos]
        for v, a in piece.chunks:
            out += [ids.video] * v + [ids.audio] * a
        return out + [ids.audio_eos, ids.vision_eos]
    raise TypeError(f"not a prompt piece: {piece!r}")


# A TokenIds whose "ids" are the token names, so piece_ids can expand pieces into names.
_BY_NAME = TokenIds(**{name: name for name in TokenIds.__dataclass_fields__})


def render_string(row: tuple[Piece, ...]) -> str:
    """The row as the token string of spec §3 (for logs, docs and tests)."""
    out = []
    for piece in row:
        if isinstance(piece, Text):
            out.append(piece.text)
        else:
            out.extend(SPECIAL_TOKENS[name] for name in piece_ids(piece, _BY_NAME, lambda _text: []))
    return "".join(out)
