"""The ASGI app: JSON API, web page and clip media over one warm `avsearch.Index`.

FastAPI (on Starlette) because typed request/response models give validation and the OpenAPI
page at /docs for free, and Starlette's FileResponse answers HTTP Range requests (browser
seeking). Search routes are plain `def`: FastAPI runs them in its thread pool, so the event loop
never waits on the model or FAISS, and concurrent text queries meet in SharedEmbedder's batches.
"""

from __future__ import annotations

import mimetypes
import os
import tempfile
import time
from functools import lru_cache
from pathlib import Path

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from pydantic import ValidationError

from avsearch.errors import AvsearchError, IndexLockedError, IndexNotFoundError, QueryError
from avsearch.types import Query
from avsearch.server.batching import SharedEmbedder
from avsearch.server.config import ServeConfig
from avsearch.server.guards import LoopbackHostGuard, TokenGuard, UploadLimit
from avsearch.server.jobs import JobRunner, resolve_folder
from avsearch.server.schemas import (ClipModel, ErrorModel, FailureModel, HitModel, IndexJobRequest, JobModel,
                                     MediaSearchRequest, SearchOptions, SearchRequest, SearchResponse, StatusModel)

STATIC = Path(__file__).parent / "static"
ERRORS = {400: {"model": ErrorModel}, 404: {"model": ErrorModel}, 413: {"model": ErrorModel}}
HTTP_STATUS = [(IndexNotFoundError, 404), (IndexLockedError, 409), (QueryError, 400)]


