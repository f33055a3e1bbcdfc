"""--path matches whole path components (issue 17): a folder never takes its look-alike siblings."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsearch import Index


@pytest.fixture(scope="module")
def siblings(tmp_path_factory, tiny_embedder):
    from avsearch.media.synth import write_audio

    root = tmp_path_factory.mktemp("siblings")
    for folder, hz in (("2019", 300.0), ("2019-old", 600.0), ("2019_b", 900.0)):
        write_audio(root / "media" / folder / f"{folder}.wav", duration_s=2.0, tone_hz=hz)
    index = Index.open(root / "index", model="tiny", create=True)
    index.add([root / "media"])
    return index, root / "media"


def names(hits) -> set[str]:
    return {Path(h.path).name for h in hits}


def test_path_prefix_is_a_folder_boundary_not_a_string_prefix(siblings):
    index, media = siblings
    assert names(index.search("x", k=20, path_prefix=str(media / "2019"))) == {"2019.wav"}
    assert names(index.search("x", k=20, path_prefix=str(media / "2019") + "/")) == {"2019.wav"}
    assert names(index.search("x", k=20, path_prefix=str(media / "2019-old"))) == {"2019-old.wav"}
    # "_" is a LIKE wildcard unless escaped: 2019_b must not take 2019-b look-alikes, nor the reverse.
    assert names(index.search("x", k=20, path_prefix=str(media / "2019_b"))) == {"2019_b.wav"}
    assert names(index.search("x", k=20, path_prefix=str(media))) == {"2019.wav", "2019-old.wav", "2019_b.wav"}


def test_path_prefix_naming_a_file_matches_that_file_only(siblings):
    index, media = siblings
    assert names(index.search("x", k=20, path_prefix=str(media / "2019" / "2019.wav"))) == {"2019.wav"}
    assert index.search("x", k=20, path_prefix=str(media / "2019" / "2019.wa")) == []
