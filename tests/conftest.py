"""Shared fixtures: a generated media library and the tiny WAVE model, made once per session.

Nothing here touches the network: media is synthesised with PyAV/soundfile and the model is a
seeded random checkpoint in the WAVE layout.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest


def pytest_configure(config):
    # The tiny checkpoint is cached under AVSEARCH_CACHE; keep tests out of the user's ~/.cache.
    if "AVSEARCH_CACHE" not in os.environ:
        cache = Path(config.rootpath) / ".pytest_cache" / "avsearch"
        cache.mkdir(parents=True, exist_ok=True)
        os.environ["AVSEARCH_CACHE"] = str(cache)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")


LIBRARY = {
    # name: (kind, kwargs)
    "street.mp4": ("video", dict(duration_s=12.0, audio=True, tone_hz=330.0, seed=1)),
    "garden.mp4": ("video", dict(duration_s=6.0, audio=True, tone_hz=880.0, seed=2)),
    "silent.mp4": ("video", dict(duration_s=4.0, audio=False, seed=3)),
    "speech.wav": ("audio", dict(duration_s=5.0, tone_hz=220.0, seed=4)),
    "birds.flac": ("audio", dict(duration_s=3.0, tone_hz=1500.0, seed=5, sample_rate=44100, channels=2)),
}


def build_library(directory: Path) -> dict[str, Path]:
    from avsearch.media.synth import write_audio, write_video

    directory.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, (kind, kwargs) in LIBRARY.items():
        writer = write_video if kind == "video" else write_audio
        out[name] = writer(directory / name, **kwargs)
    corrupt = directory / "corrupt.mp4"
    corrupt.write_bytes(b"this is not a video at all\n" * 40)
    out["corrupt.mp4"] = corrupt
    return out


@pytest.fixture(scope="session")
def library_template(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("library-template")
    build_library(directory)
    return directory


@pytest.fixture
def library(tmp_path, library_template) -> Path:
    """A fresh copy of the generated library that a test may change."""
    target = tmp_path / "library"
    shutil.copytree(library_template, target)
    return target


@pytest.fixture(scope="session")
def tiny_embedder():
    from avsearch.models import load_embedder

    return load_embedder("tiny")


@pytest.fixture(scope="session")
def indexed_template(tmp_path_factory, library_template, tiny_embedder):
    """The library indexed once with the tiny model (copied per test by `indexed`)."""
    from avsearch import Index

    root = tmp_path_factory.mktemp("indexed-template")
    lib = root / "library"
    shutil.copytree(library_template, lib)
    index = Index.open(root / "index", model="tiny", create=True)
    report = index.add([lib])
    return root, report


@pytest.fixture
def indexed(tmp_path, indexed_template):
    """(Index, library path, first report) on a private copy of the indexed library.

    Paths inside the index are absolute, so the copy keeps the same library location by
    rewriting nothing: it shares the template library (read-only use) and copies the index dir.
    """
    from avsearch import Index

    root, report = indexed_template
    shutil.copytree(root / "index", tmp_path / "index")
    return Index.open(tmp_path / "index"), root / "library", report


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    """One local Ray instance for the whole session (starting one costs seconds): 2 CPUs, loopback.

    Yields (address, fault directory): the Ray engine's test hook (indexer/distributed/faults.py)
    reads the directory, which must be in the environment before Ray starts its workers."""
    import ray

    from avsearch.indexer.distributed.faults import FAULT_DIR_ENV

    faults = tmp_path_factory.mktemp("ray-faults")
    # Ray starts its workers at nice 15: on a busy CI machine the tests' workers would wait behind
    # every other process. The same priority as the test process itself.
    os.environ.setdefault("RAY_worker_niceness", "0")
    os.environ[FAULT_DIR_ENV] = str(faults)
    # Ray puts its GCS on the machine's address, not loopback, even when asked (it resolves
    # 127.0.0.1 away: ray._private.services.resolve_ip_for_localhost); Ray 2.60 requires its token.
    info = ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    yield info.address_info["address"], faults
    ray.shutdown()
    os.environ.pop(FAULT_DIR_ENV, None)


@pytest.fixture
def one_faiss_thread():
    # faiss's OpenMP threads spin for cores the other test processes hold: training small
    # indexes took 40 s instead of 7 (IVF-PQ training ~15x slower) on a loaded 2-core machine.
    import faiss

    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


@pytest.fixture
def cli_in_process(monkeypatch, capsys):
    """run(*args) -> stdout of `avsearch ARGS` through the real entry point, in this process (a
    subprocess pays torch's import again); a non-zero exit fails the test with its stderr."""
    from avsearch.cli.app import main
    import sys

    def run(*args) -> str:
        monkeypatch.setattr(sys, "argv", ["avsearch", *map(str, args)])
        capsys.readouterr()
        try:
            main()
        except SystemExit as exit:
            assert not exit.code, capsys.readouterr().err
        return capsys.readouterr().out

    return run
