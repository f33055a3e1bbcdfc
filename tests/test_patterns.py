"""Include/exclude patterns on `index` (issue 18): which files are taken, stored with the index,
reused by later runs, cleared with an empty pattern."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from avsearch import Index
from avsearch.indexer.crawl import crawl
from avsearch.indexer.patterns import PathPatterns, merged
from avsearch.media import SUPPORTED_EXTENSIONS
from avsearch.media.synth import write_audio


def test_a_pattern_matches_the_relative_path_the_name_or_a_folder_on_the_way():
    p = PathPatterns.of(exclude=["drafts/*", "*.part.wav", "Trash"])
    assert not p.takes_file("drafts/x.wav")  # relative path
    assert not p.takes_file("2024/take.part.wav")  # file name
    assert not p.takes_file("a/Trash/b/x.wav") and not p.takes_folder("a/Trash")  # a folder by name
    assert p.takes_file("2024/drafts.wav") and p.takes_file("final/x.wav")
    both = PathPatterns.of(include=["*.wav"], exclude=["*/old/*"])
    assert both.takes_file("a/x.wav") and not both.takes_file("a/x.mp4")
    assert not both.takes_file("a/old/x.wav")  # exclude wins
    assert both.takes_folder("a/deep")  # an include never prunes a folder: files deep down still match


def test_each_kind_given_replaces_the_stored_one_and_an_empty_pattern_clears_it():
    stored = PathPatterns.of(include=["*.mp4"], exclude=["tmp/*"])
    assert merged(stored, None, None) == stored
    assert merged(stored, None, ["x/*", "y/*"]) == PathPatterns(("*.mp4",), ("x/*", "y/*"))
    assert merged(stored, [""], None) == PathPatterns((), ("tmp/*",))
    assert not merged(stored, [], [""])


def test_the_crawl_applies_patterns_and_does_not_walk_excluded_folders(tmp_path, monkeypatch):
    for rel in ("keep/a.wav", "keep/b.mp3", "skip/c.wav", "d.wav"):
        write_audio(tmp_path / rel, duration_s=0.2)
    walked = []
    real_walk = __import__("os").walk

    def spy(top, *args, **kwargs):
        for entry in real_walk(top, *args, **kwargs):
            walked.append(Path(entry[0]).name)
            yield entry

    monkeypatch.setattr("avsearch.indexer.crawl.os.walk", spy)
    found = crawl([tmp_path], SUPPORTED_EXTENSIONS, patterns=PathPatterns.of(include=["*.wav"], exclude=["skip"]))
    assert sorted(Path(c.path).relative_to(tmp_path).as_posix() for c in found.files) == ["d.wav", "keep/a.wav"]
    assert "skip" not in walked and "keep" in walked
    # A file the user names is taken whatever the patterns say.
    named = crawl([tmp_path / "skip" / "c.wav"], SUPPORTED_EXTENSIONS, patterns=PathPatterns.of(exclude=["*.wav"]))
    assert [c.path for c in named.files] == [str(tmp_path / "skip" / "c.wav")]


@pytest.fixture(scope="module")
def sound(tmp_path_factory) -> Path:
    return write_audio(tmp_path_factory.mktemp("sound") / "s.wav", duration_s=1.0, tone_hz=300.0)


def names(index: Index, lib: Path) -> list[str]:
    return sorted(Path(r["path"]).relative_to(lib).as_posix() for r in index.store.file_rows())


def library(lib: Path, *rels: str) -> Path:
    """A folder of one-second sounds, each of other content (no two are copies)."""
    for i, rel in enumerate(rels):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        write_audio(lib / rel, duration_s=1.0, tone_hz=300.0 + 100 * i)
    return lib


def opened(path: Path, embedder, **kw) -> Index:
    index = Index.open(path, model="tiny", **kw)
    index._embedder = embedder  # the session's tiny model: no load per test
    return index


def test_patterns_are_stored_reused_by_the_next_run_cleared_and_prune_what_they_exclude(tmp_path, sound, tiny_embedder):
    lib = library(tmp_path / "lib", "keep.wav", "drafts/x.wav")
    index = opened(tmp_path / "idx", tiny_embedder, create=True)
    index.add([lib], exclude=["drafts/*"])
    assert names(index, lib) == ["keep.wav"]
    stored = json.loads((tmp_path / "idx" / "avsearch.json").read_text())["patterns"]
    assert stored == {"include": [], "exclude": ["drafts/*"], "include_roots": [], "exclude_roots": [str(lib)]}
    assert index.stats()["patterns"] == stored

    write_audio(lib / "drafts" / "y.wav", duration_s=1.0, tone_hz=700.0)
    again = opened(tmp_path / "idx", tiny_embedder)  # a later run, no patterns given: the stored ones apply
    assert again.path_patterns() == stored
    assert again.add([lib]).plan_counts["new"] == 0 and names(again, lib) == ["keep.wav"]

    again.add([lib], exclude=[""])  # cleared
    assert names(again, lib) == ["drafts/x.wav", "drafts/y.wav", "keep.wav"]
    assert again.path_patterns() == {"include": [], "exclude": [], "include_roots": [], "exclude_roots": []}

    report = again.add([lib], include=["keep*"])  # files indexed before and excluded now are pruned
    assert sorted(Path(p).name for p in report.deleted) == ["x.wav", "y.wav"] and names(again, lib) == ["keep.wav"]
    assert (lib / "drafts" / "x.wav").exists()  # media on disk is never touched


def test_stored_patterns_read_paths_from_the_folder_they_were_given_for(tmp_path, sound, tiny_embedder):
    """A later run on a subfolder neither prunes the files the patterns took nor skips new ones
    (relative to the subfolder, `interviews/*` would match nothing)."""
    lib = library(tmp_path / "lib", "interviews/a.wav", "b-roll/b.wav")
    index = opened(tmp_path / "idx", tiny_embedder, create=True)
    index.add([lib], include=["interviews/*"])
    assert names(index, lib) == ["interviews/a.wav"]
    write_audio(lib / "interviews" / "c.wav", duration_s=1.0, tone_hz=700.0)
    report = index.add([lib / "interviews"])  # the stored include applies, from lib
    assert report.deleted == [] and report.plan_counts["new"] == 1
    assert names(index, lib) == ["interviews/a.wav", "interviews/c.wav"]
    # another folder: the patterns given for lib do not filter it, and lib keeps its files
    music = tmp_path / "music"
    write_audio(music / "song.wav", duration_s=1.0, tone_hz=900.0)
    report = index.add([music])
    assert report.plan_counts["new"] == 1 and report.deleted == []
    assert sorted(Path(r["path"]).name for r in index.store.file_rows()) == ["a.wav", "c.wav", "song.wav"]
    index.remove([music])
    # patterns given on a run read from that run's folder
    index.add([lib / "interviews"], exclude=["c.wav"], include=[""])
    assert names(index, lib) == ["interviews/a.wav"]
    assert index.path_patterns()["exclude_roots"] == [str(lib / "interviews")]


def test_a_long_lived_index_applies_the_patterns_another_process_stored(tmp_path, sound, tiny_embedder):
    lib = library(tmp_path / "lib", "keep.wav", "drafts/x.wav")
    service = opened(tmp_path / "idx", tiny_embedder, create=True)
    service.add([lib / "keep.wav"])  # the index exists, with no patterns, and stays open (as `serve` keeps it)
    cli = opened(tmp_path / "idx", tiny_embedder)
    cli.add([lib], exclude=["drafts/*"])
    service.add([lib])  # must neither index drafts/ nor erase the exclude
    assert names(service, lib) == ["keep.wav"]
    assert Index.open(tmp_path / "idx").path_patterns()["exclude"] == ["drafts/*"]


def test_cli_include_and_exclude_shape_the_plan_and_help_says_they_are_stored(tmp_path, sound, cli_in_process):
    lib = tmp_path / "lib"
    for rel in ("a.wav", "b.wav", "tmp/c.wav"):
        (lib / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sound, lib / rel)
        sound = write_audio(tmp_path / f"{rel.replace('/', '_')}.src.wav", duration_s=1.0, tone_hz=400.0 + len(rel))

    run = cli_in_process

    plan = json.loads(run("index", lib, "--index", tmp_path / "idx", "--model", "tiny", "--dry-run", "--json",
                          "--exclude", "tmp", "--exclude", "b.*"))
    assert [Path(p).name for p in plan["new"]] == ["a.wav"]
    plan = json.loads(run("index", lib, "--index", tmp_path / "idx", "--model", "tiny", "--dry-run", "--json",
                          "--include", "*/c.wav"))
    assert [Path(p).name for p in plan["new"]] == ["c.wav"]
    helptext = " ".join(run("index", "--help").replace("│", " ").split())  # the words, without the box
    assert "later runs without --include reuse it there" in helptext and "--exclude '' clears the stored" in helptext
