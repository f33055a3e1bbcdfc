"""The API's request and response models: typed mirrors of the library's Query and Hit.

A request never names a file on disk: media arrives as an upload, clips are named by id, and a
folder to index is named relative to a root the service was started with.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

ViewName = Literal["av", "video", "audio"]


class SearchOptions(BaseModel):
    """What every search takes besides its query: Query's filters plus Index.search's options."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not silently ignored

    k: int = Field(10, ge=1, le=1000, description="Number of hits.")
    views: Optional[list[ViewName]] = Field(None, description="Indexed views to search (Query.target_views); null: any.")
    instruction: Optional[str] = Field(None, description="Re-rank the top candidates by re-embedding them with this instruction.")
    rerank_top: int = Field(20, ge=1, le=1000, description="How many candidates an instruction re-embeds.")
    per_file: Optional[int] = Field(None, ge=1, description="At most this many hits per file.")
    min_score: Optional[float] = Field(None, description="Drop hits scoring below this.")
    merge: bool = Field(True, description="Merge adjacent clips of a file into one hit.")
    path_prefix: Optional[str] = Field(None, description="Only files under this folder (a filter on indexed paths; nothing is opened).")
    path_glob: Optional[str] = Field(None, description="Only files whose indexed path matches this glob.")
    min_duration_s: Optional[float] = Field(None, ge=0)
    max_duration_s: Optional[float] = Field(None, ge=0)
    indexed_after: Optional[float] = Field(None, description="Unix seconds.")


class SearchRequest(SearchOptions):
    """A text query, or "more like this" on an indexed clip: exactly one of text and clip_id."""

    text: Optional[str] = Field(None, min_length=1)
    clip_id: Optional[str] = Field(None, min_length=1)

    @model_validator(mode="after")
    def _one_query(self):
        if (self.text is None) == (self.clip_id is None):
            raise ValueError("give exactly one of text and clip_id")
        return self


class MediaSearchRequest(SearchOptions):
    """The options of a search by an uploaded file (sent as the form field `request`, JSON)."""

    view: Optional[ViewName] = Field(None, description="Read the upload as this view; null: its richest.")
    start_s: Optional[float] = Field(None, ge=0, description="Use the upload from this second.")
    end_s: Optional[float] = Field(None, gt=0, description="Use the upload up to this second.")


class ClipModel(BaseModel):
    clip_id: str
    path: str
    file_name: str
    start_s: float
    end_s: float
    view: ViewName


class HitModel(ClipModel):
    """One hit (the library's Hit), plus the file name for display."""

    score: float
    merged_clip_ids: list[str] = []
    duplicate_paths: list[str] = Field([], description="Other paths of the same content (copies, links).")


class RerankModel(BaseModel):
    embedded: int
    cached: int
    failed: int


class SearchResponse(BaseModel):
    hits: list[HitModel]
    candidates: int = Field(description="First-stage candidates before filters, merging and caps.")
    rerank: Optional[RerankModel] = None
    seconds: float = Field(description="Time the service spent on the search.")


class StatusModel(BaseModel):
    index: str
    model_id: str
    model_source: str
    dim: int
    files_ok: int
    files_partial: int
    files_failed: int
    files_duplicate: int = Field(0, description="Other paths of indexed content (copies, links), not embedded again.")
    clips: int
    clips_by_view: dict[str, int]
    hours_by_view: dict[str, float]
    ann: dict
    disk_bytes: int
    roots: list[str] = Field(description="Folders under which the service may index (POST /api/jobs).")
    job: Optional["JobModel"] = Field(None, description="The running or last indexing job.")


class FailureModel(BaseModel):
    path: str
    error: Optional[str]
    indexed_at: Optional[float]


class IndexJobRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    root: int = Field(0, ge=0, description="Which of the service's roots (GET /api/status .roots), by position.")
    folder: str = Field("", description="A folder under that root, relative to it ('' for the root itself).")


class JobModel(BaseModel):
    id: str
    folder: str
    state: Literal["running", "done", "failed"]
    files_total: int = 0
    files_done: int = 0
    clips_done: int = 0
    phase: Optional[str] = Field(None, description="What the run does now: scanning, fingerprinting, probing, "
                                 "loading model, embedding, committing, building ANN index.")
    phase_done: int = 0
    phase_total: Optional[int] = Field(None, description="None while unknown (a scan still finding files).")
    current: Optional[str] = None
    error: Optional[str] = None
    report: Optional[dict] = None
    started_at: float
    finished_at: Optional[float] = None


class ErrorModel(BaseModel):
    """Every error answer: a message that names the fix, never a traceback."""

    error: str
    kind: str = Field(description="The avsearch error class, or HTTP's reason.")
    exit_code: int = Field(1, description="The exit code `avsearch` gives this error.")


StatusModel.model_rebuild()
