"""The line language of `avsearch query -` (cli/prompt.py), without a model: what each line asks for."""

from __future__ import annotations

from pathlib import Path

import pytest

from avsearch.cli.prompt import PromptSession
from avsearch.types import View


@pytest.fixture
def session():
    return PromptSession({"instruction": None, "target_views": None, "path_prefix": None},
                         {"k": 10, "per_file": None, "min_score": None, "merge_adjacent": True})


def test_a_plain_line_is_a_text_query_with_the_current_settings(session):
    assert session.handle(":view audio").message
    reply = session.handle("rain on a roof")
    assert reply.query.text == "rain on a roof" and reply.query.target_views == [View.AUDIO]
    assert session.handle("::colon first").query.text == ":colon first"


def test_commands_change_the_settings_of_later_queries(session):
    for line in (":k 3", ":per-file 1", ":min-score 0.25", ":instruction Is a woman speaking?", ":path /media/archive"):
        reply = session.handle(line)
        assert reply.error is None and reply.query is None and reply.message.startswith("settings:")
    assert session.search_args == {"k": 3, "per_file": 1, "min_score": 0.25, "merge_adjacent": True}
    q = session.handle("speech").query
    assert q.instruction == "Is a woman speaking?" and q.path_prefix == "/media/archive"
    for line in (":per-file", ":min-score", ":instruction", ":path", ":view any"):  # nothing: back to no limit
        session.handle(line)
    q = session.handle("speech").query
    assert session.search_args["per_file"] is None and session.search_args["min_score"] is None
    assert q.instruction is None and q.path_prefix is None and q.target_views is None
    assert "k=3" in session.handle(":settings").message


def test_media_and_clip_queries(session, tmp_path):
    clip = tmp_path / "a b.wav"
    clip.write_bytes(b"RIFF")
    q = session.handle(f":audio '{clip}' 1.5 4").query
    assert (Path(q.media), q.view, q.start_s, q.end_s) == (clip, View.AUDIO, 1.5, 4.0)
    assert session.handle(f":av '{clip}'").query.view == View.AV
    assert session.handle(":like abc123").query.clip_id == "abc123"


@pytest.mark.parametrize("line, says", [
    (":k 0", "at least 1"), (":k x", "at least 1"), (":view pictures", ":view takes one of"),
    (":min-score high", "a number"), (":audio /no/such.wav", "no such file"), (":audio", "FILE"),
    (":like", "one clip_id"), (":frobnicate", "unknown command"), (":path 'unclosed", "quotation"),
])
def test_bad_commands_are_errors_that_change_nothing(session, line, says):
    before = (dict(session.fields), dict(session.search_args))
    reply = session.handle(line)
    assert reply.query is None and says in reply.error
    assert (session.fields, session.search_args) == before
