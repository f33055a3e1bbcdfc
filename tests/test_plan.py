"""The incremental plan, with plain rows and paths (no media, no model)."""

from avsearch.indexer.crawl import Candidate, CrawlProblem, CrawlResult
from avsearch.indexer.plan import make_plan


def row(path, fp, size=10, mtime=1.0, status="ok"):
    return {"path": path, "fingerprint": fp, "size": size, "mtime": mtime, "status": status}


def crawl(*cands, roots=("/lib",), problems=()):
    return CrawlResult(list(roots), [Candidate(*c) for c in cands], list(problems))


def fps(mapping):
    return lambda path: mapping[path]


def test_unchanged_size_and_mtime_skip_fingerprinting():
    plan = make_plan(crawl(("/lib/a.mp4", 10, 1.0)), [row("/lib/a.mp4", "A")],
                     fps({}), exists=lambda p: True)  # fingerprinting would raise KeyError
    assert plan.unchanged == ["/lib/a.mp4"] and not plan.work and not plan.problems


def test_touched_file_with_same_content_is_not_reembedded():
    plan = make_plan(crawl(("/lib/a.mp4", 10, 2.0)), [row("/lib/a.mp4", "A")], fps({"/lib/a.mp4": "A"}),
                     exists=lambda p: True)
    assert not plan.work and plan.touched[0]["mtime"] == 2.0


def test_new_changed_moved_deleted():
    existing = [row("/lib/a.mp4", "A"), row("/lib/b.mp4", "B"), row("/lib/old.mp4", "C"), row("/lib/gone.wav", "D")]
    found = crawl(("/lib/a.mp4", 10, 1.0), ("/lib/b.mp4", 11, 5.0), ("/lib/new/c.mp4", 10, 1.0), ("/lib/e.flac", 3, 1.0))
    on_disk = {"/lib/a.mp4", "/lib/b.mp4", "/lib/new/c.mp4", "/lib/e.flac"}
    plan = make_plan(found, existing, fps({"/lib/b.mp4": "B2", "/lib/new/c.mp4": "C", "/lib/e.flac": "E"}),
                     exists=lambda p: p in on_disk)
    assert {(w.path, w.reason) for w in plan.work} == {("/lib/b.mp4", "changed"), ("/lib/e.flac", "new")}
    assert [(m.old_path, m.new_path) for m in plan.moved] == [("/lib/old.mp4", "/lib/new/c.mp4")]
    assert plan.deleted == ["/lib/gone.wav"]
    assert plan.counts() == {"new": 1, "changed": 1, "retry": 0, "resume": 0, "moved": 1, "duplicate": 0, "deleted": 1,
                             "unchanged": 1, "unreadable": 0}


def test_prune_only_under_the_indexed_roots_and_can_be_disabled():
    existing = [row("/lib/gone.mp4", "A"), row("/elsewhere/gone.mp4", "B")]
    plan = make_plan(crawl(), existing, fps({}), exists=lambda p: False)
    assert plan.deleted == ["/lib/gone.mp4"]
    assert make_plan(crawl(), existing, fps({}), prune=False, exists=lambda p: False).deleted == []


def test_copy_of_an_existing_file_is_a_duplicate_not_a_move():
    existing = [row("/lib/a.mp4", "A")]
    found = crawl(("/lib/a.mp4", 10, 1.0), ("/lib/copy.mp4", 10, 1.0))
    plan = make_plan(found, existing, fps({"/lib/copy.mp4": "A"}), exists=lambda p: True)
    assert not plan.work and not plan.moved
    assert [(d.path, d.canonical) for d in plan.duplicates] == [("/lib/copy.mp4", "/lib/a.mp4")]


def test_failed_files_stay_failed_unless_retried():
    existing = [row("/lib/bad.mp4", "X", status="failed")]
    found = crawl(("/lib/bad.mp4", 10, 1.0))
    assert make_plan(found, existing, fps({}), exists=lambda p: True).unchanged == ["/lib/bad.mp4"]
    retry = make_plan(found, existing, fps({}), retry_failed=True, exists=lambda p: True)
    assert [(w.path, w.reason) for w in retry.work] == [("/lib/bad.mp4", "retry")]


def test_a_file_left_part_done_is_resumed_unless_it_changed():
    existing = [row("/lib/long.mp4", "L", status="partial"), row("/lib/touched.mp4", "T", status="partial"),
                row("/lib/edited.mp4", "E", status="partial")]
    found = crawl(("/lib/long.mp4", 10, 1.0), ("/lib/touched.mp4", 10, 2.0), ("/lib/edited.mp4", 12, 2.0))
    plan = make_plan(found, existing, fps({"/lib/touched.mp4": "T", "/lib/edited.mp4": "E2"}), exists=lambda p: True)
    assert sorted((w.path, w.reason, w.fingerprint) for w in plan.work) == [
        ("/lib/edited.mp4", "changed", "E2"), ("/lib/long.mp4", "resume", "L"), ("/lib/touched.mp4", "resume", "T")]
    assert plan.counts()["resume"] == 2 and not plan.touched


def test_unreadable_files_become_problems_not_errors():
    def broken(path):
        raise PermissionError("Permission denied")

    plan = make_plan(crawl(("/lib/x.mp4", 10, 1.0), problems=[CrawlProblem("/lib/loop.mp4", "symlink loop")]),
                     [], broken, exists=lambda p: True)
    assert {p.path for p in plan.problems} == {"/lib/x.mp4", "/lib/loop.mp4"}
    assert "Permission denied" in next(p.reason for p in plan.problems if p.path == "/lib/x.mp4")