def create_app(index, config: ServeConfig) -> FastAPI:
    """The service app over an open Index. Loads the model now (not on the first query) and
    shares it, wrapped in SharedEmbedder, with every request and indexing job."""
    index.share_embedder(lambda model: SharedEmbedder(model, max_wait_s=config.batch_wait_s))
    jobs = JobRunner(index, confine_to=config.roots)
    app = FastAPI(title="avsearch", version="1", summary="Any-to-any search over local video and audio",
                  responses=ERRORS)
    _install_errors(app)

    @app.post("/api/search", response_model=SearchResponse, tags=["search"])
    def search(request: SearchRequest) -> SearchResponse:
        """Search by text, or by an indexed clip (`clip_id`: more like this)."""
        query = Query(text=request.text, clip_id=request.clip_id, **_query_fields(request))
        return _search(index, query, request)

    @app.post("/api/search/media", response_model=SearchResponse, tags=["search"])
    def search_media(file: UploadFile = File(..., description="The query media: audio, or video"),
                     request: str = Form("{}", description="The options: a MediaSearchRequest (see Schemas) as JSON")) -> SearchResponse:
        """Search by an uploaded sound or video, read as `view`, optionally only [start_s, end_s)."""
        try:
            options = MediaSearchRequest.model_validate_json(request)
        except ValidationError as err:
            raise RequestValidationError(err.errors()) from None
        suffix = "".join(c for c in Path(file.filename or "").suffix[:8] if c.isalnum() or c == ".")
        # The upload goes to a file of our own naming; nothing the request names is ever opened.
        with tempfile.NamedTemporaryFile(suffix=suffix, prefix="avsearch-query-") as tmp:
            while chunk := file.file.read(1 << 20):
                tmp.write(chunk)
            tmp.flush()
            query = Query(media=Path(tmp.name), view=options.view, start_s=options.start_s, end_s=options.end_s,
                          **_query_fields(options))
            return _search(index, query, options)

    @app.get("/api/status", response_model=StatusModel, tags=["index"])
    def status() -> StatusModel:
        """Files, clips, hours per view, model and ANN state; the roots and the latest job."""
        stats = index.stats()
        latest = jobs.latest.as_dict() if jobs.latest else None
        return StatusModel(**{k: stats[k] for k in StatusModel.model_fields if k in stats},
                           roots=[str(r) for r in config.roots], job=latest)

    @app.get("/api/failures", response_model=list[FailureModel], tags=["index"])
    def failures() -> list[FailureModel]:
        """Files that could not be indexed, and why."""
        return [FailureModel(**f) for f in index.failures()]

    @app.get("/api/clips/{clip_id}", response_model=ClipModel, tags=["clips"])
    def clip(clip_id: str) -> ClipModel:
        row = _clip_row(index, clip_id)
        return ClipModel(clip_id=clip_id, path=row["path"], file_name=os.path.basename(row["path"]),
                         start_s=row["start_s"], end_s=row["end_s"], view=row["view"])

    @app.get("/api/clips/{clip_id}/thumbnail", tags=["clips"], response_class=Response,
             responses={200: {"content": {"image/jpeg": {}}}})
    def thumbnail(clip_id: str) -> Response:
        """A JPEG of the clip: its middle frame, or a spectrogram of its sound for a file without
        video (404 when the file cannot be read any more)."""
        row = _clip_row(index, clip_id)
        return Response(_thumbnail(clip_id, row["path"], row["start_s"], row["end_s"]),
                        media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    @app.get("/api/clips/{clip_id}/media", tags=["clips"], response_class=FileResponse)
    def media(clip_id: str) -> FileResponse:
        """The clip's whole source file, for playback from the clip's start (Range requests
        supported, so a player can seek). Only files in the index are ever served."""
        row = _clip_row(index, clip_id)
        if not os.path.isfile(row["path"]):
            raise QueryError(f"{row['path']} is gone from disk; re-run `avsearch index` on its folder")
        kind = mimetypes.guess_type(row["path"])[0] or "application/octet-stream"
        return FileResponse(row["path"], media_type=kind, content_disposition_type="inline")

    @app.post("/api/jobs", response_model=JobModel, status_code=202, tags=["index"],
              responses={409: {"model": ErrorModel}})
    def start_job(request: IndexJobRequest) -> JobModel:
        """Index a folder under one of the service's roots, with the service's loaded model.
        Poll GET /api/jobs/{id} for progress; queries go on meanwhile."""
        folder = resolve_folder(config.roots, request.root, request.folder)
        return JobModel(**jobs.start(folder).as_dict())

    @app.get("/api/jobs/{job_id}", response_model=JobModel, tags=["index"])
    def job(job_id: str) -> JobModel:
        if job_id not in jobs.jobs:
            raise HTTPException(404, f"no job {job_id}; POST /api/jobs starts one")
        return JobModel(**jobs.jobs[job_id].as_dict())

    @app.get("/", include_in_schema=False)
    def page(request: Request):
        if "token" in request.query_params:  # the cookie is set (TokenGuard); drop the token from the address bar
            return RedirectResponse("/", status_code=303)
        return FileResponse(STATIC / "index.html", media_type="text/html")

    base_openapi = app.openapi

    def openapi() -> dict:  # the media search's options travel as a JSON form field: list their model too
        schema = base_openapi()
        schema["components"]["schemas"].setdefault("MediaSearchRequest", MediaSearchRequest.model_json_schema())
        return schema

    app.openapi = openapi
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.state.index, app.state.jobs, app.state.config = index, jobs, config
    app.add_middleware(UploadLimit, max_bytes=config.max_upload_bytes)
    if config.token:
        app.add_middleware(TokenGuard, token=config.token)  # added last: runs first
    else:
        app.add_middleware(LoopbackHostGuard)
    return app


def _query_fields(options: SearchOptions) -> dict:
    return dict(instruction=options.instruction, target_views=options.views, path_prefix=options.path_prefix,
                path_glob=options.path_glob, min_duration_s=options.min_duration_s,
                max_duration_s=options.max_duration_s, indexed_after=options.indexed_after)


def _search(index, query: Query, options: SearchOptions) -> SearchResponse:
    started = time.perf_counter()
    result = index.search_detailed(query, k=options.k, merge_adjacent=options.merge, per_file=options.per_file,
                                   min_score=options.min_score, rerank_top=options.rerank_top)
    hits = [HitModel(**h.to_dict(), file_name=os.path.basename(h.path)) for h in result.hits]
    rerank = result.rerank.__dict__ if result.rerank is not None else None
    return SearchResponse(hits=hits, candidates=result.candidates, rerank=rerank,
                          seconds=round(time.perf_counter() - started, 6))


def _clip_row(index, clip_id: str) -> dict:
    with index.store.reading():  # the current version: the service's last one may be cleaned up
        row = index.store.clip_by_id(clip_id)
    if row is None:
        raise HTTPException(404, f"no clip {clip_id} in the index (ids come from search results)")
    return row


@lru_cache(maxsize=1024)
def _thumbnail(clip_id: str, path: str, start_s: float, end_s: float) -> bytes:  # by clip id: a changed file gets new ids
    import io

    from PIL import Image

    from avsearch.errors import MediaError
    from avsearch.media import range_picture

    try:
        frame = range_picture(path, start_s, end_s, max_side=320)
    except MediaError as err:
        raise HTTPException(404, f"no picture for this clip: {err}") from None
    out = io.BytesIO()
    Image.fromarray(frame).save(out, format="JPEG", quality=80)
    return out.getvalue()


def _install_errors(app: FastAPI) -> None:
    """Every error is JSON {error, kind, exit_code}; never a traceback."""

    def answer(status: int, message: str, kind: str, exit_code: int = 1) -> JSONResponse:
        return JSONResponse({"error": message, "kind": kind, "exit_code": exit_code}, status_code=status)

    @app.exception_handler(AvsearchError)
    async def avsearch_error(_, err: AvsearchError):
        status = next((code for cls, code in HTTP_STATUS if isinstance(err, cls)), 400)
        return answer(status, str(err), type(err).__name__, err.exit_code)

    @app.exception_handler(StarletteHTTPException)  # FastAPI's own and Starlette's (404 routes, 405)
    async def http_error(_, err: StarletteHTTPException):
        from http import HTTPStatus

        return answer(err.status_code, str(err.detail), HTTPStatus(err.status_code).phrase.replace(" ", ""))

    @app.exception_handler(RequestValidationError)
    async def invalid(_, err: RequestValidationError):
        parts = [f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}" for e in err.errors()]
        return answer(422, "invalid request: " + "; ".join(parts), "ValidationError", QueryError.exit_code)

    @app.exception_handler(ValueError)  # the library's own checks (e.g. an unknown view) are plain ValueErrors
    async def value_error(_, err: ValueError):
        return answer(400, str(err), "ValueError", QueryError.exit_code)

    @app.exception_handler(Exception)
    async def unexpected(_, err: Exception):
        return answer(500, f"unexpected error: {type(err).__name__} (see the service's log)", "InternalError")
