"""Mistakes that need no model answer at once (issue 18): each of these errors is raised before
LanceDB, FAISS, PyAV, torch or transformers is imported, and before any model is looked up.

Timing is not asserted (the CI machine is shared); which modules were imported is, as in the
`--help` test of test_cli.py. All cases run in one subprocess: each reports its own exit code,
message and the heavy modules present after it (an import by one case would show in the next).
"""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("lancedb", "faiss", "av", "torch", "transformers", "huggingface_hub")

_RUNNER = r"""
import contextlib, io, json, sys
from avsearch.cli.app import main
results = []
for args in json.loads(sys.argv[1]):
    err = io.StringIO()
    sys.argv = ["avsearch", *args]
    code = 0
    with contextlib.redirect_stderr(err):
        try:
            main()
        except SystemExit as exc:
            code = exc.code
    heavy = sorted(m for m in %r if m in sys.modules)
    results.append({"args": args, "code": code, "stderr": err.getvalue(), "heavy": heavy})
print(json.dumps(results))
""" % (HEAVY,)


def _fake_index(directory, source="tiny", model_id="wave:0123456789abcdef"):
    """An index directory as far as the early checks read one: its identity card only."""
    directory.mkdir()
    (directory / "avsearch.json").write_text(json.dumps({"model_id": model_id, "model_source": source, "dim": 8}))
    return directory


def test_mistakes_answer_before_any_heavy_import(tmp_path):
    idx = _fake_index(tmp_path / "idx")
    media = tmp_path / "media"
    media.mkdir()
    sound = media / "a.wav"
    sound.write_bytes(b"RIFF")  # never read: the range is refused first
    i = ["--index", str(idx)]
    cases = [
        # (args, exit code, words the message must hold)
        (["index", str(tmp_path / "nonexistent"), *i], 1, "does not exist"),
        (["index", str(media), "--index", str(sound)], 2, "is a file, not an avsearch index"),
        (["index", str(media), *i, "--model", "tsinghua-ee/WAVE-7B"], 4, "drop --model"),
        (["index", str(media), "--index", str(tmp_path / "new"), "--frames", "bogus"], 2, "choose one of"),
        (["query", "x", "--index", str(tmp_path / "none")], 2, "no avsearch index"),
        (["query", "x", *i, "-k", "0"], 2, "Invalid value for '-k'"),
        (["query", "x", *i, "-k", "-1"], 2, "Invalid value for '-k'"),
        (["query", "x", *i, "--per-file", "0"], 2, "Invalid value for '--per-file'"),
        (["query", "x", *i, "--view", "bogus"], 2, "unknown view 'bogus'"),
        (["query", "x", *i, "--model", "tsinghua-ee/WAVE-7B"], 4, "drop --model"),
        (["query", "x", *i, "--start", "3"], 8, "--start/--end pick a range"),
        (["query", "--audio", str(sound), *i, "--start", "5", "--end", "2"], 8, "is empty"),
        (["query", "--audio", str(tmp_path / "missing.wav"), *i], 8, "cannot read the query file"),
        (["query", "x", *i, "--min-duration", "9", "--max-duration", "3"], 8, "no file can match"),
        (["status", "--index", str(tmp_path / "none")], 2, "no avsearch index"),
        (["failures", "--index", str(tmp_path / "none")], 2, "no avsearch index"),
        (["serve", "--index", str(tmp_path / "none")], 2, "no avsearch index"),
        (["serve", *i, "--model", "tsinghua-ee/WAVE-7B"], 4, "drop --model"),
    ]
    out = subprocess.run([sys.executable, "-c", _RUNNER, json.dumps([c[0] for c in cases])],
                         capture_output=True, text=True, timeout=120, env=None)
    assert out.returncode == 0, out.stderr
    results = json.loads(out.stdout.strip().splitlines()[-1])
    for (args, code, says), got in zip(cases, results):
        assert got["code"] == code, (args, got)
        assert says in " ".join(got["stderr"].split()), (args, got["stderr"])
        assert "unexpected error" not in got["stderr"] and "Traceback" not in got["stderr"], (args, got["stderr"])
        assert got["heavy"] == [], (args, got["heavy"])
    assert not (tmp_path / "new").exists()
