"""An index on an object store (issue 14): `s3://bucket/prefix` as the index, against an S3 server
on loopback (moto's, started once for this module). The tables and avsearch.json live in the
bucket, the ANN index and the locks in a local cache folder; answers must equal a local index's.
"""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from contextlib import contextmanager

import numpy as np
import pytest

from avsearch import Index
from avsearch.errors import UsageError
from avsearch.locations import IndexURI
from avsearch.media.synth import write_audio
from avsearch.objstore import ObjectStoreError
from s3_fixtures import start_s3

BUCKET = "avsearch-test"
QUERIES = ["a street at night", "birds singing", "a low hum"]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    """An S3 endpoint on 127.0.0.1 with one bucket; avsearch (and Lance, and the Ray workers
    through the fragment target) reach it through $AVSEARCH_STORAGE_OPTIONS. Yields the endpoint."""
    server, endpoint, options = start_s3(BUCKET)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AVSEARCH_STORAGE_OPTIONS", json.dumps(options))
        mp.setenv("AVSEARCH_INDEX_CACHE", str(tmp_path_factory.mktemp("index-cache")))
        yield endpoint
    server.stop()


@contextmanager
def checked_credentials(endpoint: str):
    """Within the block the S3 server checks credentials (moto accepts any by default): only the
    keys it knows, none here, are let in."""
    def reset_auth(count: str) -> None:
        request = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", data=count.encode(), method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request).read()

    reset_auth("0")
    try:
        yield
    finally:
        reset_auth("inf")


