"""Indexing on Ray (issue 14) against a local 2-CPU Ray instance (the session's `ray_cluster`).

The faults are real process deaths (SIGKILL, SIGSEGV), made at chosen moments with the engine's
documented test hook (indexer/distributed/faults.py): a decode worker, an embed actor, the driver.
Every run must end with the same clips and vectors as a run without the fault.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fragment_fixtures import unreferenced_data_files
from avsearch import Index
from avsearch.media.synth import write_audio, write_video
from avsearch.store import IndexSettings

# Short clips and chunks: the 12 s video is 6 clips in 3 chunks of 2, committed in parts of 4 s.
# The embed actor reserves no CPU: both of the session's 2 CPUs decode, and a second driver's
# actor (the driver-kill test) fits beside the one kept from earlier runs.
SMALL = IndexSettings(clip_s=2.0)
RAY_SMALL = {"chunk_s": 4.0, "decode_retries": 1, "actor_cpus": 0}


def clips_of(index: Index) -> dict[str, np.ndarray]:
    t = index.store.tables.clips.to_arrow()
    ids = t.column("clip_id").to_pylist()
    assert len(ids) == len(set(ids)), "duplicate clip ids"
    return dict(zip(ids, np.stack(t.column("vector").to_numpy(zero_copy_only=False))))


def files_of(index: Index) -> dict[str, tuple]:
    return {r["path"]: (r["status"], r["n_clips"], r["fingerprint"]) for r in index.store.file_rows()}


def assert_same_index(a: Index, b: Index) -> None:
    ca, cb = clips_of(a), clips_of(b)
    assert ca and sorted(ca) == sorted(cb)
    assert max(float(np.abs(ca[k] - cb[k]).max()) for k in ca) <= 1e-5
    assert files_of(a) == files_of(b)


@pytest.fixture(scope="module")
def small_lib(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("ray-lib")
    write_video(d / "long-clip.mp4", duration_s=12.0, seed=11, tone_hz=440.0)
    write_audio(d / "tone.wav", duration_s=3.0, seed=12)
    return d


@pytest.fixture(scope="module")
def small_reference(tmp_path_factory, small_lib) -> Index:
    """The small library indexed by the local pipeline: every Ray run below, faults and all, must
    equal it (the 12 s file is cut into 3 chunks there, one decoder here)."""
    index = Index.open(tmp_path_factory.mktemp("local-ref") / "idx", model="tiny", create=True, settings=SMALL)
    report = index.add([small_lib])
    assert len(report.indexed) == 2 and not report.failed
    return index


def test_ray_gives_the_local_pipelines_clip_ids_and_vectors(tmp_path, indexed_template, ray_cluster):
    root, local_report = indexed_template  # the library indexed by the local pipeline
    local = Index.open(root / "index")
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    report = index.add([root / "library"], engine="ray", ray_settings={"actor_cpus": 0})
    assert sorted(report.indexed) == sorted(local_report.indexed)
    assert [Path(p).name for p, _ in report.failed] == ["corrupt.mp4"]
    assert report.clips_added == local_report.clips_added
    assert_same_index(local, index)
    # The same plan afterwards: a re-run on Ray finds nothing to do.
    again = index.add([root / "library"], engine="ray", ray_settings={"actor_cpus": 0})
    assert again.clips_added == 0 and again.plan_counts["new"] == 0 and again.unchanged == 6


@pytest.mark.parametrize("fault, who", [("decode-once", "decode worker"), ("embed-once", "embed actor"),
                                        ("embed-written-once", "embed actor, its fragments written,")])
def test_a_decode_worker_or_embed_actor_killed_mid_file_is_retried_and_the_run_completes(
        tmp_path, small_lib, small_reference, ray_cluster, fault, who):
    _, faults = ray_cluster
    (faults / fault).write_text("long-clip")
    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=SMALL)
    report = index.add([small_lib], engine="ray", ray_settings=RAY_SMALL)
    assert not (faults / fault).exists(), f"no {who} died: the fault was never made"
    assert len(report.indexed) == 2 and not report.failed
    assert_same_index(small_reference, index)  # no duplicates: the dead attempt's fragments were never committed
    assert not unreferenced_data_files(tmp_path / "idx"), "the dead attempt's fragments stayed on disk"


def test_a_file_that_crashes_the_decoder_natively_fails_alone(tmp_path, small_lib, ray_cluster):
    _, faults = ray_cluster
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in small_lib.iterdir():
        os.link(f, lib / f.name)
    # 2 chunks, one in flight at a time: the file fails once, whichever chunk crashes first.
    write_video(lib / "zz-hostile.mp4", duration_s=6.0, seed=13)
    (faults / "decode-always").write_text("hostile")
    try:
        index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=SMALL)
        report = index.add([lib], engine="ray", ray_settings={**RAY_SMALL, "decode_retries": 0, "inflight": 1})
    finally:
        (faults / "decode-always").unlink()
    assert sorted(Path(p).name for p in report.indexed) == ["long-clip.mp4", "tone.wav"]
    [(path, reason)] = report.failed
    assert Path(path).name == "zz-hostile.mp4" and "process died" in reason
    assert files_of(index)[path][0] == "failed"


DRIVER = textwrap.dedent("""
    import sys, ray
    from avsearch import Index
    from avsearch.store import IndexSettings
    ray.init(address=sys.argv[1], logging_level="WARNING", log_to_driver=False)
    index = Index.open(sys.argv[2], model="tiny", create=True, settings=IndexSettings(clip_s=2.0))
    index.add([sys.argv[3]], engine="ray", partial_commit_s=4.0, ray_settings={"chunk_s": 4.0, "decode_retries": 1, "actor_cpus": 0})
