"""`Index`: the public entry point. The CLI calls only this.

Example::

    from avsearch import Index, Query

    with Index.open("./avsearch-index", model="tiny", create=True) as index:  # close() frees the model
        report = index.add(["~/Videos"])             # incremental: re-runs only do new work
        for hit in index.search("a dog barking", k=5):  # a str is always text
            print(hit.path, hit.start_s, hit.end_s, hit.view.value, hit.score)
        hits = index.search(Query.media("query.wav", view="audio", start=2, end=6))  # a media query
        v = index.embed_text("a dog barking")        # cache it: searching by vector loads no model
        hits = index.search(Query.from_vector(v, path_prefix="~/Videos/2024"), k=5)

This module is the one bridge from the core to the indexer and retriever packages; they are
imported inside the methods, so the core modules (media, models, store) never depend on them.
"""

from __future__ import annotations

import os
import random
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np

from avsearch import preflight
from avsearch.errors import AvsearchError, IndexDamagedError, IndexNotFoundError, UsageError
from avsearch.locations import DEFAULT_INDEX, IndexLocation, IndexURI, local_dir, resolve_index_path
from avsearch.store import AnnConfig, IndexMeta, IndexSettings, Store
from avsearch.types import Hit, Query, View, check_choice


class Index:
    """A search index over local media: one directory holding vectors and metadata."""

    def __init__(self, path: IndexLocation, store: Optional[Store], *, model: Optional[str] = None,
                 device: Optional[str] = None, settings: Optional[IndexSettings] = None,
                 ann_config: Optional[AnnConfig] = None):
        # A local folder (Path), or an IndexURI ("s3://bucket/prefix": see avsearch.locations)
        self.path: IndexLocation = path if isinstance(path, IndexURI) else Path(path)
        self._store = store
        self._model_spec = model
        self._device = device
        self._settings = settings or IndexSettings()
        self._ann_config = ann_config
        self._embedder = None
        self._closed = False

    # -- opening ---------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Optional[str | Path] = None, *, model: Optional[str] = None,
             device: Optional[str] = None, create: bool = False,
             settings: Optional[IndexSettings] = None, ann_config: Optional[AnnConfig] = None) -> "Index":
        """Open the index at `path` (see `resolve_index_path`): a local folder, or an object-store
        URI ("s3://bucket/prefix", "gs://...", "az://..."; README: "An index on an object store").

        model: a model spec ("tiny", a hub id, a checkpoint dir). For an existing index it must
        be the model the index was built with (default: that one). For a new index it is the
        model to build with (default: WAVE-7B from the Hugging Face hub).
        create: allow a new index to be created at `path` on the first `add`.
        settings: clip length, frame rate, views — used when the index is created.
        """
        path = resolve_index_path(path)
        preflight.check_location(path)  # now, not after loading a model for a path that cannot be an index
        if Store.exists(path):
            preflight.check_model_spec(path, model)  # a mismatch the names prove: before any download
            store = Store.open(path, ann_config=ann_config)
            return cls(path, store, model=model, device=device, settings=store.meta.settings,
                       ann_config=ann_config)
        if not create:
            Store.open(path)  # raises IndexNotFoundError with the fix in its message
        return cls(path, None, model=model, device=device, settings=settings, ann_config=ann_config)

    def close(self) -> None:
        """Let go of the model (its memory is freed once nothing else holds it) and the store.
        The Index cannot be used afterwards; closing twice is harmless."""
        self._embedder = None
        self._store = None
        self._closed = True

    def __enter__(self) -> "Index":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        if self._closed:
            return f"<Index {self.path} (closed)>"
        if self._store is None:
            return f"<Index {self.path} (not created yet; model {self._model_spec or 'default'})>"
        meta = self._store.meta
        loaded = "loaded" if self._embedder is not None else "not loaded"
        return (f"<Index {self.path} model={meta.model_source} ({meta.model_id}, dim {meta.dim}, {loaded}) "
                f"clips={self._settings.clip_s:g}s views={','.join(self._settings.views)}>")

    @property
    def exists(self) -> bool:
        """Whether the index has been created on disk (False for a new one before its first `add`)."""
        return self._store is not None

    @property
    def store(self) -> Store:
        """The storage layer (LanceDB tables and the ANN index); raises if there is none yet."""
        self._check_open()
        if self._store is None:
            raise IndexNotFoundError(
                f"no avsearch index at {self.path} yet; add files first: `avsearch index FOLDER --index {self.path}`"
            )
        return self._store

    @property
    def settings(self) -> IndexSettings:
        """How clips are cut and decoded (fixed when the index is created)."""
        return self._settings

    def _check_open(self) -> None:
        if self._closed:
            raise UsageError(f"this Index ({self.path}) is closed; open it again with Index.open()")

    def embedder(self):
        """The model, loaded on first use (status, remove and failures never load it)."""
        self._check_open()
        if self._embedder is None:
            from avsearch.models import load_embedder

            spec = self._model_spec or (self._store.meta.model_source if self._store else None)
            embedder = load_embedder(spec, device=self._device)
            if self._store is not None:
                self._store.check_model(embedder.model_id)
            self._embedder = embedder
        return self._embedder

    def share_embedder(self, wrap) -> None:
        """Load the model now and use `wrap(model)` from here on: `avsearch serve` wraps it so
        that concurrent requests and indexing jobs share one model (and text queries batch)."""
        self._embedder = wrap(self.embedder())

    # -- indexing --------------------------------------------------------------------------

    def plan(self, paths: Iterable[str | Path], *, prune: bool = True, retry_failed: bool = False,
             follow_symlinks: bool = True, include: Optional[Sequence[str]] = None,
             exclude: Optional[Sequence[str]] = None, confine_to: Optional[Sequence[str | Path]] = None):
        """What `add` would do (new / changed / moved / duplicate / deleted / unchanged), changing
        nothing. Same arguments as `add`."""
        from avsearch.indexer import plan_run

        self._check_open()
        _, plan = plan_run(self._store, [str(p) for p in paths], prune=prune, retry_failed=retry_failed,
                           follow_symlinks=follow_symlinks, patterns=self._patterns(include, exclude, paths),
                           confine_to=confine_to)
        return plan

    def path_patterns(self) -> dict:
        """The include/exclude patterns stored with the index: {"include": [...], "exclude": [...],
        "include_roots": [...], "exclude_roots": [...]} (the folders they were given for: their
        relative paths start there)."""
        return self._patterns(None, None, ()).to_dict()

    def _patterns(self, include, exclude, paths):
        from avsearch.indexer.crawl import absolute
        from avsearch.indexer.patterns import PathPatterns, merged

        stored = PathPatterns.from_dict(self._store.path_patterns() if self._store is not None else None)
        return merged(stored, include, exclude, [absolute(p) for p in paths])

    def add(self, paths: Iterable[str | Path], *, prune: bool = True, retry_failed: bool = False,
            progress=None, decode_workers: Optional[int] = None, max_batch_tokens: Optional[int] = None,
            commit_every_files: int = 8, partial_commit_s: float = 600.0, isolate: str = "suspect",
            follow_symlinks: bool = True, include: Optional[Sequence[str]] = None,
            exclude: Optional[Sequence[str]] = None, engine: str = "local", ray_address: Optional[str] = None,
            ray_settings: Optional[dict] = None, confine_to: Optional[Sequence[str | Path]] = None):
        """Index new and changed media under `paths`; re-point moved files; with `prune`, drop
        files under `paths` that are gone. Broken files are recorded as failed, never fatal. Files
        longer than `partial_commit_s` of media are committed in parts: an interrupted run keeps
        them, and the next resumes after them. `isolate`: which files are read in a child process
        where an FFmpeg crash or hang fails the file, not the run ("suspect": probe all, decode the
        unusual ones there; "all"; "none"). `progress(p)`: called with an
        avsearch.indexer.Progress from the first moment, `p.phase` saying what the run does now
        (scanning, fingerprinting, probing, loading model, embedding, committing, building ANN
        index).

        A content found under several paths (copies, hard links, symlinks) is embedded once; the
        other paths are recorded as its duplicates and listed on its hits (`Hit.duplicate_paths`).
        follow_symlinks: walk symlinked folders (each real folder once) and take symlinked files;
        False skips symlinks. include/exclude: glob patterns on the path relative to the indexed
        folder or on the file name (`["*.mp4"]`, `["drafts/*", "*.part"]`); they are stored with
        the index and later runs given None reuse them; `[]` (or `[""]`) clears that kind.
        confine_to: folders a followed symlink must lead into (None: anywhere); the others are
        not read and are listed in the report's `skipped` (`avsearch serve` passes its roots).
        A new index is made only once there is something to record in it (the model loads then).

        `engine="ray"` decodes and embeds on Ray (the extra `avsearch[ray]`): without
        `ray_address` a local Ray instance on every CPU and GPU of this machine, with one ("auto",
        "ray://host:10001") that cluster; `ray_settings`: fields of
        avsearch.indexer.distributed.RayOptions (chunk_s, embed_actors, ...). Returns an IndexReport."""
        from avsearch.indexer import PipelineOptions, run_index
        from avsearch.indexer.report import PhaseReporter
        from avsearch.indexer.run import load_model, prepare_new_index

        check_choice("engine", engine, ("local", "ray"))
        if engine == "ray":
            from avsearch.indexer.distributed.engine import import_ray

            import_ray()  # before anything is written: without Ray the error names the install command

        paths = [str(p) for p in paths]
        preflight.check_paths_exist(paths)  # before the model loads or the index directory is made
        # progress hears every phase of the run (avsearch.indexer.report.PHASES), from the first moment.
        reporter = PhaseReporter(progress)

        def get_embedder():
            return self._embedder if self._embedder is not None else load_model(self.embedder, reporter)

        def pipeline_options():
            s = self._settings
            return PipelineOptions(
                clip_s=s.clip_s, min_last_s=s.min_last_s, views=tuple(s.views),
                decode=self._decode_options(), decode_workers=decode_workers, max_batch_tokens=max_batch_tokens,
                commit_every_files=commit_every_files, partial_commit_s=partial_commit_s, isolate=isolate,
            )

        options = pipeline_options()
        patterns = self._patterns(include, exclude, paths)
        probed = None
        if self._store is None:
            # A new index: scan and probe first (every check that needs no model), then load the
            # model, whose id and dimension create the index, only if there is anything to record.
            probed = prepare_new_index(paths, options, reporter=reporter, follow_symlinks=follow_symlinks,
                                       patterns=patterns, confine_to=confine_to)
            if probed.nothing_to_record:
                return probed.report  # no index is made: it would hold nothing, not even its model
            asked = self._settings
            self._create_store(engine, reporter, get_embedder)
            patterns = self._patterns(include, exclude, paths)  # with any another run stored meanwhile
            if self._settings != asked:  # another run created it meanwhile, its own way: plan again
                options, probed = pipeline_options(), None
        ray = self._ray_options(ray_address, ray_settings or {}) if engine == "ray" else None
        return run_index(self._store, paths, get_embedder, options, prune=prune,
                         retry_failed=retry_failed, reporter=reporter, follow_symlinks=follow_symlinks,
                         patterns=patterns, ray=ray, confine_to=confine_to, probed=probed)

    def _create_store(self, engine: str, reporter, get_embedder) -> None:
        """Make this new index on disk, recording its model's id and dimension (the model loads).
        On Ray the embed actors hold the model: the driver loads it on the CPU only for these and
        lets it go, leaving the GPUs (and their memory) to the actors."""
        from avsearch.indexer.run import load_model

        embedder = (get_embedder() if engine != "ray" or self._embedder is not None
                    else load_model(self._model_on_cpu, reporter))
        local_dir(self.path).mkdir(parents=True, exist_ok=True)
        meta = IndexMeta(embedder.model_id, embedder.source, embedder.dim, self._settings)
        self._store = Store.create(self.path, meta, ann_config=self._ann_config)
        # Another run may have created the index since open(): then it is that one's.
        self._store.check_model(embedder.model_id)
        self._settings = self._store.meta.settings
        del embedder  # on Ray, the only reference to the driver's copy of the model

    def _model_on_cpu(self):
        """This index's model loaded on the CPU and not kept: what a new index on Ray records."""
        from avsearch.models import load_embedder

        return load_embedder(self._model_spec, device="cpu")

    def _ray_options(self, address: Optional[str], settings: dict):
        """How Ray's embed actors load this index's model: by its spec, each on its own GPU."""
        import functools

        from avsearch.indexer.distributed import RayOptions
        from avsearch.models import load_embedder

        spec = self._model_spec or self._store.meta.model_source
        return RayOptions(load_embedder=functools.partial(load_embedder, spec, device=self._device),
                          model_id=self._store.meta.model_id, address=address, **settings)

    def remove(self, paths: Iterable[str | Path]) -> int:
        """Forget files (or every file under a folder). Returns how many files were removed. A
        removed file's copy (a duplicate path of its content) that stays takes its clips over."""
        targets = [_folder(p) for p in paths]
        from avsearch.indexer.duplicates import hand_over

        with self.store.write_lock():
            # read under the lock: the rows a copy takes the clips over from must be current
            rows = self.store.file_rows()
            doomed = [r["path"] for r in rows if any(_is_under(r["path"], t) for t in targets)]
            handed = hand_over(self.store, rows, set(doomed))  # copies that stay keep the clips
            n = len(handed) + self.store.remove_paths([p for p in doomed if p not in handed])
            # purge: their rows leave the data files too, and the version cleanup that follows
            # drops the old versions that still hold them (unless a query is reading one now).
            self.store.finish_writes(purge=True)
        return n

    def relocate(self, old_prefix: str | Path, new_prefix: str | Path, *, verify: int = 8) -> dict:
        """Re-point every indexed file under the folder `old_prefix` to the same place under
        `new_prefix`, after the archive moved (another mount point, a renamed folder). Nothing is
        re-embedded: clip ids, vectors and the ANN index stay as they are.

        First the content fingerprints of `verify` files, picked at random, are checked at their
        new place; a missing or different file refuses the whole relocation (RelocateError names
        it) and changes nothing. An interrupted relocation is completed by running it again.
        Returns {"files": moved, "verified": [new paths checked]}."""
        from avsearch.errors import RelocateError
        from avsearch.media import fingerprint

        old, new = _folder(old_prefix), _folder(new_prefix)
        if old == os.sep or _is_under(new, old) or _is_under(old, new):
            raise RelocateError(f"cannot relocate {old} to {new}: the folders must differ and neither may "
                                "contain the other (nor be /); move the files to a separate folder")
        with self.store.write_lock():
            rows = self.store.file_rows()
            moving = [r for r in rows if r["path"].startswith(old + os.sep)]
            if not moving:
                raise RelocateError(f"no indexed file is under {old}; check OLD_PREFIX against the paths "
                                    "in `avsearch query --json` or `avsearch failures`")
            # Rows a killed relocation already copied (same content at the mapped path) are its
            # own: a second run completes it. Anything else under NEW would be overwritten.
            copied = {(new + r["path"][len(old):], r["fingerprint"]) for r in moving}
            taken = [r["path"] for r in rows if _is_under(r["path"], new) and (r["path"], r["fingerprint"]) not in copied]
            if taken:
                raise RelocateError(f"the index already has {len(taken)} file(s) under {new} (e.g. {taken[0]}); "
                                    f"`avsearch remove {new}` first, or relocate into another folder")
            checkable = [r for r in moving if r["status"] != "failed" and r["fingerprint"]]
            sample = random.sample(checkable, min(max(verify, 1), len(checkable)))
            verified = []
            for row in sample:
                target = new + row["path"][len(old):]
                if not os.path.isfile(target):
                    raise RelocateError(f"{target} (was {row['path']}) does not exist; nothing was relocated. "
                                        "Check NEW_PREFIX, or finish copying the files first")
                if fingerprint(target) != row["fingerprint"]:
                    raise RelocateError(f"{target} is not the file indexed as {row['path']} (its content "
                                        "fingerprint differs); nothing was relocated. Check NEW_PREFIX, or index "
                                        "the new place with `avsearch index` instead")
                verified.append(target)
            moved = self.store.relocate(old, new)
            self.store.finish_writes()
        return {"files": moved, "verified": verified}

    def reindex(self) -> dict:
        """Rebuild the derived ANN index from the stored vectors."""
        with self.store.write_lock():
            self.store.reindex()
        return self.store.ann_state()

    # -- querying --------------------------------------------------------------------------

    def embed_text(self, text: str) -> np.ndarray:
        """The query vector of `text` (unit length, the index's dimension), to cache and search
        by later with `Query.from_vector` (or a numpy array as the query)."""
        from avsearch.errors import QueryError

        if not text.strip():
            raise QueryError("the text query is empty; give some words")
        return self.embedder().embed_texts([text])[0]

    def embed_media_queries(self, queries: Sequence[Query], batch: int = 16) -> list:
        """The vectors `search` uses for media queries (files or ranges of them, read as their
        views), embedded `batch` clips at a time: one model call per view and batch instead of
        one per query (`avsearch eval` asks thousands). Returns, in order, each query's vector or
        the QueryError that says why its file cannot be read: one bad file spoils no other."""
        from avsearch.errors import QueryError
        from avsearch.retriever.encode import media_query_clip

        out: list = [None] * len(queries)
        for start in range(0, len(queries), batch):  # a batch of decoded clips at a time: bounded memory
            by_view: dict = {}
            for i in range(start, min(start + batch, len(queries))):
                try:
                    clip, view = media_query_clip(queries[i], self._decode_options())
                except QueryError as err:
                    out[i] = err
                    continue
                by_view.setdefault(view, []).append((i, clip))
            for view, items in by_view.items():
                vectors = self.embedder().embed_clips([clip for _, clip in items], view)
                for (i, _), vector in zip(items, vectors):
                    out[i] = vector
        return out

    def search(self, query: str | Path | Query | np.ndarray, k: int = 10, *, view: Optional[str | View] = None,
               target_views: Optional[Sequence[str | View]] = None, instruction: Optional[str] = None,
               merge_adjacent: bool = True, per_file: Optional[int] = None,
               min_score: Optional[float] = None, rerank_top: int = 20, **filters) -> list[Hit]:
        """Search the index. `query` is text (str), a media file (Path, read as `view`, default
        its richest view), a vector of the index's model (numpy array: no model is loaded) or a
        Query. A str is always text: for a media file given as a string use
        `Query.media(path, view=..., start=..., end=...)`. k: how many hits (at least 1).
        Filters: path_prefix, path_glob, min_duration_s, max_duration_s, indexed_after,
        start_s/end_s (range of the query media)."""
        return self.search_detailed(query, k, view=view, target_views=target_views, instruction=instruction,
                                    merge_adjacent=merge_adjacent, per_file=per_file, min_score=min_score,
                                    rerank_top=rerank_top, **filters).hits

    def search_detailed(self, query, k: int = 10, *, view=None, target_views=None, instruction=None,
                        merge_adjacent: bool = True, per_file=None, min_score=None, rerank_top: int = 20,
                        **filters):
        """`search`, returning the retriever's SearchResult: `hits`, plus `candidates` (how many
        the ANN search found before filters and `min_score`) and `rerank` (what an `instruction`
        re-embedded and took from the cache, or None). Same arguments as `search`."""
        from avsearch.retriever import SearchOptions, search

        preflight.check_at_least_one("k", k)
        preflight.check_at_least_one("per_file", per_file)
        q = self._as_query(query, view=view, target_views=target_views, instruction=instruction, **filters)
        options = SearchOptions(k=k, merge_adjacent=merge_adjacent, per_file=per_file,
                                min_score=min_score, rerank_top=rerank_top)
        with self.store.reading():  # the version current now, which a writer's cleanup keeps
            return search(q, self.store, self.embedder, options, self._decode_options())

    @staticmethod
    def _as_query(query, **fields) -> Query:
        fields = {k: v for k, v in fields.items() if v is not None}
        if isinstance(query, Query):
            return replace(query, **fields) if fields else query
        if isinstance(query, Path):
            return Query(media=query, **fields)
        if isinstance(query, str):
            return Query(text=query, **fields)
        if isinstance(query, np.ndarray):
            return Query(vector=query, **fields)
        raise TypeError(
            f"a query is a str (text), a Path (media file), a numpy vector or a Query, not {type(query).__name__}")

    # -- facts -----------------------------------------------------------------------------

    def stats(self) -> dict:
        """What the index holds. On a damaged index: what can still be read, `damaged: True` and
        the `problems` found (never an exception: this is what a person looks at first)."""
        try:
            with self.store.reading():
                return self.store.stats()
        except IndexDamagedError as err:
            store = self.store
            local = not isinstance(store.location, IndexURI)  # doctor reads local folders only
            problems = (local and [f.__dict__ for f in self.doctor().findings]) or [
                {"part": "index", "problem": str(err),
                 "repair": "see `avsearch doctor`" if local else "check a local copy with `avsearch doctor`"}]
            return {"index": str(store.location), "model_id": store.meta.model_id,
                    "model_source": store.meta.model_source, "dim": store.meta.dim, "damaged": True,
                    "problems": problems,
                    "settings": store.meta.settings.__dict__ | {"views": list(store.meta.settings.views)}}

    def doctor(self, repair: bool = False):
        """Check the index (tables, versions, orphan clips, ANN coverage, metadata); with
        `repair`, fix what can be fixed (see avsearch.store.doctor). Returns a DoctorReport."""
        from avsearch.store import doctor

        if not repair:
            return doctor.check(self.store)
        with self.store.write_lock():
            found = doctor.check(self.store)
            report = doctor.repair(self.store)
            report.findings, report.remaining = found.findings, doctor.check(self.store).findings
        return report

    def failures(self) -> list[dict]:
        """Files that failed, and files indexed only in part (status "partly indexed": stretches
        the decoder could not read, named in `error`; their other clips are searchable)."""
        with self.store.reading():
            rows = self.store.file_rows("status = 'failed' OR (status = 'ok' AND error IS NOT NULL)")
        return [{"path": r["path"], "status": "failed" if r["status"] == "failed" else "partly indexed",
                 "error": r["error"], "indexed_at": r["indexed_at"]} for r in rows]

    def _decode_options(self):
        from avsearch.media import DecodeOptions

        return DecodeOptions(fps=self._settings.fps, max_pixels=self._settings.max_pixels,
                             skip_frames=self._settings.frames, resize=self._settings.resize,
                             by_codec=self._settings.by_codec)


def _folder(path: str | Path) -> str:
    return os.path.abspath(os.path.expanduser(str(path)))  # no trailing separator (but "/")


def _is_under(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


__all__ = ["Index", "resolve_index_path", "DEFAULT_INDEX", "AvsearchError"]
