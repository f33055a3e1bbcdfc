"""Using avsearch from Python (issue 18): Index as a context manager with close() and a useful
repr, Query.media for a file given as a string, early refusals in the library, docstrings on every
public method, and the README's Python section run as written."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest

from avsearch import Index, Query
from avsearch.errors import AvsearchError, ModelMismatchError, QueryError, UsageError

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_public_index_method_has_a_docstring():
    public = [name for name, member in inspect.getmembers(Index) if not name.startswith("_")
              and (callable(member) or isinstance(member, property))]
    assert {"search", "search_detailed", "stats", "failures", "close"} <= set(public)
    assert [name for name in public if not inspect.getdoc(getattr(Index, name))] == []


def test_context_manager_closes_and_a_closed_index_refuses(indexed):
    index, library, _ = indexed
    with index as same:
        assert same is index
        text = repr(index)
        assert str(index.path) in text and "model=tiny" in text and "not loaded" in text
        index.search("a tone", k=1)
        assert "(wave:" in repr(index) and ", loaded)" in repr(index)
    assert "closed" in repr(index)
    with pytest.raises(UsageError, match="closed; open it again"):
        index.search("a tone", k=1)
    with pytest.raises(UsageError, match="closed"):
        index.stats()
    index.close()  # twice is harmless


def test_query_media_reads_a_string_path_as_a_file_not_as_text(indexed):
    index, library, _ = indexed
    path = str(library / "speech.wav")
    by_media = index.search(Query.media(path, view="audio", start=0.5, end=3.0), k=3, target_views=["audio"])
    assert by_media[0].path == path  # a file finds itself first
    q = Query.media(path, view="audio", start=0.5, end=3.0, path_prefix=str(library))
    assert (q.media, q.view.value, q.start_s, q.end_s, q.text, q.path_prefix) == (
        Path(path), "audio", 0.5, 3.0, None, str(library))
    with pytest.raises(QueryError, match="is empty"):
        Query.media(path, start=3, end=1)


def test_library_refuses_k_below_one_and_a_bad_view(indexed):
    index, _, _ = indexed
    for k in (0, -1):
        with pytest.raises(UsageError, match="k must be at least 1"):
            index.search("a tone", k=k)
    with pytest.raises(UsageError, match="unknown view 'bogus'") as err:
        index.search("a tone", view="bogus")
    assert isinstance(err.value, ValueError) and isinstance(err.value, AvsearchError)


def test_open_refuses_another_named_model_before_loading_it(tmp_path, monkeypatch):
    idx = tmp_path / "idx"
    idx.mkdir()
    (idx / "avsearch.json").write_text(json.dumps({"model_id": "wave:0123456789abcdef", "model_source": "tiny",
                                                   "dim": 8}))

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr("avsearch.models.load_embedder", no_load)
    with pytest.raises(ModelMismatchError, match="tsinghua-ee/WAVE-7B is another model"):
        Index.open(idx, model="tsinghua-ee/WAVE-7B")


def test_readme_python_section_runs(tmp_path, monkeypatch):
    from avsearch.media.synth import make_demo_folder

    block = re.search(r"## Use it from Python\n.*?```python\n(.*?)```", README.read_text(), re.S).group(1)
    monkeypatch.chdir(tmp_path)
    make_demo_folder("demo-media")
    exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    assert (tmp_path / "avsearch-index" / "avsearch.json").is_file()
