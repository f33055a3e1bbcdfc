"""The CLI through its real entry point in a subprocess: exit codes, messages, JSON (issue #6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(*args, cwd=None, env=None, input=None):
    full_env = {**os.environ, **(env or {}), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "avsearch.cli.app", *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, env=full_env, timeout=300, input=input)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory, library_template):
    root = tmp_path_factory.mktemp("cli")
    out = run("index", library_template, "--index", root / "idx", "--model", "tiny")
    assert out.returncode == 0, out.stderr
    return root / "idx", library_template, out


def test_help_teaches_with_examples():
    out = run("--help")
    assert out.returncode == 0 and "avsearch index" in out.stdout
    for cmd in (["index"], ["query"], ["status"], ["failures"], ["remove"], ["reindex"], ["sample-media"],
                ["model", "make-tiny"], ["model", "info"]):
        res = run(*cmd, "--help")
        assert res.returncode == 0, (cmd, res.stderr)
        assert "Example" in res.stdout, cmd


def test_index_prints_a_summary_with_the_failure(cli_index):
    _, _, out = cli_index
    assert "files indexed" in out.stdout and "corrupt.mp4" in out.stdout


def test_query_json_lines_parse_back(cli_index):
    idx, lib, _ = cli_index
    out = run("query", "anything", "--index", idx, "--json", "-k", "4", "--no-merge")
    assert out.returncode == 0, out.stderr
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert len(hits) == 4
    assert set(hits[0]) >= {"path", "start_s", "end_s", "view", "score", "clip_id"}
    assert all(Path(h["path"]).exists() and h["start_s"] < h["end_s"] for h in hits)


def test_query_table_and_media_queries(cli_index):
    idx, lib, _ = cli_index
    out = run("query", "--audio", lib / "speech.wav", "--index", idx, "--view", "audio", "-k", "2")
    assert out.returncode == 0, out.stderr
    assert "speech.wav" in out.stdout and "0:00:00–0:00:05" in out.stdout
    out = run("query", "--av", lib / "street.mp4", "--start", "0", "--end", "10", "--index", idx, "--json", "-k", "1", "--no-merge", "--view", "av")
    top = json.loads(out.stdout.splitlines()[0])
    assert Path(top["path"]).name == "street.mp4" and top["start_s"] == 0.0 and top["view"] == "av"


def test_queries_read_from_stdin_get_the_answers_of_single_queries(cli_index):
    idx, _, _ = cli_index
    out = run("query", "-", "--index", idx, "--json", "-k", "3", "--no-merge",
              input="a dog barking\n\n  rain on a roof \n")
    assert out.returncode == 0, out.stderr
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert [h["query"] for h in hits] == ["a dog barking"] * 3 + ["rain on a roof"] * 3  # blank line skipped
    for text in ("a dog barking", "rain on a roof"):
        single = run("query", text, "--index", idx, "--json", "-k", "3", "--no-merge")
        expected = [json.loads(line) for line in single.stdout.splitlines()]
        got = [{k: v for k, v in h.items() if k != "query"} for h in hits if h["query"] == text]
        assert got == expected
    refused = run("query", "-", "--index", idx, "--export", idx.parent / "cuts")
    assert refused.returncode == 8 and "one query" in refused.stderr


def test_stdin_lines_can_change_settings_and_query_with_media(cli_index):
    idx, lib, _ = cli_index
    lines = ["a dog barking", ":k 1", ":view audio", f":audio '{lib / 'speech.wav'}'", ":bogus", "rain on a roof"]
    out = run("query", "-", "--index", idx, "--json", "-k", "3", "--no-merge", input="\n".join(lines) + "\n")
    hits = [json.loads(line) for line in out.stdout.splitlines()]
    assert [h["query"] for h in hits] == ["a dog barking"] * 3 + [lines[3], "rain on a roof"]
    assert Path(hits[3]["path"]).name == "speech.wav" and hits[3]["view"] == "audio" and hits[4]["view"] == "audio"
    assert out.returncode == 8 and "unknown command ':bogus'" in out.stderr  # the bad line counts, the rest ran
    assert "settings: k=1 view=any" in out.stderr and "settings: k=1 view=audio" in out.stderr


def test_the_query_prompt_at_a_terminal(cli_index):
    # stdin a terminal, stdout a pipe (as in `avsearch query - --json > hits.jsonl`): the prompt goes
    # to stderr, the hits to stdout, the prompt comes back after an answer, Ctrl-D ends.
    import select

    idx, _, _ = cli_index
    master, slave = os.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "avsearch.cli.app", "query", "-", "--index", str(idx), "--json",
                             "-k", "2"], stdin=slave, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    os.close(slave)
    errors = b""

    def wait_for_prompt(count: int) -> None:
        nonlocal errors
        while errors.count(b"query> ") < count:
            ready, _, _ = select.select([proc.stderr], [], [], 120)
            assert ready, f"no prompt; stderr so far: {errors!r}"
            chunk = os.read(proc.stderr.fileno(), 4096)
            assert chunk, f"stderr closed; so far: {errors!r}"
            errors += chunk

    try:
        wait_for_prompt(1)
        os.write(master, b"a dog barking\n")
        wait_for_prompt(2)
        os.write(master, b"\x04")  # Ctrl-D
        out, rest = proc.communicate(timeout=120)
    finally:
        proc.kill()
        os.close(master)
    hits = [json.loads(line) for line in out.decode().splitlines()]
    assert proc.returncode == 0, errors + rest
    assert len(hits) == 2 and {h["query"] for h in hits} == {"a dog barking"}


def test_status_and_failures(cli_index):
    idx, _, _ = cli_index
    out = run("status", "--index", idx, "--json")
    stats = json.loads(out.stdout)
    assert stats["files_ok"] == 5 and stats["files_failed"] == 1 and stats["dim"] > 0
    out = run("status", "--index", idx)
    assert "files failed" in out.stdout and "ANN index" in out.stdout
    out = run("failures", "--index", idx, "--json")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [Path(r["path"]).name for r in rows] == ["corrupt.mp4"] and rows[0]["error"]


def test_errors_are_one_line_and_actionable(tmp_path, cli_index):
    idx, lib, _ = cli_index
    out = run("query", "x", "--index", tmp_path / "none")
    assert out.returncode == 2 and "no avsearch index" in out.stderr and "Traceback" not in out.stderr
    out = run("query", "--audio", tmp_path / "missing.wav", "--index", idx)
    assert out.returncode == 8 and "cannot read the query file" in out.stderr and "Traceback" not in out.stderr
    out = run("query", "x", "--index", idx, "--model", str(tmp_path / "no-such-checkpoint"))
    assert out.returncode == 5 and "--model" in out.stderr and "Traceback" not in out.stderr
    out = run("query", "x", "--index", idx, "--device", "cuda")
    assert out.returncode == 7 and "CUDA" in out.stderr and "Traceback" not in out.stderr
    out = run("query", "--index", idx)
    assert out.returncode == 8 and "exactly one query" in out.stderr
    out = run("--verbose", "query", "x", "--index", tmp_path / "none")
    assert "Traceback" in out.stderr  # --verbose shows it


def test_help_and_usage_errors_load_neither_lancedb_nor_torch():
    # They answered in 3-4 s when every command module imported LanceDB (1.8 s of imports) at load.
    code = ("import sys\nfrom avsearch.cli.app import app\n"
            "try:\n    app(['query', '--help'], standalone_mode=False)\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('lancedb', 'torch', 'faiss', 'av', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "avsearch query" in out.stdout  # the help was printed
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_mistyped_options_and_values_get_usage_not_an_unexpected_error(tmp_path):
    # Typer raises its vendored click's exceptions: each must still read as a usage error, exit 2.
    for args, says in ((["query", "x", "--bogus"], "No such option: --bogus"),
                       (["query", "x", "-k", "abc"], "Invalid value for '-k'"),
                       (["index", tmp_path, "--workers", "0"], "Invalid value for '--workers'")):
        out = run(*args, "--index", tmp_path / "idx")
        assert out.returncode == 2, (args, out.stderr)
        assert says in out.stderr and "--help" in out.stderr, (args, out.stderr)
        assert "unexpected error" not in out.stderr
    assert not (tmp_path / "idx").exists()


def test_ctrl_c_while_indexing_says_what_is_kept(tmp_path, monkeypatch, capsys):
    # Typer turns a KeyboardInterrupt into a silent exit code 130; the user must still be told.
    import avsearch
    from avsearch.cli import app as app_mod

    index_cls = avsearch.Index

    def interrupted_add(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(index_cls, "add", interrupted_add)
    monkeypatch.setattr(sys, "argv", ["avsearch", "index", str(tmp_path), "--index", str(tmp_path / "idx"),
                                      "--model", "tiny"])
    with pytest.raises(SystemExit) as done:
        app_mod.main()
    assert done.value.code == 130
    assert "interrupted: files committed so far are kept; re-run to finish" in capsys.readouterr().err


def test_offline_hub_model_names_the_fixes(tmp_path, library_template):
    out = run("index", library_template, "--index", tmp_path / "idx", env={"HF_HUB_OFFLINE": "1"})
    assert out.returncode == 5
    assert "--model PATH" in out.stderr and "make-tiny" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "idx" / "avsearch.json").exists()  # nothing half-made


def test_dry_run_changes_nothing(tmp_path, library_template):
    out = run("index", library_template, "--index", tmp_path / "idx", "--model", "tiny", "--dry-run", "--json")
    assert out.returncode == 0, out.stderr
    plan = json.loads(out.stdout)
    assert plan["counts"]["new"] == 6 and not (tmp_path / "idx" / "avsearch.json").exists()


def test_thumbs_contact_sheet_and_export(tmp_path, cli_index):
    from PIL import Image
    from avsearch.media import probe

    idx, _, _ = cli_index
    out = run("query", "x", "--index", idx, "-k", "3", "--view", "av", "--no-merge",
              "--thumbs", tmp_path / "thumbs", "--contact-sheet", tmp_path / "sheet.png", "--export", tmp_path / "cuts")
    assert out.returncode == 0, out.stderr
    assert len(list((tmp_path / "thumbs").glob("*.jpg"))) == 3
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.size[0] >= 3 * 100 and sheet.size[1] >= 100
    cuts = sorted((tmp_path / "cuts").iterdir())
    assert len(cuts) == 3
    hits = [json.loads(l) for l in run("query", "x", "--index", idx, "-k", "3", "--view", "av", "--no-merge", "--json").stdout.splitlines()]
    for cut, hit in zip(cuts, hits):
        assert probe(cut).duration_s == pytest.approx(hit["end_s"] - hit["start_s"], abs=1.0)


def test_remove_and_reindex(tmp_path, library_template):
    idx = tmp_path / "idx"
    assert run("index", library_template, "--index", idx, "--model", "tiny").returncode == 0
    out = run("remove", library_template / "street.mp4", "--index", idx)
    assert out.returncode == 0 and "removed 1 file" in out.stdout
    out = run("reindex", "--index", idx)
    assert out.returncode == 0 and "rebuilt" in out.stdout
    stats = json.loads(run("status", "--index", idx, "--json").stdout)
    assert stats["files_ok"] == 4 and stats["ann"]["fresh"] is True


def test_model_info_and_make_tiny(tmp_path):
    out = run("model", "make-tiny", tmp_path / "ckpt", "--seed", "3")
    assert out.returncode == 0, out.stderr
    info = json.loads(run("model", "info", "--model", tmp_path / "ckpt", "--json").stdout)
    assert info["present"] is True and info["kind"] == "local checkpoint directory"
    info = json.loads(run("model", "info", "--model", "tsinghua-ee/WAVE-7B", "--json", env={"HF_HUB_OFFLINE": "1"}).stdout)
    assert info["kind"] == "Hugging Face hub id"


def test_frames_and_resize_choices_are_kept_by_the_index_and_checked(tmp_path):
    from avsearch.media.synth import write_video
    from avsearch.store.meta import IndexSettings

    media = tmp_path / "media"
    write_video(media / "a.mp4", duration_s=3.0, seed=1)
    bad = run("index", media, "--index", tmp_path / "bad", "--model", "tiny", "--frames", "often")
    assert bad.returncode == 2 and "--frames 'often': choose one of bidir, nonref, none, keyframes" in bad.stderr
    bad = run("index", media, "--index", tmp_path / "bad", "--model", "tiny", "--resize", "lanczos")
    assert bad.returncode == 2 and "--resize 'lanczos': choose one of torch, pil, swscale" in bad.stderr
    assert not (tmp_path / "bad").exists()
    out = run("index", media, "--index", tmp_path / "idx", "--model", "tiny", "--frames", "keyframes",
              "--resize", "pil")
    assert out.returncode == 0, out.stderr
    meta = json.loads((tmp_path / "idx" / "avsearch.json").read_text())
    assert meta["settings"]["frames"] == "keyframes" and meta["settings"]["resize"] == "pil"
    from avsearch import Index

    options = Index.open(tmp_path / "idx")._decode_options()
    assert (options.skip_frames, options.resize) == ("keyframes", "pil")
    # On an existing index these options cannot apply: the command says so and keeps the index's.
    again = run("index", media, "--index", tmp_path / "idx", "--resize", "torch", "--frames", "keyframes")
    assert again.returncode == 0, again.stderr
    assert "--resize ignored: this index was made with --resize pil" in again.stderr
    assert "--frames ignored" not in again.stderr  # asked for what the index already has
    assert json.loads((tmp_path / "idx" / "avsearch.json").read_text())["settings"]["resize"] == "pil"
    # An index written before these settings existed decoded with "nonref" frames resized by PIL,
    # and keeps doing so; a new one defaults to I/P frames resized through torch.
    old = IndexSettings.from_dict({"fps": 2.0})
    assert (old.frames, old.resize) == ("nonref", "pil")
    assert (IndexSettings().frames, IndexSettings().resize) == ("bidir", "torch")
