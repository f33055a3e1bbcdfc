"""Progress from the first moment (issue 18): the phases a run reports, in order, and how
`avsearch index` shows them (a live line on a terminal, plain lines in a pipe, nothing with -q)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from avsearch.indexer.report import PHASES, PhaseReporter, Progress

# Each phase once, in this order, on an index that exists (the model loads after probing).
EXISTING_ORDER = ["scanning", "fingerprinting", "probing", "loading model", "embedding", "committing",
                  "building ANN index"]


def phases_in_order(events) -> list[str]:
    """The phases of `events` with repeats of the same phase folded."""
    seen: list[str] = []
    for phase in events:
        if not seen or seen[-1] != phase:
            seen.append(phase)
    return seen


@pytest.fixture(scope="module")
def recorded_run(tmp_path_factory, indexed_template, tiny_embedder):
    """A new folder added to an existing index, recording every progress event (copied, since the
    same object is passed each time), when the model was loaded and when each probe ran."""
    import avsearch.indexer.run as run_module
    import avsearch.models as models
    from avsearch import Index
    from avsearch.media.synth import write_audio

    root = tmp_path_factory.mktemp("progress")
    template_root, _ = indexed_template
    shutil.copytree(template_root / "index", root / "index")
    write_audio(root / "new" / "tone.wav", duration_s=3.0, tone_hz=660.0, seed=9)
    events: list[Progress] = []
    loaded_at: list[int] = []
    probed_at: list[int] = []

    def load_embedder(spec=None, *, device=None):
        loaded_at.append(len(events))
        return tiny_embedder

    real_probe = run_module._probe

    def probe(path, options):
        probed_at.append(len(events))
        return real_probe(path, options)

    patch = pytest.MonkeyPatch()
    patch.setattr(models, "load_embedder", load_embedder)  # Index.embedder imports it from here
    patch.setattr(run_module, "_probe", probe)
    try:
        index = Index.open(root / "index")
        report = index.add([root / "new"], progress=lambda p: events.append(Progress(**p.__dict__)))
    finally:
        patch.undo()
    return events, loaded_at, probed_at, report


def test_an_existing_index_reports_every_phase_in_order_and_loads_the_model_after_probing(recorded_run):
    events, loaded_at, _, report = recorded_run
    assert report.indexed and not report.failed
    assert {e.phase for e in events} <= set(PHASES)
    assert phases_in_order(e.phase for e in events) == EXISTING_ORDER
    # The model was loaded once, after every scanning/fingerprinting/probing event and before embedding.
    assert len(loaded_at) == 1
    before_model = [e.phase for e in events[:loaded_at[0]]]
    assert set(before_model) == {"scanning", "fingerprinting", "probing", "loading model"}
    assert before_model[-1] == "loading model"
    # Per-phase counts: the scan found the one file, it was fingerprinted and probed (1 of 1).
    last = {e.phase: e for e in events}
    assert last["scanning"].phase_done == 1
    assert (last["fingerprinting"].phase_done, last["fingerprinting"].phase_total) == (1, 1)
    assert (last["probing"].phase_done, last["probing"].phase_total) == (1, 1)


def test_embedding_events_carry_clips_rate_and_eta_and_the_old_fields_still_count(recorded_run):
    events, _, _, report = recorded_run
    embedding = [e for e in events if e.phase == "embedding"]
    assert embedding[0].clips_done == 0 and embedding[0].clips_total > 0
    # Each decoded clip is news before its batch is embedded (the first batch can take a while).
    first_embedded = next(i for i, e in enumerate(embedding) if e.clips_done)
    assert embedding[first_embedded - 1].clips_decoded >= 1 and embedding[first_embedded - 1].clips_done == 0
    done = embedding[-1]
    assert done.clips_done == report.clips_added == done.phase_done
    assert done.clips_per_s is not None and done.clips_per_s > 0 and done.eta_s == 0
    # What callers that predate phases read (the service's jobs, scripts) ends where it did before.
    final = events[-1]
    assert (final.files_done, final.files_total, final.clips_done) == (1, 1, report.clips_added)
    assert final.current is None or Path(final.current).name == "tone.wav"


def test_the_first_event_comes_from_the_scan_before_any_probe(recorded_run):
    events, _, probed_at, _ = recorded_run
    assert events[0].phase == "scanning" and events[0].phase_done == 0
    assert probed_at and probed_at[0] > 0
    assert all(e.phase in ("scanning", "fingerprinting", "probing") for e in events[:probed_at[0]])


def test_a_probe_names_its_file_before_it_runs(recorded_run):
    events, _, probed_at, _ = recorded_run
    # The event just before the probe ran: "probing 0 of 1 · tone.wav", what a hanging probe leaves shown.
    just_before = events[probed_at[0] - 1]
    assert (just_before.phase, just_before.phase_done, just_before.phase_total) == ("probing", 0, 1)
    assert Path(just_before.current).name == "tone.wav"


@pytest.fixture
def fresh_tiny_cache(tmp_path, monkeypatch, tiny_embedder):
    """AVSEARCH_CACHE pointing at an empty folder, so the tiny model must be generated; generating
    it is replaced by copying the session's checkpoint (the same bytes; 4 s faster)."""
    import avsearch.models.wave.tiny as tiny
    from avsearch.models.wave.builtins import ensure_tiny_checkpoint

    made = ensure_tiny_checkpoint()  # the session's (conftest's cache)
    calls = []

    def make_tiny_checkpoint(directory, seed=0):
        calls.append(directory)
        shutil.copytree(made, directory, dirs_exist_ok=True)
        return Path(directory)

    monkeypatch.setattr(tiny, "make_tiny_checkpoint", make_tiny_checkpoint)
    monkeypatch.setenv("AVSEARCH_CACHE", str(tmp_path / "cache"))
    return calls


