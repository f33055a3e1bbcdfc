"""Turn a Query into a vector in the index's space."""

from __future__ import annotations

from contextlib import closing
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from avsearch.errors import MediaError, QueryError
from avsearch.media import DecodeOptions, read_clip
from avsearch.media.sandbox import looks_ordinary, shared_sandbox
from avsearch.models.base import Embedder
from avsearch.store import Store
from avsearch.types import Clip, MediaFile, Query, View

MAX_QUERY_MEDIA_S = 600.0  # longer query media must name a range: embedding hours as one query is useless


def query_vector(query: Query, store: Store, get_embedder: Callable[[], Embedder],
                 decode: DecodeOptions) -> tuple[np.ndarray, Optional[str]]:
    """(vector (dim,), clip id to leave out of the results or None)."""
    if query.text is not None:
        if not query.text.strip():
            raise QueryError("the text query is empty; give some words, or --audio/--video/--av FILE")
        return get_embedder().embed_texts([query.text])[0], None
    if query.vector is not None:
        return _given_vector(query.vector, store.meta.dim), None
    if query.clip_id is not None:
        row = store.clip_by_id(query.clip_id)
        if row is None:
            raise QueryError(f"no clip with id {query.clip_id} in the index (ids come from `avsearch query --json`)")
        return store.vectors([row["row_id"]])[0], query.clip_id
    return _media_vector(query, get_embedder, decode), None


def _given_vector(vector: np.ndarray, dim: int) -> np.ndarray:
    if vector.shape != (dim,):
        raise QueryError(
            f"the query vector has shape {vector.shape}; this index holds {dim}-d vectors of its own model: "
            "embed the query with that model (Index.embedder()) or search by text/media instead"
        )
    return vector / np.linalg.norm(vector)


def _media_vector(query: Query, get_embedder: Callable[[], Embedder], decode: DecodeOptions) -> np.ndarray:
    clip, view = media_query_clip(query, decode)
    return get_embedder().embed_clips([clip], view)[0]


def media_query_clip(query: Query, decode: DecodeOptions) -> tuple[Clip, View]:
    """The decoded clip of a media query and the view to embed it as (QueryError when it cannot
    be read): callers with many media queries embed the clips in batches."""
    # Absolute: the shared sandbox child keeps the working directory it started in, which may not
    # be the caller's now (an application that chdir'd after the first query).
    path = Path(query.media).expanduser().absolute()
    try:
        media = shared_sandbox().probe(path)  # a file that crashes FFmpeg takes the child down, not us
    except Exception as err:  # whatever reading the file raises, the caller gets a QueryError
        raise QueryError(f"cannot read the query file: {_media_reason(path, err)}") from None
    view = query.view or (media.views()[0] if media.views() else None)
    if view is None or view not in media.views():
        have = ", ".join(v.value for v in media.views()) or "none"
        raise QueryError(f"{path} cannot be read as view {view.value if view else '?'} (it has: {have})")
    start = query.start_s or 0.0
    end = query.end_s if query.end_s is not None else media.duration_s
    if not (0 <= start < end):
        raise QueryError(f"the query range {start}–{end} s is empty; --start must be below --end")
    if end - start > MAX_QUERY_MEDIA_S:
        raise QueryError(
            f"the query media is {end - start:.0f} s long; pick at most {MAX_QUERY_MEDIA_S:.0f} s with --start/--end"
        )
    try:
        clip = _read(path, media, start, end, decode, video=view in (View.AV, View.VIDEO), audio=view in (View.AV, View.AUDIO))
    except Exception as err:
        raise QueryError(f"cannot decode the query file: {_media_reason(path, err)}") from None
    return clip, view


def _read(path: Path, media: MediaFile, start: float, end: float, decode: DecodeOptions, *, video: bool, audio: bool):
    """The query clip: decoded here if the file looks ordinary, else in the sandbox child."""
    if looks_ordinary(media):
        return read_clip(path, start, min(end, media.duration_s), decode, video=video, audio=audio)
    with closing(shared_sandbox().clips(path, [(start, min(end, media.duration_s))], decode,
                                        video=video, audio=audio, media=media)) as clips:
        for clip in clips:
            return clip
    raise MediaError(f"{path}: nothing could be decoded in {start:.2f}–{end:.2f} s")


def _media_reason(path: Path, err: Exception) -> str:
    if isinstance(err, MediaError):
        return str(err)  # names the file and what to do already
    return f"{path}: {type(err).__name__}: {err}"
