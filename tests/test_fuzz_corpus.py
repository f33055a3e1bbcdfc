"""The fuzz corpus (issue 17): every container the indexer takes, good and mutated (truncations,
byte flips in headers and payload, zeroed ranges, swapped chunks, sizes past the end), plus WAVs
at bit depths FFmpeg cannot decode, indexed in one run. Every file must end indexed, partly
indexed or failed with a reason; the run must not abort or hang. The counts are printed (-s)."""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

from avsearch import Index

from fuzz_corpus import make_fuzz_corpus


def test_every_file_of_the_fuzz_corpus_ends_indexed_or_failed_with_a_reason(tmp_path):
    kinds = make_fuzz_corpus(tmp_path / "lib")
    index = Index.open(tmp_path / "idx", model="tiny", create=True)
    index.embedder()  # the model load is not the run's time
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    report = index.add([tmp_path / "lib"])
    seconds = time.monotonic() - started
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    indexed = {Path(p).name for p in report.indexed}
    failed = {Path(p).name: reason.replace(p, "PATH") for p, reason in report.failed}
    partly = {Path(p).name: note for p, note in report.partly}
    print(f"\nfuzz corpus: {len(kinds)} files in {seconds:.1f} s: {len(indexed) - len(partly)} indexed, "
          f"{len(partly)} partly indexed, {len(failed)} failed; peak RSS {rss_after / 1024:.0f} MB "
          f"(before the run {rss_before / 1024:.0f} MB), sandbox child {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024:.0f} MB")

    assert set(kinds) == indexed | set(failed) and not indexed & set(failed)  # each file once, none lost
    assert {n for n, k in kinds.items() if k == "good"} <= indexed - set(partly)
    for name, kind in kinds.items():
        if kind == "undecodable":
            assert "no decoder" in failed[name], (name, failed.get(name))
    for name, text in {**failed, **partly}.items():
        assert text and "\n" not in text and "Traceback" not in text, (name, text)
        assert not re.search(r"-\d", text.replace(name, "")), (name, text)  # never a negative time
    for name, note in partly.items():
        assert note.startswith("partly indexed: damaged at "), (name, note)
    assert seconds < 180  # no hang (the sandbox cuts off a stuck probe or decode)
    assert rss_after - rss_before < 1024 * 1024  # KiB: decoding hostile files grew the process < 1 GiB
    # Everything is recorded: the next run has nothing to retry and trips over nothing.
    counts = index.plan([tmp_path / "lib"]).counts()
    assert counts["new"] == counts["changed"] == counts["resume"] == 0, counts
