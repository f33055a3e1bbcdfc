"""Clip rows written by other processes than the one that commits them: Lance's distributed write.

A Ray embed actor writes the clips it embedded as Lance fragments (data files in the clips dataset
that no version lists yet) and hands back only their metadata, a few hundred bytes of JSON; the
driver commits every fragment of a batch in one Append (tables.py, step 1 of its commit), so the
vectors never travel through the driver. Until that commit the files belong to no version: readers
never see them, and a chunk whose file fails, a chunk run twice after a worker died, or a run killed
before its commit leaves them as orphans, which `remove_unreferenced_files` deletes under the write
lock (at the next write's recovery, and at the end of each write run).

Imports Lance and pyarrow only, never LanceDB: an embed actor loads this module and stays light.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Optional, Sequence

import numpy as np

from avsearch.errors import AvsearchError
from avsearch.store.schema import clips_table

# An age no version reaches: a clean-up given it removes no version (here: only files of no version go;
# tables.py: optimize() compacts and removes nothing)
NO_VERSION_IS_THIS_OLD = timedelta(days=365 * 100)


class FragmentWriteError(AvsearchError, OSError):
    """A worker could not write its clips into the index's clips dataset."""


@dataclass(frozen=True)
class FragmentTarget:
    """Where a worker writes clip fragments. Picklable and small; `uri` is a string, not a Path,
    so that an object-store URI (s3://..., gs://...) works where Lance supports one."""

    uri: str  # the clips dataset (<index>/lance/clips.lance)
    dim: int
    storage_version: str  # the dataset's data storage version: a fragment must match it
    # The dataset's version when the run began and its rows then: `check_target` makes sure a
    # worker sees this very table, not another one at the same path on its own node.
    version: int = 1
    rows: int = 0
    # Lance's storage options for an object-store index (the driver's $AVSEARCH_STORAGE_OPTIONS:
    # a worker's environment may lack them); credentials in the environment are each node's own.
    storage_options: dict = field(default_factory=dict, repr=False)  # may hold keys: never printed


def check_target(target: FragmentTarget) -> None:
    """Raise FragmentWriteError, naming the fix, unless this process can write into the index's
    own clips table: Lance importable, the dataset reachable at `target.uri`, and its version of
    the run's start holding the rows the committing process saw. Each embed actor checks once,
    before any work, so a misconfigured node stops the run instead of failing file after file."""
    try:
        import lance
    except ImportError as err:
        raise FragmentWriteError(f"this Ray node cannot write clips ({err}): install avsearch with its Ray extra, "
                                 "pip install \"avsearch[ray]\", on every node") from None
    try:
        seen = lance.dataset(target.uri, version=target.version,
                             storage_options=target.storage_options or None).count_rows()
    except Exception as err:
        raise FragmentWriteError(_unreachable(target, err)) from None
    if seen != target.rows:
        raise FragmentWriteError(
            f"the clips table at {target.uri} seen from this Ray node is another one than the index's "
            f"({seen} rows at version {target.version}, not {target.rows}): a local folder at the same "
            "path on this node? Put --index on storage every node reaches at the same path")


def missing_files(uri: str, fragments: Sequence[str]) -> list[str]:
    """The data files `fragments` name that are not in the dataset at `uri`: written by a worker
    into another table at the same path. Committing them would leave a version no one can read."""
    from pyarrow import fs

    if "://" in uri and not uri.startswith("file://"):
        from avsearch.objstore import filesystem as object_store

        filesystem, root = object_store(uri)
    else:
        filesystem, root = fs.FileSystem.from_uri(uri)
    names = [f"{root}/data/{f['path']}" for fragment in fragments for f in json.loads(fragment)["files"]]
    return [i.path for i in filesystem.get_file_info(names) if i.type == fs.FileType.NotFound]


def write_clip_fragments(target: FragmentTarget, rows: Sequence[dict], vectors: np.ndarray) -> list[str]:
    """Write `rows` (the clips schema's fields, as the local pipeline builds them) with their
    `vectors` as uncommitted fragments of the clips dataset; return each fragment's metadata as
    JSON, for `commit_fragments` in the committing process."""
    if not rows:
        return []
    import lance
    from lance.fragment import write_fragments

    table = clips_table(list(rows), vectors, target.dim)
    try:
        # Opened first: on a node that does not see the index (a local path that exists only on
        # the driver's machine), writing alone would create a stray dataset folder there, and the
        # committed metadata would then name files the driver cannot read.
        options = target.storage_options or None
        lance.dataset(target.uri, storage_options=options)
        written = write_fragments(table, target.uri, schema=table.schema,
                                  data_storage_version=target.storage_version, storage_options=options)
    except Exception as err:
        raise FragmentWriteError(_unreachable(target, err)) from None
    return [json.dumps(f.to_json()) for f in written]


def _unreachable(target: FragmentTarget, err: BaseException) -> str:
    first = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (f"could not write clips into the index's table {target.uri} from this machine "
            f"({type(err).__name__}: {first}). On a Ray cluster every node writes into the index: put "
            "--index on storage every node reaches at the same path (a shared filesystem) or on an object "
            "store, and check that it is writable and not full")


def commit_fragments(uri: str, fragments: Sequence[str], read_version: int,
                     storage_options: Optional[dict] = None) -> int:
    """Append the fragments (their `write_clip_fragments` metadata) to the dataset at `uri` in one
    commit; returns the new version."""
    import lance
    from lance.fragment import FragmentMetadata

    operation = lance.LanceOperation.Append([FragmentMetadata.from_json(f) for f in fragments])
    return int(lance.LanceDataset.commit(uri, operation, read_version=read_version,
                                         storage_options=storage_options or None).version)


def remove_unreferenced_files(dataset) -> int:
    """Delete the files of the Lance dataset that no version lists (fragments never committed),
    keeping every version. Only under the write lock, with no worker of this index writing: a
    fragment written for a commit still to come cannot be told from an orphan. Returns how many
    data files went."""
    stats = dataset.cleanup_old_versions(older_than=NO_VERSION_IS_THIS_OLD, delete_unverified=True)
    return int(stats.data_files_removed)
