"""crawl(confine_to=...): symlinks are followed only into the allowed folders (what `avsearch serve`
jobs use, so a link in a served folder cannot make the service read media elsewhere). No model."""

from __future__ import annotations

import os
from pathlib import Path

from avsearch.indexer.crawl import crawl
from avsearch.media import SUPPORTED_EXTENSIONS
from avsearch.media.synth import write_audio


def test_links_lead_only_into_the_allowed_folders_and_the_others_are_skipped_with_a_reason(tmp_path):
    outside, served = tmp_path / "outside", tmp_path / "served"
    write_audio(outside / "far.wav", duration_s=0.5)
    write_audio(served / "real" / "x.wav", duration_s=0.5)
    write_audio(served / "other" / "y.wav", duration_s=0.5)
    lib = served / "lib"
    lib.mkdir()
    os.symlink(outside, lib / "to-outside")  # a folder elsewhere
    os.symlink(outside / "far.wav", lib / "far-link.wav")  # a file elsewhere
    os.symlink(served / "other", lib / "to-other")  # a folder inside the served one: followed
    os.symlink(outside, served / "other" / "deeper")  # met only while walking a followed link
    os.symlink(lib / "to-outside", lib / "chain")  # a link to a link that leads out
    os.symlink(served / "real" / "x.wav", lib / "x-link.wav")  # a file inside: taken
    rel = lambda p: Path(p).relative_to(lib).as_posix()  # noqa: E731

    found = crawl([lib], SUPPORTED_EXTENSIONS, confine_to=[served])
    assert [rel(c.path) for c in found.files] == ["to-other/y.wav", "x-link.wav"]
    assert sorted(rel(s.path) for s in found.skipped) == ["chain", "far-link.wav", "to-other/deeper", "to-outside"]
    assert all("outside the folders this run may read" in s.reason for s in found.skipped)
    assert not found.problems  # skipped on purpose, not unreadable: nothing to record as failed

    everywhere = crawl([lib], SUPPORTED_EXTENSIONS)  # without confine_to links go anywhere (the CLI)
    assert {"chain/far.wav", "far-link.wav"} <= {rel(c.path) for c in everywhere.files} and not everywhere.skipped


def test_a_root_outside_the_allowed_folders_is_not_read(tmp_path):
    write_audio(tmp_path / "outside" / "far.wav", duration_s=0.5)
    (tmp_path / "served").mkdir()
    found = crawl([tmp_path / "outside"], SUPPORTED_EXTENSIONS, confine_to=[tmp_path / "served"])
    assert found.files == [] and [s.path for s in found.skipped] == [str(tmp_path / "outside")]