def test_generating_the_tiny_model_is_announced_once_before_it_starts(fresh_tiny_cache):
    from avsearch.models.registry import GENERATING_TINY, model_steps
    from avsearch.models.wave.builtins import ensure_tiny_checkpoint

    heard = []
    with model_steps(lambda step: heard.append((step, len(fresh_tiny_cache)))):
        ensure_tiny_checkpoint()
        ensure_tiny_checkpoint()  # now cached: nothing to announce
    assert heard == [(GENERATING_TINY, 0)]  # announced before the generator ran
    assert len(fresh_tiny_cache) == 1


def test_a_new_index_loads_the_model_after_probing_and_announces_generating_the_tiny_model(tmp_path,
                                                                                          fresh_tiny_cache):
    from avsearch import Index
    from avsearch.media.synth import write_audio

    write_audio(tmp_path / "lib" / "a.wav", duration_s=2.0, seed=3)
    phases = []
    with Index.open(tmp_path / "index", model="tiny", create=True) as index:
        index.add([tmp_path / "lib"], progress=lambda p: phases.append(p.phase))
    assert fresh_tiny_cache  # the checkpoint was missing and was made
    assert phases_in_order(phases) == [*EXISTING_ORDER[:4], "generating tiny model", *EXISTING_ORDER[4:]]


# -- the CLI's views -----------------------------------------------------------------------


def invoke(*args):
    from typer.testing import CliRunner

    from avsearch.cli.app import app

    result = CliRunner().invoke(app, [str(a) for a in args])
    assert result.exit_code == 0, (result.output, result.exception)
    return result


def test_piped_output_is_plain_lines_naming_each_phase(tmp_path, monkeypatch, fresh_tiny_cache):
    from avsearch.media.synth import write_audio

    for name in ("TTY_COMPATIBLE", "FORCE_COLOR"):  # what would make Rich treat the pipe as a terminal
        monkeypatch.delenv(name, raising=False)
    write_audio(tmp_path / "lib" / "a.wav", duration_s=2.0, seed=3)
    result = invoke("index", tmp_path / "lib", "--index", tmp_path / "idx", "--model", "tiny")
    err = result.stderr
    assert "\x1b" not in err and "\r" not in err
    lines = err.splitlines()
    labels = [line.split(":")[0] for line in lines]
    assert phases_in_order(labels) == [*EXISTING_ORDER[:4], "generating tiny model (first use only)",
                                       *EXISTING_ORDER[4:]]
    assert "scanning: 1 file found" in lines and "probing: 1 of 1 file" in lines
    assert any(line.startswith("embedding: 1 of 1 file · 1 decoded · ") and "clips/s" in line for line in lines)
    assert "files indexed" in result.stdout  # the report table, on stdout as before


def test_quiet_prints_only_the_summary_line(tmp_path, monkeypatch, tiny_embedder):
    from avsearch.media.synth import write_audio

    monkeypatch.setattr("avsearch.models.load_embedder", lambda spec=None, *, device=None: tiny_embedder)
    write_audio(tmp_path / "lib" / "a.wav", duration_s=2.0, seed=3)
    (tmp_path / "lib" / "broken.wav").write_bytes(b"not audio" * 50)
    result = invoke("index", tmp_path / "lib", "--index", tmp_path / "idx", "--model", "tiny", "-q")
    assert result.stderr == ""
    assert result.stdout.count("\n") == 1
    line = result.stdout.strip()
    assert line.startswith("indexed 1 file (") and "1 failed (see `avsearch failures`)" in line
    assert not any(phase in line for phase in PHASES)


def test_plain_view_prints_phase_changes_and_at_most_one_line_per_interval():
    from avsearch.cli.progress_view import PlainView

    class Out:
        lines: list[str] = []

        def write(self, s):
            self.lines.append(s)

        def flush(self):
            pass

    now = [0.0]
    out = Out()
    with PlainView(out, interval_s=5.0, clock=lambda: now[0]) as view:
        for second in range(12):  # 12 s of scanning, an event a second
            now[0] = float(second)
            view(Progress(phase="scanning", phase_done=second))
        now[0] = 12.5
        view(Progress(phase="committing"))
    lines = "".join(out.lines).splitlines()
    # scanning at 0 s, 5 s, 10 s; its last count (11) before the next phase; then committing.
    assert lines == ["scanning: 0 files found", "scanning: 5 files found", "scanning: 10 files found",
                     "scanning: 11 files found", "committing"]


def test_each_phase_has_a_plain_line():
    from avsearch.cli.progress_view import plain_line

    for phase in PHASES:
        line = plain_line(Progress(phase=phase, phase_done=1, phase_total=2, files_total=2, clips_total=4))
        assert line.startswith(phase)


def test_a_terminal_gets_the_live_line_and_a_pipe_plain_lines(monkeypatch):
    from avsearch.cli.progress_view import PlainView, QuietView, RichView, progress_view

    monkeypatch.delenv("FORCE_COLOR", raising=False)
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # Rich's documented switch: treat the stream as a terminal
    assert isinstance(progress_view(quiet=False), RichView)
    monkeypatch.setenv("TTY_COMPATIBLE", "0")
    assert isinstance(progress_view(quiet=False), PlainView)
    assert isinstance(progress_view(quiet=True), QuietView)


def test_a_phase_outside_the_vocabulary_is_refused():
    with pytest.raises(ValueError, match="unknown progress phase"):
        PhaseReporter(None).phase("thinking")