def objects(endpoint: str, prefix: str) -> list[str]:
    """Keys under `prefix` in the bucket, read with boto3 (not through the code under test)."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [o["Key"] for page in pages for o in page.get("Contents", [])]


@pytest.fixture(scope="module")
def s3_index(s3, indexed_template):
    """The session's library indexed into the bucket (the same files as `indexed_template`'s local
    index, so clip ids, vectors and hits can be compared one to one)."""
    root, local_report = indexed_template
    index = Index.open(f"s3://{BUCKET}/idx", model="tiny", create=True)
    report = index.add([root / "library"])
    return index, report, Index.open(root / "index"), local_report


def hits(index: Index) -> list[list[tuple]]:
    return [[(h.clip_id, h.path, h.start_s, h.end_s, h.view.value, round(h.score, 5)) for h in index.search(q, k=8)]
            for q in QUERIES]


def clips_of(index: Index) -> dict[str, np.ndarray]:
    t = index.store.tables.clips.to_arrow()
    return dict(zip(t.column("clip_id").to_pylist(), np.stack(t.column("vector").to_numpy(zero_copy_only=False))))


def test_an_s3_index_holds_its_tables_in_the_bucket_and_answers_as_the_local_one(s3, s3_index):
    index, report, local, local_report = s3_index
    assert isinstance(index.path, IndexURI) and str(index.path) == f"s3://{BUCKET}/idx"
    assert sorted(report.indexed) == sorted(local_report.indexed) and report.clips_added == local_report.clips_added
    ours, theirs = clips_of(index), clips_of(local)
    assert ours and sorted(ours) == sorted(theirs)
    assert max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours) <= 1e-5
    assert hits(index) == hits(local)
    keys = objects(s3, "idx/")
    assert "idx/avsearch.json" in keys
    assert any(k.startswith("idx/lance/clips.lance/data/") for k in keys)
    cache = index.path.cache  # the local part: no table, only what needs a file system
    assert (cache / "ann").is_dir() and not (cache / "lance").exists() and not (cache / "avsearch.json").exists()
    assert index.stats()["index"] == f"s3://{BUCKET}/idx"


def test_a_rerun_on_an_s3_index_finds_everything_unchanged(s3_index, indexed_template):
    index, *_ = s3_index
    root, _ = indexed_template
    again = index.add([root / "library"])
    assert again.clips_added == 0 and again.plan_counts["new"] == 0 and again.unchanged == 6


def test_a_fresh_machine_with_an_empty_cache_rebuilds_the_ann_index_and_keeps_it(s3, s3_index, tmp_path,
                                                                               monkeypatch):
    index, *_ = s3_index
    expected = hits(index)
    monkeypatch.setenv("AVSEARCH_INDEX_CACHE", str(tmp_path / "fresh"))
    fresh = Index.open(f"s3://{BUCKET}/idx")
    assert fresh.path.cache.parent == tmp_path / "fresh" and not (fresh.path.cache / "ann").exists()
    assert hits(fresh) == expected
    state = fresh.store.ann_state()
    assert state["fresh"] and state["covers_version"] == state["table_version"]
    # The next query process on this machine loads the kept index instead of building one.
    from avsearch.store.store import Store

    def no_rebuild(self, ann):
        raise AssertionError("the cached ANN index should have been served")

    monkeypatch.setattr(Store, "_update_or_rebuild", no_rebuild)
    assert hits(Index.open(f"s3://{BUCKET}/idx")) == expected


def test_a_deleted_source_file_leaves_an_s3_index(s3, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    write_audio(lib / "a.wav", duration_s=2.0, seed=21)
    write_audio(lib / "b.wav", duration_s=2.0, seed=22, tone_hz=660.0)
    index = Index.open(f"s3://{BUCKET}/deletes", model="tiny", create=True)
    assert len(index.add([lib]).indexed) == 2
    reader = Index.open(f"s3://{BUCKET}/deletes")  # another process's handle, opened before
    reader._embedder = index.embedder()
    assert {h.path for h in reader.search("a tone", k=10)} == {str(lib / "a.wav"), str(lib / "b.wav")}
    (lib / "b.wav").unlink()
    report = index.add([lib])
    assert report.deleted == [str(lib / "b.wav")]
    assert {r["path"] for r in index.store.file_rows()} == {str(lib / "a.wav")}
    assert {h.path for h in index.search("a tone", k=10)} == {str(lib / "a.wav")}
    assert {h.path for h in reader.search("a tone", k=10)} == {str(lib / "a.wav")}  # sees the commit


def test_the_cli_indexes_into_and_queries_an_s3_index(s3, s3_index, tmp_path, cli_in_process):
    lib = tmp_path / "lib"
    lib.mkdir()
    write_audio(lib / "tone.wav", duration_s=2.0, seed=31)
    uri = f"s3://{BUCKET}/cli"
    out = cli_in_process("index", lib, "--index", uri, "--model", "tiny")
    assert f"Indexed into {uri}" in " ".join(out.split()), out
    rows = [json.loads(line) for line in cli_in_process("query", "a tone", "--index", uri, "--json").splitlines()]
    assert rows and {r["path"] for r in rows} == {str(lib / "tone.wav")}
    assert json.loads(cli_in_process("status", "--index", uri, "--json"))["index"] == uri


def test_a_bad_uri_a_missing_bucket_or_an_unreachable_endpoint_is_a_clear_error(s3, tmp_path, monkeypatch,
                                                                                capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UsageError, match="s3://BUCKET/PREFIX"):
        Index.open("ftp://host/idx", model="tiny", create=True)
    with pytest.raises(UsageError, match="with a bucket"):
        Index.open("s3://", model="tiny", create=True)
    assert not any(tmp_path.iterdir())  # no "ftp:" or "s3:" folder made here
    with pytest.raises(ObjectStoreError, match="bucket 'no-such-bucket' does not exist.*create it"):
        Index.open("s3://no-such-bucket/idx", model="tiny", create=True)
    # The CLI says so in one line, without a traceback.
    from avsearch.cli.app import main
    import sys

    monkeypatch.setattr(sys, "argv", ["avsearch", "query", "x", "--index", "s3://no-such-bucket/idx"])
    with pytest.raises(SystemExit) as exit:
        main()
    err = capsys.readouterr().err
    assert exit.value.code == 1 and "does not exist" in err and "Traceback" not in err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    options = {"aws_endpoint": f"http://127.0.0.1:{closed}", "allow_http": "true", "aws_access_key_id": "testing",
               "aws_secret_access_key": "testing", "aws_region": "us-east-1"}
    monkeypatch.setenv("AVSEARCH_STORAGE_OPTIONS", json.dumps(options))
    with pytest.raises(ObjectStoreError, match="cannot be reached.*endpoint"):
        Index.open(f"s3://{BUCKET}/idx")
    plain_http = {k: v for k, v in options.items() if k != "allow_http"}
    monkeypatch.setenv("AVSEARCH_STORAGE_OPTIONS", json.dumps(dict(plain_http, aws_endpoint=s3)))
    with pytest.raises(ObjectStoreError, match="plain http.*AWS_ALLOW_HTTP=true"):
        Index.open(f"s3://{BUCKET}/idx")
    monkeypatch.setenv("AVSEARCH_STORAGE_OPTIONS", json.dumps(dict(options, aws_endpoint=s3, aws_access_key_id="wrong")))
    with checked_credentials(s3), pytest.raises(ObjectStoreError, match="credentials were refused.*AWS_ACCESS_KEY_ID"):
        Index.open(f"s3://{BUCKET}/idx")
    no_keys = {k: v for k, v in options.items() if not k.startswith("aws_access") and not k.startswith("aws_secret")}
    monkeypatch.setenv("AVSEARCH_STORAGE_OPTIONS", json.dumps(dict(no_keys, aws_endpoint=s3)))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/.aws
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance role to ask for
    with checked_credentials(s3), pytest.raises(ObjectStoreError, match="No AWS credentials are set"):
        Index.open(f"s3://{BUCKET}/idx")
    monkeypatch.setenv("AVSEARCH_STORAGE_OPTIONS", "{not json")
    with pytest.raises(UsageError, match="AVSEARCH_STORAGE_OPTIONS is not JSON"):
        Index.open(f"s3://{BUCKET}/idx")


def test_a_ray_run_writes_its_fragments_into_the_bucket_and_equals_a_local_run(s3, tmp_path, ray_cluster):
    lib = tmp_path / "lib"
    lib.mkdir()
    write_audio(lib / "a.wav", duration_s=3.0, seed=41)
    write_audio(lib / "b.wav", duration_s=2.0, seed=42, tone_hz=550.0)
    local = Index.open(tmp_path / "local", model="tiny", create=True)
    local.add([lib])
    index = Index.open(f"s3://{BUCKET}/ray", model="tiny", create=True)
    report = index.add([lib], engine="ray", ray_settings={"actor_cpus": 0})
    assert len(report.indexed) == 2 and not report.failed
    ours, theirs = clips_of(index), clips_of(local)
    assert ours and sorted(ours) == sorted(theirs)
    assert max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours) <= 1e-5
    assert any(k.startswith("ray/lance/clips.lance/data/") for k in objects(s3, "ray/"))


def test_doctor_refuses_an_s3_index_with_the_way_to_check_a_copy(s3_index):
    index, *_ = s3_index
    with pytest.raises(UsageError, match="local folder.*aws s3 sync"):
        index.doctor()


def test_the_endpoint_and_credentials_may_come_from_the_environment_alone(s3, s3_index, monkeypatch):
    """As for MinIO or any S3-compatible store: AWS_* variables, no AVSEARCH_STORAGE_OPTIONS."""
    index, *_ = s3_index
    expected = hits(index)
    monkeypatch.delenv("AVSEARCH_STORAGE_OPTIONS")
    for name, value in {"AWS_ENDPOINT_URL": s3, "AWS_ALLOW_HTTP": "true", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    assert hits(Index.open(f"s3://{BUCKET}/idx")) == expected


def test_a_service_for_an_s3_index_announces_itself_in_the_cache_folder(s3):
    from avsearch.server.discovery import ServiceInfo, read_service_file, write_service_file

    location = IndexURI(f"s3://{BUCKET}/served")
    info = ServiceInfo("http://127.0.0.1:8765", "token", 1)
    location.cache.mkdir(parents=True, exist_ok=True)
    assert write_service_file(location, info).parent == location.cache
    assert read_service_file(location) == info


def test_a_query_on_an_s3_index_checks_the_table_versions_once(s3_index, monkeypatch):
    """Each check is a LIST request per table (a round trip to the store): once per query, not at
    each of the query's reads (four before)."""
    from avsearch.store.tables import Tables

    index, *_ = s3_index
    vector = index.embed_text("a street at night")
    index.search(vector, k=5)
    listed = []
    original = Tables._object_listing
    monkeypatch.setattr(Tables, "_object_listing", lambda self: listed.append(1) or original(self))
    assert index.search(vector, k=5)
    assert len(listed) == 1
    # Only the querying thread is pinned: another (an indexing job in `avsearch serve`) still checks.
    with index.store.reading():
        listed.clear()
        index.store.tables.current_versions()
        other = threading.Thread(target=index.store.tables.current_versions)
        other.start()
        other.join()
    assert len(listed) == 1
