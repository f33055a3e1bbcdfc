"""Help text and tables read well (issue 18): no words lost to Rich markup, an example in every
command's --help, failure reasons without the repeated path, `model info` in yes/no words."""

from __future__ import annotations

import re
import subprocess
import sys

COMMANDS = [["index"], ["query"], ["status"], ["failures"], ["remove"], ["reindex"], ["doctor"], ["relocate"],
            ["serve"], ["sample-media"], ["model", "info"], ["model", "make-tiny"]]

_HELP_ALL = r"""
import contextlib, io, json, sys
from avsearch.cli.app import app
out = {}
for cmd in json.loads(sys.argv[1]):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            app([*cmd, "--help"], standalone_mode=False)
        except SystemExit:
            pass
    out[" ".join(cmd)] = buf.getvalue()
print(json.dumps(out))
"""


def _helps() -> dict[str, str]:
    import json

    out = subprocess.run([sys.executable, "-c", _HELP_ALL, json.dumps(COMMANDS)], capture_output=True, text=True,
                         timeout=120, env={"COLUMNS": "100", "PATH": "/usr/bin:/bin", "TERM": "dumb"})
    assert out.returncode == 0, out.stderr
    helps = json.loads(out.stdout.strip().splitlines()[-1])
    # Join the table's wrapped lines into one text: drop the box characters and runs of spaces.
    return {cmd: " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split()) for cmd, text in helps.items()}


def test_help_keeps_every_word_and_shows_an_example():
    helps = _helps()
    assert ("Index directory, or an object store URI (s3://BUCKET/PREFIX, gs://..., az://...). Default: "
            "$AVSEARCH_INDEX or ./avsearch-index.") in helps["status"]
    assert "cuda, cuda:1 or cpu. Default: cuda if present." in helps["query"]
    assert "Must match the index's model. Default: the index's model." in helps["query"]
    for cmd, text in helps.items():
        # Rich read "[default: ...]" as markup and dropped it, leaving "directory ." behind.
        assert not re.search(r"\w \.(\s|$)", text), (cmd, re.search(r".{30}\w \.(\s|$)", text))
        assert "Example" in text, cmd
        # Options name their values (PATH, N, TEXT) or, for switches, nothing: no Typer type labels.
        options = text[text.index("Options"):]
        assert not re.findall(r"<[a-z\[\]A-Z ]+>", options), (cmd, re.findall(r"<[a-z\[\]A-Z ]+>", options))
    assert "--top -k N [x>=1] Number of hits." in helps["query"]


def test_failure_reasons_leave_the_path_to_the_file_column():
    from avsearch.cli.manage_cmd import reason_without_path

    path = "/mnt/archive/tapes/2019/very-long-folder-name/corrupt.mp4"
    assert reason_without_path(f"{path}: invalid data found when processing input", path) == \
        "invalid data found when processing input"
    assert reason_without_path(f"cannot open {path} (permission denied)", path) == \
        "cannot open the file (permission denied)"
    assert reason_without_path("no audio or video stream", path) == "no audio or video stream"


def test_model_info_says_yes_or_no_and_where_from():
    from avsearch.cli.model_cmd import shown_fact

    present = {"present": True, "path": "/ckpt"}
    assert shown_fact("beats_present", None, present) == "yes (from the checkpoint)"
    assert shown_fact("beats_present", None, {"present": False}) == "no (the checkpoint is not present)"
    assert shown_fact("beats_present", True, present) == "yes (from AVSEARCH_BEATS)"
    assert shown_fact("present", True, present) == "yes (from /ckpt)"
    assert shown_fact("present", False, present) == "no"
    assert shown_fact("tokenizer", True, present) == "yes"


def test_failures_table_fits_80_columns_with_the_path_once(indexed):
    index, library, _ = indexed
    out = subprocess.run([sys.executable, "-m", "avsearch.cli.app", "failures", "--index", str(index.path)],
                         capture_output=True, text=True, timeout=120, env={**__import__("os").environ, "COLUMNS": "80"})
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80
    text = "".join(line.split("│")[1] if line.count("│") > 2 else "" for line in lines)  # the file column
    reasons = " ".join(line.split("│")[3] for line in lines if line.count("│") > 3)
    assert "corrupt.mp4" in text.replace(" ", "")  # the file is named once, in its column
    assert "corrupt.mp4" not in reasons and reasons.strip()  # and the reason column holds only the reason
