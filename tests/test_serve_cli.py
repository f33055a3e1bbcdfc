"""`avsearch query` through a running service, its fallback, and `avsearch serve` as a command."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from avsearch.server.discovery import ServiceInfo, read_service_file, write_service_file
from serve_fixtures import start_service


def run(*args, cwd=None):
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "avsearch.cli.app", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=env, timeout=300)


@pytest.fixture(scope="module")
def served(tmp_path_factory, indexed_template):
    tmp = tmp_path_factory.mktemp("serve-cli")
    service, library = start_service(tmp, indexed_template)
    yield service, library
    service.stop()


@pytest.fixture
def service_searches(served, monkeypatch):
    """How many searches the service ran (its Index is in this process)."""
    service, _ = served
    calls = []
    real = service.index.search_detailed
    monkeypatch.setattr(service.index, "search_detailed", lambda *a, **kw: calls.append(a) or real(*a, **kw))
    return calls


def library_json(service, query, **options) -> str:
    """What `avsearch query --json` prints in-process, computed by the library here (a CLI run
    --no-server loads the model in a new process: each costs seconds, so the tests do it twice)."""
    hits = type(service.index).search_detailed(service.index, query, **options).hits
    return "".join(json.dumps(h.to_dict(), ensure_ascii=False) + "\n" for h in hits)


@pytest.mark.parametrize("args, query, options", [
    (["a busy street", "-k", "4"], dict(text="a busy street"), dict(k=4)),
    (["tone", "--instruction", "Is it music?", "--rerank-top", "3", "--min-score", "-1", "--view", "audio",
      "--no-merge"], dict(text="tone", instruction="Is it music?", target_views=["audio"]),
     dict(k=10, rerank_top=3, min_score=-1.0, merge_adjacent=False)),
    (["x", "--path", "library", "--glob", "*.wav", "--per-file", "1"],  # a relative folder: the CLI's, not the service's
     dict(text="x", path_prefix="LIBRARY", path_glob="*.wav"), dict(k=10, per_file=1)),
])
def test_query_asks_the_service_and_prints_the_librarys_answer(served, service_searches, args, query, options):
    from avsearch import Query

    service, library = served
    out = run("query", *args, "--json", "--index", service.index.path, cwd=library.parent)
    assert out.returncode == 0, out.stderr
    assert len(service_searches) == 1
    if query.get("path_prefix") == "LIBRARY":
        query["path_prefix"] = str(library)
    expected = library_json(service, Query(**query), **options)
    assert out.stdout == expected and expected


def test_the_table_is_the_same_both_ways(served, service_searches):
    service, library = served
    args = ["query", "a busy street", "-k", "3", "--view", "audio", "--index", service.index.path]
    via_service = run(*args, cwd=library.parent)
    in_process = run(*args, "--no-server", cwd=library.parent)
    assert via_service.returncode == in_process.returncode == 0, (via_service.stderr, in_process.stderr)
    assert len(service_searches) == 1  # --no-server did not ask it
    assert via_service.stdout == in_process.stdout and "street.mp4" in via_service.stdout


def test_media_and_like_queries_go_to_the_service(served, service_searches):
    from avsearch import Query, View

    service, library = served
    index = service.index.path
    out = run("query", "--video", library / "street.mp4", "--start", "2", "--end", "6", "--json", "--index", index)
    assert out.returncode == 0, out.stderr
    assert len(service_searches) == 1
    assert out.stdout == library_json(service, Query(media=library / "street.mp4", view=View.VIDEO, start_s=2.0, end_s=6.0), k=10)
    clip = json.loads(out.stdout.splitlines()[0])["clip_id"]
    like = run("query", "--like", clip, "--json", "--index", index)
    assert like.returncode == 0 and len(service_searches) == 2
    assert like.stdout == library_json(service, Query(clip_id=clip), k=10)


def test_the_services_errors_read_as_in_process_ones(served, service_searches):
    service, library = served
    via_service = run("query", "--like", "nope", "--index", service.index.path)
    in_process = run("query", "--like", "nope", "--index", service.index.path, "--no-server")
    assert len(service_searches) == 1
    assert (via_service.returncode, via_service.stderr) == (in_process.returncode, in_process.stderr)
    assert in_process.returncode == 8 and "no clip with id nope" in in_process.stderr


def test_a_stale_service_file_falls_back_to_in_process(served, service_searches, tmp_path):
    from avsearch import Query

    service, _ = served
    shutil.copytree(service.index.path, tmp_path / "idx", ignore=shutil.ignore_patterns("serve.json"))
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    write_service_file(tmp_path / "idx", ServiceInfo(f"http://127.0.0.1:{port}", "gone", 1))
    out = run("query", "a busy street", "--json", "--index", tmp_path / "idx")
    assert out.returncode == 0, out.stderr
    assert not service_searches
    assert out.stdout == library_json(service, Query(text="a busy street"), k=10)


def test_serve_help_teaches_with_examples():
    out = run("serve", "--help")
    assert out.returncode == 0 and "Example" in out.stdout and "--no-token" in out.stdout


def test_avsearch_serve_serves_the_page_and_cleans_up_on_sigterm(indexed_template, tmp_path):
    root, _ = indexed_template
    shutil.copytree(root / "index", tmp_path / "idx")
    proc = subprocess.Popen([sys.executable, "-m", "avsearch.cli.app", "serve", "--index", tmp_path / "idx", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            info = read_service_file(tmp_path / "idx")
            if info is not None or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert info is not None, proc.communicate(timeout=5)
        assert httpx.get(f"{info.url}/").status_code == 401  # the token is asked on loopback too
        page = httpx.get(f"{info.url}/?token={info.token}", follow_redirects=True)
        assert page.status_code == 200 and 'id="hits"' in page.text
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    # uvicorn shuts down, then re-raises the signal to the CLI's handler: the documented SIGTERM stop
    assert proc.returncode == 143 and "stopped by SIGTERM" in err, err
    assert f"{info.url}/?token={info.token}" in err  # the printed link
    assert not (tmp_path / "idx" / "serve.json").exists()
