"""Stopping and refusing cleanly (issue 17): SIGTERM takes the Ctrl-C path, and `index` on a missing
path creates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from avsearch import Index
from avsearch.store.lock import LOCK_NAME, WriteLock
from test_indexer import clip_set  # (path, start, end, view, clip_id) of every clip, sorted


def cli(*args) -> list[str]:
    return [sys.executable, "-m", "avsearch.cli.app", *map(str, args)]


def test_sigterm_mid_run_stops_like_ctrl_c_and_a_rerun_finishes_the_job(tmp_path):
    from avsearch.media.synth import write_video

    media = tmp_path / "media"
    # Enough work that the run is still embedding when the signal comes: a new index takes its
    # write lock only once the model is loaded, right before the embedding starts.
    for i in range(4):
        write_video(media / f"v{i}.mp4", duration_s=16.0, audio=True, tone_hz=200.0 + 70 * i, seed=30 + i)
    idx = tmp_path / "idx"
    proc = subprocess.Popen(cli("index", media, "--index", idx, "--model", "tiny", "--workers", "1"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "COLUMNS": "200"})
    try:
        lock = idx / LOCK_NAME
        deadline = time.monotonic() + 120
        while not (lock.exists() and lock.read_text()) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)  # the run holds the write lock: it is past model loading, into the work
        time.sleep(0.2)
        assert proc.poll() is None, "the indexer finished before it could be stopped"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 143, err
    assert "stopped by SIGTERM: files committed so far are kept; re-run to finish" in err
    assert "Traceback" not in err
    assert lock.read_text() == ""  # the dead run's PID is not left behind
    WriteLock(idx).acquire().release()  # and the lock is free

    resumed = Index.open(idx)
    resumed.add([media])
    clean = Index.open(tmp_path / "clean", model="tiny", create=True)
    clean.add([media])
    assert clip_set(resumed) == clip_set(clean)


def test_index_on_a_missing_path_creates_nothing(tmp_path):
    out = subprocess.run(cli("index", tmp_path / "nope", "--index", tmp_path / "idx", "--model", "tiny"),
                         capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "300"})
    assert out.returncode == 1 and "does not exist" in out.stderr and "nope" in out.stderr, out.stderr
    assert not (tmp_path / "idx").exists()

