"""`avsearch serve`'s JSON API over real HTTP: every endpoint, every error, the security defaults."""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import stat
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from avsearch import Query, View
from serve_fixtures import MAX_UPLOAD_MB, TOKEN, start_service


@pytest.fixture(scope="module")
def served(tmp_path_factory, indexed_template):
    tmp = tmp_path_factory.mktemp("serve-api")
    jobs_root = tmp / "incoming"
    (jobs_root / "new").mkdir(parents=True)
    service, library = start_service(tmp, indexed_template, roots=[jobs_root])
    yield service, library, jobs_root
    service.stop()


@pytest.fixture(scope="module")
def client(served):
    service, _, _ = served
    with httpx.Client(base_url=service.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as c:
        yield c


def in_process(service, query, **options):
    """What the library itself answers, on the very Index the service holds."""
    return [h.to_dict() for h in service.index.search_detailed(query, **options).hits]


def hit_dicts(answer):
    return [{k: v for k, v in h.items() if k != "file_name"} for h in answer["hits"]]


def assert_error(response, status, *words):
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error", "kind", "exit_code"}
    assert "Traceback" not in response.text
    for word in words:
        assert word in body["error"], body


# -- searches: each mirrors the library's answer exactly -----------------------------------------

def test_text_search_is_the_librarys_answer(served, client):
    service, _, _ = served
    answer = client.post("/api/search", json={"text": "a street at night", "k": 5}).json()
    assert hit_dicts(answer) == in_process(service, Query(text="a street at night"), k=5)
    assert 0 < len(answer["hits"]) <= 5 and answer["candidates"] >= len(answer["hits"])
    assert answer["hits"][0]["file_name"] == Path(answer["hits"][0]["path"]).name


def test_filters_views_per_file_min_score_and_no_merge(served, client):
    service, library, _ = served
    request = {"text": "birdsong", "k": 3, "views": ["audio", "av"], "per_file": 1, "min_score": -1.0,
               "merge": False, "path_prefix": str(library), "path_glob": "*.mp4"}
    answer = client.post("/api/search", json=request).json()
    expected = in_process(service, Query(text="birdsong", target_views=[View.AUDIO, View.AV], path_prefix=str(library),
                                         path_glob="*.mp4"), k=3, per_file=1, min_score=-1.0, merge_adjacent=False)
    assert hit_dicts(answer) == expected and expected
    assert {h["view"] for h in answer["hits"]} <= {"audio", "av"}
    assert all(h["path"].endswith(".mp4") for h in answer["hits"])
    assert len({h["path"] for h in answer["hits"]}) == len(answer["hits"])  # one per file


def test_more_like_this_leaves_the_clip_out(served, client):
    service, _, _ = served
    first = client.post("/api/search", json={"text": "traffic", "k": 1}).json()["hits"][0]
    answer = client.post("/api/search", json={"clip_id": first["clip_id"], "k": 4}).json()
    assert hit_dicts(answer) == in_process(service, Query(clip_id=first["clip_id"]), k=4)
    assert first["clip_id"] not in [h["clip_id"] for h in answer["hits"]]


def test_uploaded_sound_finds_its_own_file(served, client):
    service, library, _ = served
    with open(library / "speech.wav", "rb") as f:
        answer = client.post("/api/search/media", files={"file": ("q.wav", f)},
                             data={"request": json.dumps({"k": 3, "views": ["audio"]})}).json()
    assert hit_dicts(answer) == in_process(service, Query(media=library / "speech.wav", target_views=[View.AUDIO]), k=3)
    assert Path(answer["hits"][0]["path"]).name == "speech.wav" and answer["hits"][0]["score"] > 0.99


def test_uploaded_video_range_read_as_pictures(served, client):
    service, library, _ = served
    options = {"k": 3, "view": "video", "start_s": 2.0, "end_s": 6.0}
    with open(library / "street.mp4", "rb") as f:
        answer = client.post("/api/search/media", files={"file": ("street.mp4", f)},
                             data={"request": json.dumps(options)}).json()
    expected = in_process(service, Query(media=library / "street.mp4", view=View.VIDEO, start_s=2.0, end_s=6.0), k=3)
    assert hit_dicts(answer) == expected and expected


def test_instruction_rerank_reports_its_work(served, client):
    service, _, _ = served
    answer = client.post("/api/search", json={"text": "a tone", "k": 3, "instruction": "Is it music?",
                                              "rerank_top": 4}).json()
    assert answer["rerank"] is not None and answer["rerank"]["embedded"] + answer["rerank"]["cached"] > 0
    expected = in_process(service, Query(text="a tone", instruction="Is it music?"), k=3, rerank_top=4)
    assert hit_dicts(answer) == expected


# -- facts and clips ----------------------------------------------------------------------------

def test_status_and_failures(served, client):
    service, library, jobs_root = served
    status = client.get("/api/status").json()
    stats = service.index.stats()
    assert (status["files_ok"], status["clips"], status["clips_by_view"]) == (stats["files_ok"], stats["clips"], stats["clips_by_view"])
    assert status["model_source"] == "tiny" and status["roots"] == [str(jobs_root.resolve())]
    failures = client.get("/api/failures").json()
    assert [Path(f["path"]).name for f in failures] == ["corrupt.mp4"] and failures[0]["error"]


def test_clip_facts_thumbnail_and_sound_only_clip(served, client):
    hits = client.post("/api/search", json={"text": "x", "k": 50, "merge": False}).json()["hits"]
    video_hit = next(h for h in hits if h["path"].endswith("street.mp4"))
    facts = client.get(f"/api/clips/{video_hit['clip_id']}").json()
    assert facts == {k: video_hit[k] for k in ("clip_id", "path", "file_name", "start_s", "end_s", "view")}
    thumb = client.get(f"/api/clips/{video_hit['clip_id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
    assert thumb.content[:3] == b"\xff\xd8\xff"
    audio_hit = next(h for h in hits if h["path"].endswith("speech.wav"))
    sound = client.get(f"/api/clips/{audio_hit['clip_id']}/thumbnail")  # a sound-only file: its spectrogram
    assert sound.status_code == 200 and sound.content[:3] == b"\xff\xd8\xff"
    picture = np.asarray(Image.open(io.BytesIO(sound.content)).convert("L"), dtype=float)
    assert picture.shape == (180, 320) and picture.std() > 20


def test_media_answers_range_requests(served, client):
    hits = client.post("/api/search", json={"text": "x", "k": 50}).json()["hits"]
    hit = next(h for h in hits if h["path"].endswith("garden.mp4"))
    whole = Path(hit["path"]).read_bytes()
    full = client.get(f"/api/clips/{hit['clip_id']}/media")
    assert full.status_code == 200 and full.content == whole and full.headers["accept-ranges"] == "bytes"
    assert full.headers["content-type"] == "video/mp4"
    part = client.get(f"/api/clips/{hit['clip_id']}/media", headers={"Range": "bytes=100-299"})
    assert part.status_code == 206 and part.content == whole[100:300]
    assert part.headers["content-range"] == f"bytes 100-299/{len(whole)}"


def test_openapi_docs_describe_the_typed_models(client):
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"SearchRequest", "MediaSearchRequest", "HitModel", "SearchResponse", "ErrorModel"} <= set(schema["components"]["schemas"])
    assert set(schema["paths"]) >= {"/api/search", "/api/search/media", "/api/status", "/api/failures",
                                    "/api/clips/{clip_id}/thumbnail", "/api/clips/{clip_id}/media", "/api/jobs"}


def test_the_page_and_its_files_come_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and 'id="hits"' in page.text
    assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
    for name in ("app.js", "style.css"):
        assert client.get(f"/static/{name}").status_code == 200


# -- errors: JSON with a message, never a traceback ---------------------------------------------

@pytest.mark.parametrize("body, words", [
    ({"text": "a", "clip_id": "b"}, ["exactly one of text and clip_id"]),
    ({}, ["exactly one of text and clip_id"]),
    ({"text": "a", "k": 0}, ["k"]),
    ({"text": "a", "views": ["smell"]}, ["views"]),
    ({"text": "a", "media": "/etc/passwd"}, ["media"]),  # no field names a file: refused, never opened
])
def test_invalid_search_requests_are_422(client, body, words):
    assert_error(client.post("/api/search", json=body), 422, *words)


def test_malformed_json_is_422(client):
    assert_error(client.post("/api/search", content=b"{not json", headers={"Content-Type": "application/json"}), 422)


def test_unknown_clip_is_a_query_error_or_404(client):
    response = client.post("/api/search", json={"clip_id": "../../etc/passwd"})
    assert_error(response, 400, "no clip with id")
    assert response.json()["exit_code"] == 8  # the CLI's exit code for a bad query
    for tail in ("", "/thumbnail", "/media"):
        assert_error(client.get(f"/api/clips/nope{tail}"), 404, "no clip nope")


def test_unreadable_upload_and_empty_range_are_400(client):
    response = client.post("/api/search/media", files={"file": ("x.mp4", b"not media" * 50)})
    assert_error(response, 400, "cannot read the query file")
    with open(Path(__file__), "rb") as f:  # any bytes; the range check comes first for a good file too
        assert_error(client.post("/api/search/media", files={"file": ("x.wav", f)},
                                 data={"request": '{"k": "many"}'}), 422, "k")


def test_unknown_route_and_method(client):
    assert_error(client.get("/api/nothing"), 404)
    assert_error(client.get("/api/search"), 405)


def test_unexpected_error_is_500_json_without_traceback(served, client, monkeypatch):
    service, _, _ = served

    def broken():
        raise RuntimeError("disk on fire /secret/path")

    monkeypatch.setattr(service.index, "stats", broken)
    response = client.get("/api/status")
    assert_error(response, 500, "unexpected error: RuntimeError")
    assert "/secret/path" not in response.text


# -- security defaults --------------------------------------------------------------------------

@pytest.mark.parametrize("method, path", [
    ("GET", "/"), ("GET", "/docs"), ("GET", "/openapi.json"), ("GET", "/static/app.js"), ("GET", "/api/status"),
    ("GET", "/api/failures"), ("POST", "/api/search"), ("POST", "/api/search/media"), ("GET", "/api/clips/x"),
    ("GET", "/api/clips/x/thumbnail"), ("GET", "/api/clips/x/media"), ("POST", "/api/jobs"), ("GET", "/api/jobs/x"),
])
def test_every_request_needs_the_token(served, method, path):
    service, _, _ = served
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        assert_error(httpx.request(method, service.url + path, headers=headers), 401, "token")


def test_the_printed_link_sets_a_cookie_for_the_page(served):
    service, _, _ = served
    assert service.page_url == f"{service.url}/?token={TOKEN}"
    with httpx.Client(base_url=service.url) as browser:
        first = browser.get(f"/?token={TOKEN}", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/"  # the token leaves the address bar
        assert "HttpOnly" in first.headers["set-cookie"] and "SameSite=Strict" in first.headers["set-cookie"]
        assert browser.get("/api/status").status_code == 200  # by the cookie alone


def test_the_listening_socket_says_it_is_tcp(served):
    # asyncio sets TCP_NODELAY only on sockets with proto IPPROTO_TCP; without it each answer
    # waited ~40 ms for the client's delayed ACK (benchmarks/serve.py found it)
    service, _, _ = served
    assert service.socket.proto == socket.IPPROTO_TCP


def test_the_service_file_is_owner_only_and_names_the_service(served):
    service, _, _ = served
    path = service.index.path / "serve.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"url": service.url, "token": TOKEN, "pid": os.getpid()}


def test_upload_over_the_limit_is_413(client):
    big = b"\0" * int(MAX_UPLOAD_MB * 1_000_000 + 1000)
    assert_error(client.post("/api/search/media", files={"file": ("big.wav", big)}), 413, "--max-upload-mb")


def test_streamed_upload_over_the_limit_is_413(client):
    def chunks():  # no Content-Length: the body is counted as it arrives
        yield (b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="big.wav"\r\n'
               b"Content-Type: application/octet-stream\r\n\r\n")
        for _ in range(int(MAX_UPLOAD_MB * 4)):
            yield b"\0" * 300_000

    response = client.post("/api/search/media", content=chunks(),
                           headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert_error(response, 413, "--max-upload-mb")


def test_non_loopback_hosts_need_a_token():
    from avsearch.server.config import ServeConfig, ServeConfigError

    with pytest.raises(ServeConfigError, match="needs a token"):
        ServeConfig.make(host="0.0.0.0", no_token=True)
    assert ServeConfig.make(host="0.0.0.0").token  # generated
    assert ServeConfig.make(host="127.0.0.1", no_token=True).token is None
    assert ServeConfig.make().host == "127.0.0.1"


# -- indexing jobs ------------------------------------------------------------------------------

@pytest.mark.parametrize("body, status, words", [
    ({"folder": "../"}, 400, ["not inside the root"]),
    ({"folder": "/etc"}, 400, ["not inside the root"]),
    ({"folder": "missing"}, 400, ["not a folder"]),
    ({"root": 3}, 400, ["no root #3"]),
    ({"path": "/etc"}, 422, ["path"]),
])
def test_job_requests_outside_the_roots_are_refused(client, body, status, words):
    assert_error(client.post("/api/jobs", json=body), status, *words)


def test_unknown_job_is_404(client):
    assert_error(client.get("/api/jobs/nope"), 404, "no job nope")


def test_an_indexing_job_shares_the_model_and_queries_see_its_files(served, client, library_template):
    from avsearch.media.synth import write_audio, write_video

    service, library, jobs_root = served
    # New content (a copy of an indexed file would be recorded as its duplicate, not embedded)...
    write_video(jobs_root / "new" / "garden-copy.mp4", duration_s=3.0, audio=True, tone_hz=660.0, seed=21)
    write_audio(jobs_root / "new" / "birds-copy.flac", duration_s=2.0, tone_hz=1200.0, seed=22)
    # ...and a true copy, which hits of its content list (the service's JSON `duplicate_paths`).
    shutil.copy(library_template / "speech.wav", jobs_root / "new" / "speech-copy.wav")
    model_before = service.index.embedder()
    job = client.post("/api/jobs", json={"root": 0, "folder": "new"})
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    answered_meanwhile, phases = 0, []
    for _ in range(600):
        state = client.get(f"/api/jobs/{job_id}").json()
        phases.append(state["phase"])
        if state["state"] != "running":
            break
        answered_meanwhile += client.post("/api/search", json={"text": "x", "k": 2}).status_code == 200
        time.sleep(0.1)
    assert state["state"] == "done", state
    assert state["report"]["indexed"] == 2 and state["files_done"] == 2 and state["clips_done"] > 0
    # the job says what the run does now, in the run's own order (polls may miss quick phases)
    from avsearch.indexer.report import PHASES

    seen = [p for i, p in enumerate(phases) if p is not None and p not in phases[:i]]
    assert seen and all(p in PHASES for p in seen) and seen == sorted(seen, key=PHASES.index)
    assert service.index.embedder() is model_before  # the loaded model was shared, not loaded again
    found = client.post("/api/search", json={"text": "x", "k": 10, "path_prefix": str((jobs_root / "new").resolve())}).json()
    assert {h["file_name"] for h in found["hits"]} == {"garden-copy.mp4", "birds-copy.flac"}
    assert state["report"]["duplicates"] == [{"path": str((jobs_root / "new" / "speech-copy.wav").resolve()),
                                              "same_as": str(library / "speech.wav")}]
    everything = client.post("/api/search", json={"text": "x", "k": 20, "merge": False}).json()["hits"]
    speech = [h for h in everything if h["file_name"] == "speech.wav"]
    assert speech and all(h["duplicate_paths"] == [str((jobs_root / "new" / "speech-copy.wav").resolve())] for h in speech)
    assert all(h["duplicate_paths"] == [] for h in everything if h["file_name"] != "speech.wav")
    assert client.get("/api/status").json()["job"]["id"] == job_id


def test_a_job_follows_no_symlink_out_of_the_served_roots(served, client):
    from avsearch.media.synth import write_audio

    service, _, jobs_root = served
    outside = jobs_root.parent / "outside-the-roots"  # beside the served root, never to be read by a job
    write_audio(outside / "folder" / "secret.wav", duration_s=2.0, tone_hz=300.0, seed=41)
    write_audio(outside / "secret-file.wav", duration_s=2.0, tone_hz=350.0, seed=42)
    write_audio(jobs_root / "inside-real" / "inside.wav", duration_s=2.0, tone_hz=500.0, seed=43)
    linked = jobs_root / "linked"
    linked.mkdir()
    os.symlink(outside / "folder", linked / "out-folder")
    os.symlink(outside / "secret-file.wav", linked / "out-file.wav")
    os.symlink(jobs_root / "inside-real", linked / "in-folder")
    job_id = client.post("/api/jobs", json={"root": 0, "folder": "linked"}).json()["id"]
    for _ in range(600):
        state = client.get(f"/api/jobs/{job_id}").json()
        if state["state"] != "running":
            break
        time.sleep(0.1)
    assert state["state"] == "done", state
    report = state["report"]
    assert report["indexed"] == 1 and report["failed"] == []
    base = linked.resolve()
    assert sorted((s["path"], "outside the folders this run may read" in s["reason"]) for s in report["skipped"]) == [
        (str(base / "out-file.wav"), True), (str(base / "out-folder"), True)]
    paths = {r["path"] for r in service.index.store.file_rows()}
    assert str(base / "in-folder" / "inside.wav") in paths
    assert not any("secret" in p or "out-f" in p for p in paths), paths
