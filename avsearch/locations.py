"""Where an index lives, without importing the store (the CLI's service path stays light).

An index is a local folder, or a URI on an object store (`s3://bucket/prefix`, `gs://...`,
`az://...`: the schemes Lance writes to). An object-store index keeps its tables and avsearch.json
at the URI; what needs a real file system (the FAISS index and its memory-mapped re-scoring vectors,
spill files, the lock files, the service's address file) lives in a local cache folder named after
the URI, rebuilt from the tables when it is empty or stale.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

DEFAULT_INDEX = "avsearch-index"
# The object stores Lance writes to and pyarrow.fs reads (avsearch.json): Amazon S3 and the services
# that speak its protocol (MinIO, R2, ...; the endpoint goes in AWS_ENDPOINT_URL), Google Cloud
# Storage, Azure Blob Storage.
OBJECT_STORE_SCHEMES = ("s3", "gs", "az")
# "s3://x" as a Path-typed CLI option arrives folded to "s3:/x"; a drive letter has one letter.
_URI = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):/+(?P<rest>.*)$")


@dataclass(frozen=True)
class IndexURI:
    """An index on an object store: `uri` (no trailing "/") holds its tables and metadata."""

    uri: str

    def __str__(self) -> str:
        return self.uri

    @property
    def scheme(self) -> str:
        return self.uri.split("://", 1)[0]

    @property
    def cache(self) -> Path:
        """The local folder of this index's derived files: `$AVSEARCH_INDEX_CACHE/<name>`, by
        default under the avsearch cache (`$AVSEARCH_CACHE`, else ~/.cache/avsearch) in indexes/.
        Named after the URI's last part plus a hash of the whole URI: readable, never shared
        by two indexes."""
        root = os.environ.get("AVSEARCH_INDEX_CACHE")
        if not root:
            root = Path(os.environ.get("AVSEARCH_CACHE") or Path.home() / ".cache" / "avsearch") / "indexes"
        tail = re.sub(r"[^A-Za-z0-9._-]+", "_", self.uri.rsplit("/", 1)[-1])[:40] or "index"
        digest = hashlib.sha256(self.uri.encode()).hexdigest()[:12]
        return Path(root).expanduser().absolute() / f"{tail}-{digest}"


IndexLocation = Union[Path, IndexURI]


def resolve_index_path(path: Optional[str | Path | IndexURI] = None) -> IndexLocation:
    """--index, else $AVSEARCH_INDEX, else ./avsearch-index: an absolute local Path, or an
    IndexURI for an object store (see the module's docstring)."""
    if isinstance(path, IndexURI):
        return path
    given = str(path or os.environ.get("AVSEARCH_INDEX") or DEFAULT_INDEX)
    match = _URI.match(given)
    if not match:
        return Path(given).expanduser().absolute()
    scheme, rest = match["scheme"].lower(), match["rest"].rstrip("/")
    if scheme == "file":
        return Path("/" + rest)
    if scheme not in OBJECT_STORE_SCHEMES or not rest:
        from avsearch.errors import UsageError

        raise UsageError(
            f"{given}: not an index location avsearch can use. Give a local folder, or an object store "
            f"URI with a bucket: {', '.join(s + '://BUCKET/PREFIX' for s in OBJECT_STORE_SCHEMES)} (anything "
            "else, such as a mounted network share, as a folder path)")
    return IndexURI(f"{scheme}://{rest}")


def local_dir(location: IndexLocation) -> Path:
    """The local folder of an index's lock, service and derived files (the index's own folder,
    or an object-store index's cache folder)."""
    return location.cache if isinstance(location, IndexURI) else Path(location)
