"""Content de-duplication (issue 18): copies, hard links and symlinks of one file are embedded
once and come back as one hit naming the other paths; the clips follow the content when paths
come and go; symlinked folders are walked once, loops included."""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path

import pytest

from avsearch import Index, Query
from avsearch.indexer.crawl import crawl
from avsearch.media import SUPPORTED_EXTENSIONS
from avsearch.media.synth import write_audio
from avsearch.store import FileCommit


class CountingEmbedder:
    """The tiny model, counting the clips it is asked to embed."""

    def __init__(self, inner):
        self._inner = inner
        self.clips = 0

    def embed_clips(self, clips, view, instruction=None):
        self.clips += len(clips)
        return self._inner.embed_clips(clips, view, instruction=instruction)

    def __getattr__(self, name):
        return getattr(self._inner, name)


@pytest.fixture(scope="module")
def sounds(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("sounds")
    write_audio(d / "a.wav", duration_s=2.0, tone_hz=300.0, seed=1)
    write_audio(d / "e.wav", duration_s=2.0, tone_hz=900.0, seed=2)
    write_audio(d / "a2.wav", duration_s=2.0, tone_hz=500.0, seed=3)
    return d


def make_library(root: Path, sounds: Path) -> Path:
    """a.wav, b.wav (a copy), c.wav (a hard link to a), d.wav (a symlink to b) and e.wav (other content)."""
    lib = root / "lib"
    lib.mkdir()
    shutil.copy(sounds / "a.wav", lib / "a.wav")
    shutil.copy(sounds / "e.wav", lib / "e.wav")
    shutil.copy(lib / "a.wav", lib / "b.wav")
    os.link(lib / "a.wav", lib / "c.wav")
    os.symlink("b.wav", lib / "d.wav")
    return lib


def open_counting(path: Path, tiny_embedder) -> tuple[Index, CountingEmbedder]:
    index = Index.open(path, model="tiny", create=True)
    counter = CountingEmbedder(tiny_embedder)
    index._embedder = counter  # the session's tiny model, counted (share_embedder would reload it)
    return index, counter


def statuses(index: Index) -> dict[str, str]:
    return {Path(r["path"]).name: r["status"] for r in index.store.file_rows()}


def clip_rows(index: Index) -> list[tuple]:
    t = index.store.tables.clip_meta(columns=["path", "clip_id", "row_id"])
    return sorted((Path(p).name, c, r) for p, c, r in zip(*(t.column(n).to_pylist() for n in t.column_names)))


def hits_for(index: Index, name: str, lib: Path):
    """Hits for the stored vector of `name`'s first clip (its content scores 1.0 wherever it lives)."""
    t = index.store.tables.clip_meta(columns=["row_id", "path"])
    row = next(r for r, p in zip(t.column("row_id").to_pylist(), t.column("path").to_pylist()) if p == str(lib / name))
    return index.search(Query.from_vector(index.store.vectors([row])[0]), k=10)


def test_copies_hard_links_and_symlinks_are_embedded_once_and_come_back_as_one_hit(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    assert index.plan([lib]).counts()["duplicate"] == 3  # dry run: its own category
    report = index.add([lib])
    assert counter.clips == 2  # one 2-second clip of a.wav's content, one of e.wav's
    assert statuses(index) == {"a.wav": "ok", "e.wav": "ok", "b.wav": "duplicate", "c.wav": "duplicate",
                               "d.wav": "duplicate"}
    assert {p for p, _, _ in clip_rows(index)} == {"a.wav", "e.wav"}
    assert sorted(Path(p).name for p, _ in report.duplicates) == ["b.wav", "c.wav", "d.wav"]
    stats = index.stats()
    assert stats["files_ok"] == 2 and stats["files_duplicate"] == 3 and stats["clips"] == 2

    hits = hits_for(index, "a.wav", lib)
    assert hits[0].path == str(lib / "a.wav") and hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0].duplicate_paths == tuple(str(lib / n) for n in ("b.wav", "c.wav", "d.wav"))
    assert hits[0].to_dict()["duplicate_paths"] == [str(lib / n) for n in ("b.wav", "c.wav", "d.wav")]
    assert len(hits) == 2 and hits[1].path == str(lib / "e.wav") and hits[1].duplicate_paths == ()

    counter.clips = 0
    again = index.add([lib])  # nothing to do: duplicates stay duplicates, nothing embedded
    assert counter.clips == 0 and again.plan_counts["unchanged"] == 5 and again.plan_counts["duplicate"] == 0


def test_deleting_the_canonical_hands_its_clips_to_a_remaining_copy(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    before = {(c, r) for p, c, r in clip_rows(index) if p == "a.wav"}
    os.remove(lib / "a.wav")
    counter.clips = 0
    report = index.add([lib])
    assert counter.clips == 0 and report.clips_added == 0  # no re-embedding
    assert report.moved == [(str(lib / "a.wav"), str(lib / "b.wav"))]
    assert {(c, r) for p, c, r in clip_rows(index) if p == "b.wav"} == before  # the same clips, re-pointed
    assert statuses(index) == {"b.wav": "ok", "c.wav": "duplicate", "d.wav": "duplicate", "e.wav": "ok"}
    hit = hits_for(index, "b.wav", lib)[0]
    assert hit.path == str(lib / "b.wav") and hit.duplicate_paths == (str(lib / "c.wav"), str(lib / "d.wav"))


def test_a_changed_canonical_leaves_its_old_clips_to_a_copy_and_is_embedded_again(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    os.remove(lib / "c.wav")  # a hard link would change with a.wav
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    before = {(c, r) for p, c, r in clip_rows(index) if p == "a.wav"}
    shutil.copy(sounds / "a2.wav", lib / "a.wav")  # new content at the canonical's path
    counter.clips = 0
    index.add([lib])
    assert counter.clips == 1  # a.wav's new content only
    assert {(c, r) for p, c, r in clip_rows(index) if p == "b.wav"} == before
    assert statuses(index) == {"a.wav": "ok", "b.wav": "ok", "d.wav": "duplicate", "e.wav": "ok"}


def test_deleting_a_copy_removes_only_its_row(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    clips = clip_rows(index)
    os.remove(lib / "c.wav")
    report = index.add([lib])
    assert report.deleted == [str(lib / "c.wav")] and counter.clips == 2
    assert clip_rows(index) == clips
    assert statuses(index) == {"a.wav": "ok", "b.wav": "duplicate", "d.wav": "duplicate", "e.wav": "ok"}
    assert hits_for(index, "a.wav", lib)[0].duplicate_paths == (str(lib / "b.wav"), str(lib / "d.wav"))


def test_a_copy_of_a_broken_file_fails_with_its_reason_and_is_not_decoded_twice(tmp_path, sounds, tiny_embedder):
    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "bad.mp4").write_bytes(b"this is not a video at all\n" * 40)
    shutil.copy(lib / "bad.mp4", lib / "bad2.mp4")
    index, _ = open_counting(tmp_path / "idx", tiny_embedder)
    report = index.add([lib])
    failed = dict(report.failed)
    assert set(failed) == {str(lib / "bad.mp4"), str(lib / "bad2.mp4")}
    assert failed[str(lib / "bad2.mp4")].startswith(f"same content as {lib / 'bad.mp4'}, which could not be indexed")


def test_an_index_made_before_deduplication_opens_searches_and_is_deduplicated_by_the_next_run(
        tmp_path, sounds, tiny_embedder):
    lib = tmp_path / "lib"
    lib.mkdir()
    shutil.copy(sounds / "a.wav", lib / "a.wav")
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    # What the old code made of a copy: an "ok" row of its own and its own clips (and no
    # "patterns" in avsearch.json).
    shutil.copy(lib / "a.wav", lib / "copy.wav")
    store = index.store
    a_row = store.file_rows()[0]
    t = store.tables.clip_meta(columns=["clip_id", "row_id", "fingerprint", "path", "start_s", "end_s", "view",
                                        "file_duration_s", "indexed_at"])
    vectors = store.vectors(t.column("row_id").to_pylist())
    clips = [{**c, "path": str(lib / "copy.wav"), "clip_id": c["clip_id"] + "x", "row_id": c["row_id"] + 1,
              "model_id": a_row["model_id"]} for c in t.to_pylist()]
    st = os.stat(lib / "copy.wav")
    with store.write_lock():
        store.commit([FileCommit({**a_row, "path": str(lib / "copy.wav"), "size": st.st_size, "mtime": st.st_mtime},
                                 clips, vectors)])
        store.finish_writes()
    meta = json.loads((tmp_path / "idx" / "avsearch.json").read_text())
    meta.pop("patterns")
    (tmp_path / "idx" / "avsearch.json").write_text(json.dumps(meta))

    old = Index.open(tmp_path / "idx")
    hits = hits_for(old, "a.wav", lib)
    assert sorted(Path(h.path).name for h in hits) == ["a.wav", "copy.wav"]  # searchable as it was
    assert old.path_patterns() == {"include": [], "exclude": [], "include_roots": [], "exclude_roots": []}

    old._embedder = counter
    counter.clips = 0
    report = old.add([lib])
    assert counter.clips == 0 and report.duplicates == [(str(lib / "copy.wav"), str(lib / "a.wav"))]
    hits = hits_for(old, "a.wav", lib)
    assert len(hits) == 1 and hits[0].duplicate_paths == (str(lib / "copy.wav"),)
    assert {p for p, _, _ in clip_rows(old)} == {"a.wav"}


# -- symlinks in the crawl (no model) ----------------------------------------------------------


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path):
    outside = tmp_path / "outside"
    write_audio(outside / "far.wav", duration_s=0.5)
    lib = tmp_path / "lib"
    write_audio(lib / "real" / "x.wav", duration_s=0.5)
    os.symlink(outside, lib / "to-outside")  # a folder reached only through a link: walked
    os.symlink(lib / "real", lib / "a-link-to-real")  # sorted before real/: real/ is still listed under its path
    os.symlink(lib, lib / "real" / "loop")  # back up the tree
    os.symlink("self", lib / "self")  # a link to itself
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("the crawl did not end"))
    signal.alarm(20)
    try:
        found = crawl([lib], SUPPORTED_EXTENSIONS)
    finally:
        signal.alarm(0)
    assert [(Path(c.path).relative_to(lib).as_posix(), c.via_link) for c in found.files] == [
        ("real/x.wav", False), ("to-outside/far.wav", True)]

    no_links = crawl([lib], SUPPORTED_EXTENSIONS, follow_symlinks=False)
    assert [Path(c.path).relative_to(lib).as_posix() for c in no_links.files] == ["real/x.wav"]


def test_no_follow_symlinks_skips_symlinked_files_and_prunes_those_indexed(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    plan = index.plan([lib], follow_symlinks=False)
    assert plan.deleted == [str(lib / "d.wav")]
    index.add([lib], follow_symlinks=False)
    assert "d.wav" not in statuses(index) and statuses(index)["b.wav"] == "duplicate"
    assert counter.clips == 2


def test_cli_index_embeds_each_content_once_and_query_shows_one_hit_per_content(tmp_path, sounds, monkeypatch,
                                                                                 cli_in_process):
    lib = make_library(tmp_path, sounds)
    monkeypatch.setenv("COLUMNS", "200")
    run = cli_in_process

    dry = json.loads(run("index", lib, "--index", tmp_path / "idx", "--model", "tiny", "--dry-run", "--json"))
    assert sorted(Path(p).name for p, _ in dry["duplicate"]) == ["b.wav", "c.wav", "d.wav"]
    report = json.loads(run("index", lib, "--index", tmp_path / "idx", "--model", "tiny", "--json"))
    assert report["clips_added"] == 2 and len(report["duplicates"]) == 3
    status = run("status", "--index", tmp_path / "idx")
    assert "duplicates" in status and "3  (copies and links" in status
    index = Index.open(tmp_path / "idx")
    e_clip = index.store.tables.clip_meta(f"path = '{lib / 'e.wav'}'", ["clip_id"]).column("clip_id")[0].as_py()
    # More like e.wav's clip (a stored vector: no model): the other content is one hit naming its four paths.
    hits = [json.loads(line) for line in run("query", "--like", e_clip, "--index", tmp_path / "idx", "--json",
                                             "--no-server").splitlines()]
    assert len(hits) == 1
    assert [hits[0]["path"], *hits[0]["duplicate_paths"]] == [str(lib / n) for n in ("a.wav", "b.wav", "c.wav", "d.wav")]
    table = run("query", "--like", e_clip, "--index", tmp_path / "idx", "--no-server")
    assert "also at:" in table and all(f"lib/{n}" in table for n in ("b.wav", "c.wav", "d.wav"))


def test_removing_the_canonical_from_the_index_leaves_its_clips_to_a_copy(tmp_path, sounds, tiny_embedder):
    lib = make_library(tmp_path, sounds)
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([lib])
    before = {(c, r) for p, c, r in clip_rows(index) if p == "a.wav"}
    assert index.remove([lib / "a.wav", lib / "c.wav"]) == 2
    assert {(c, r) for p, c, r in clip_rows(index) if p == "b.wav"} == before
    assert statuses(index) == {"b.wav": "ok", "d.wav": "duplicate", "e.wav": "ok"}
    assert hits_for(index, "b.wav", lib)[0].duplicate_paths == (str(lib / "d.wav"),)


def test_a_copy_outside_the_folder_indexed_now_takes_the_clips_over(tmp_path, sounds, tiny_embedder):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    shutil.copy(sounds / "a.wav", one / "a.wav")
    shutil.copy(sounds / "a.wav", two / "copy.wav")
    index, counter = open_counting(tmp_path / "idx", tiny_embedder)
    index.add([one, two])
    before = {(c, r) for p, c, r in clip_rows(index)}
    os.remove(one / "a.wav")
    index.add([one])  # two/ is not walked, but its copy is known to the index
    assert {(c, r) for p, c, r in clip_rows(index) if p == "copy.wav"} == before
    assert statuses(index) == {"copy.wav": "ok"}
    counter.clips = 0
    assert index.add([one, two]).plan_counts["unchanged"] == 1 and counter.clips == 0


def test_the_canonical_is_a_real_path_before_a_symlink_and_a_retried_failed_copy_becomes_a_duplicate():
    from avsearch.indexer.crawl import Candidate, CrawlResult
    from avsearch.indexer.plan import make_plan

    found = CrawlResult(["/lib"], [Candidate("/lib/a-link.wav", 10, 1.0, via_link=True),
                                   Candidate("/lib/b.wav", 10, 1.0)], [])
    plan = make_plan(found, [], {"/lib/a-link.wav": "F", "/lib/b.wav": "F"}.__getitem__, exists=lambda p: True)
    assert [w.path for w in plan.work] == ["/lib/b.wav"]
    assert [(d.path, d.canonical) for d in plan.duplicates] == [("/lib/a-link.wav", "/lib/b.wav")]

    failed = {"fingerprint": "F", "size": 10, "mtime": 1.0, "status": "failed"}
    rows = [{**failed, "path": "/lib/a-link.wav"}, {**failed, "path": "/lib/b.wav"}]
    retry = make_plan(found, rows, {}.__getitem__, retry_failed=True, exists=lambda p: True)
    assert [(w.path, w.reason) for w in retry.work] == [("/lib/b.wav", "retry")]
    assert [d.path for d in retry.duplicates] == ["/lib/a-link.wav"]