""")


def run_driver_until_fault(ray_cluster, fault: str, value: str, index_dir, lib) -> None:
    """Index `lib` on Ray in a driver process that the fault file `fault` kills with SIGKILL."""
    address, faults = ray_cluster
    (faults / fault).write_text(value)
    try:
        out = subprocess.run([sys.executable, "-c", DRIVER, address, index_dir, lib],
                             capture_output=True, text=True, timeout=240)
    finally:
        (faults / fault).unlink()
    assert out.returncode == -9, out.stderr[-2000:]


def test_a_driver_killed_with_sigkill_resumes_to_the_clean_result(tmp_path, small_lib, small_reference, ray_cluster):
    # dies right after its first commit: a part of the long file
    run_driver_until_fault(ray_cluster, "driver-after", "1", tmp_path / "idx", small_lib)
    index = Index.open(tmp_path / "idx")
    statuses = {Path(p).name: s for p, (s, _, _) in files_of(index).items()}
    assert statuses.get("long-clip.mp4") == "partial", statuses  # killed between the parts of one file
    report = index.add([small_lib], engine="ray", partial_commit_s=4.0, ray_settings=RAY_SMALL)
    assert report.plan_counts["resume"] == 1 and not report.failed
    assert_same_index(small_reference, index)


def test_a_driver_killed_after_its_workers_wrote_fragments_resumes_and_leaves_no_orphan_files(
        tmp_path, small_lib, small_reference, ray_cluster):
    # Dies just before the commit that completes the long file: its first chunks are committed as
    # parts, the last chunk's fragments are written by the actor and never committed.
    run_driver_until_fault(ray_cluster, "driver-before-final", "long-clip", tmp_path / "idx", small_lib)
    assert unreferenced_data_files(tmp_path / "idx"), "no fragment was left uncommitted: the fault missed"
    index = Index.open(tmp_path / "idx")
    statuses = {Path(p).name: s for p, (s, _, _) in files_of(index).items()}
    assert statuses.get("long-clip.mp4") == "partial", statuses
    report = index.add([small_lib], engine="ray", partial_commit_s=4.0, ray_settings=RAY_SMALL)
    assert report.plan_counts["resume"] == 1 and not report.failed
    assert_same_index(small_reference, index)
    assert not unreferenced_data_files(tmp_path / "idx")


def test_the_driver_receives_clip_ids_and_fragment_metadata_never_vectors(tmp_path, small_lib, small_reference,
                                                                         ray_cluster, monkeypatch):
    import pickle

    from avsearch.indexer.distributed import engine

    received = []
    real_take = engine._Run.take
    monkeypatch.setattr(engine._Run, "take", lambda self, j, idxs, result: (received.append(result),
                                                                            real_take(self, j, idxs, result))[1])
    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=SMALL)
    report = index.add([small_lib], engine="ray", ray_settings=RAY_SMALL)
    assert not report.failed and len(received) >= 2  # one result per chunk

    arrays = []

    class Spy(pickle.Pickler):  # every object pickling the result reaches (what Ray ships back)
        def persistent_id(self, obj):
            if isinstance(obj, np.ndarray):
                arrays.append(obj.shape)
            return None

    for result in received:
        Spy(io.BytesIO()).dump(result)
    assert not arrays, f"arrays travelled to the driver: {arrays}"
    assert sum(len(r.clip_ids) for r in received) == report.clips_added == len(clips_of(index))
    assert all(r.fragments for r in received)
    assert_same_index(small_reference, index)


def test_an_embed_worker_that_cannot_write_into_the_index_fails_its_file_with_the_fix(tmp_path):
    # No Ray: the worker's own code, with an index path its node does not see.
    from avsearch.indexer.distributed.work import ClipDestination, DecodedChunk, EmbedWorker
    from avsearch.store.fragments import FragmentTarget
    from avsearch.types import Clip, View

    class Ones:
        model_id, dim = "m", 4

        def embed_clips(self, clips, view):
            return np.ones((len(clips), 4), np.float32)

    chunk = DecodedChunk("/a.wav", [Clip("/a.wav", 0.0, 2.0, audio=np.zeros(32_000, np.float32))])
    target = FragmentTarget(str(tmp_path / "not-here" / "clips.lance"), 4, "2.2")
    out = EmbedWorker(Ones).embed(chunk, [View.AUDIO], ClipDestination(target, "/a.wav", "fp", 2.0, "m"))
    assert out.error is not None and "every node reaches" in out.error, out.error
    assert not out.clip_ids and not out.fragments
    # ... and the check each actor answers before any work (engine.py stops the run on it)
    problem = EmbedWorker(Ones).check_destination(target)
    assert problem is not None and "every node reaches" in problem


def test_the_cli_indexes_on_ray_and_its_dry_run_starts_no_ray_work(tmp_path, small_lib, small_reference,
                                                                    ray_cluster, monkeypatch):
    # In-process: the session's Ray is up and the run uses it (an --ray-address would be ignored
    # here: a connected process keeps its Ray). Joining a cluster from a fresh process is what the
    # driver-kill test above does.
    from typer.testing import CliRunner

    from avsearch.cli.app import app
    from avsearch.indexer.distributed import engine

    base = ["index", str(small_lib), "--index", str(tmp_path / "idx"), "--model", "tiny", "--clip-seconds", "2",
            "--json", "--ray"]
    runner = CliRunner()
    engine_runs = []
    real_run = engine.run_pipeline_ray
    monkeypatch.setattr(engine, "run_pipeline_ray", lambda *a, **k: (engine_runs.append(a), real_run(*a, **k)))
    dry = runner.invoke(app, [*base, "--dry-run"])
    assert dry.exit_code == 0, dry.output[-2000:]
    assert engine_runs == [] and not (tmp_path / "idx").exists()
    out = runner.invoke(app, base)
    assert out.exit_code == 0, out.output[-2000:]
    assert len(engine_runs) == 1 and json.loads(out.stdout)["indexed"] == 2
    assert sorted(clips_of(Index.open(tmp_path / "idx"))) == sorted(clips_of(small_reference))


def test_a_ray_run_with_another_model_than_the_indexs_stops_before_any_clip(tmp_path, small_lib, small_reference,
                                                                              ray_cluster):
    from avsearch.errors import ModelMismatchError
    from avsearch.indexer.distributed import engine
    from avsearch.models.wave import make_tiny_checkpoint

    other = make_tiny_checkpoint(tmp_path / "other-tiny", seed=7)  # the tiny architecture, other weights
    shutil.copytree(small_reference.path, tmp_path / "idx")
    lib = tmp_path / "lib"
    lib.mkdir()
    for f in small_lib.iterdir():
        os.link(f, lib / f.name)
    write_audio(lib / "new.wav", duration_s=2.0, seed=14)  # work for the embed actors
    index = Index.open(tmp_path / "idx", model=str(other))
    with pytest.raises(ModelMismatchError, match="--model"):
        index.add([lib], engine="ray", ray_settings=RAY_SMALL)
    assert not engine._ACTORS, "the other model's actors were kept, holding their GPUs"
    again = Index.open(tmp_path / "idx")
    assert clips_of(again).keys() == clips_of(small_reference).keys()
    assert not any(p.endswith("new.wav") for p in files_of(again))


def test_a_new_index_on_ray_reports_progress_and_the_driver_keeps_no_model(tmp_path, small_lib, small_reference,
                                                                            ray_cluster, monkeypatch):
    from avsearch.indexer.report import COMMITTING, EMBEDDING, LOADING_MODEL, PHASES, SCANNING
    from avsearch.store import Store

    events = []  # (phase, clips_decoded) of each progress event, and "commit" at each store commit
    real_commit = Store.commit
    monkeypatch.setattr(Store, "commit", lambda self, c: (events.append("commit"), real_commit(self, c))[1])
    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=SMALL)
    report = index.add([small_lib], engine="ray", ray_settings=RAY_SMALL,
                       progress=lambda p: events.append((p.phase, p.clips_decoded)))
    assert len(report.indexed) == 2 and not report.failed
    assert index._embedder is None, "the driver kept its copy of the model: the actors have their own"
    phases = [e[0] for e in events if e != "commit"]
    assert phases[0] == SCANNING and LOADING_MODEL in phases  # a new index: the scan first, then the model's id
    order = [PHASES.index(p) for p in phases]
    assert order == sorted(order) and EMBEDDING in phases, phases  # phases only move forward
    embedding = [d for p, d in (e for e in events if e != "commit") if p == EMBEDDING]
    assert max(embedding) > 0, "clips_decoded never moved on Ray"
    last_clip_commit = max(i for i, e in enumerate(events) if e == "commit")
    assert events.index(next(e for e in events if e != "commit" and e[0] == COMMITTING)) < last_clip_commit, \
        "the committing phase was announced only after the last commit"
    assert_same_index(small_reference, index)


def test_a_kept_actor_pool_with_a_dead_actor_is_replaced(tmp_path, small_lib, small_reference, ray_cluster):
    import ray

    from avsearch.indexer.distributed import engine

    index = Index.open(tmp_path / "idx", model="tiny", create=True, settings=SMALL)
    index.add([small_lib / "tone.wav"], engine="ray", ray_settings=RAY_SMALL)  # leaves its pool in _ACTORS
    assert engine._ACTORS
    for pool in engine._ACTORS.values():
        for actor in pool:
            ray.kill(actor, no_restart=True)  # dead for good, as after its restarts are spent
    report = index.add([small_lib], engine="ray", ray_settings=RAY_SMALL)
    assert len(report.indexed) == 1 and not report.failed, report.failed
    assert_same_index(small_reference, index)


def test_more_embed_actors_than_gpus_is_refused_not_left_waiting():
    from avsearch.indexer.distributed.engine import RayPlacementError, actor_count

    assert actor_count(None, 0) == 1 and actor_count(None, 4) == 4 and actor_count(2, 0) == 2
    assert actor_count(2, 4) == 2
    with pytest.raises(RayPlacementError, match="embed_actors=4 or fewer"):
        actor_count(5, 4)


def test_without_ray_the_error_names_the_install_command_and_nothing_is_written(tmp_path, small_lib, monkeypatch):
    from avsearch.indexer.distributed import RayMissingError

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now raises ImportError
    with pytest.raises(RayMissingError, match=r'pip install "avsearch\[ray\]"'):
        Index.open(tmp_path / "idx", model="tiny", create=True).add([small_lib], engine="ray")
    assert not (tmp_path / "idx").exists()


def test_embed_actors_that_cannot_load_the_model_stop_the_run_with_the_loaders_error(tmp_path, small_lib,
                                                                                      small_reference, ray_cluster):
    # Not every file failed as "damaged or hostile" (the embed calls' ActorDiedError) with failed rows written.
    from avsearch.indexer.distributed.engine import EmbedActorError

    shutil.copytree(small_reference.path, tmp_path / "idx")
    (tmp_path / "broken-ckpt").mkdir()  # a local checkpoint without its files: every actor fails to load it
    lib = tmp_path / "lib"
    lib.mkdir()
    write_audio(lib / "new.wav", duration_s=2.0, seed=15)
    index = Index.open(tmp_path / "idx", model=str(tmp_path / "broken-ckpt"))
    with pytest.raises(EmbedActorError, match="has no config.json"):  # the loader's own words
        index.add([lib], engine="ray", ray_settings=RAY_SMALL)
    assert not any(p.endswith("new.wav") for p in files_of(Index.open(tmp_path / "idx")))
