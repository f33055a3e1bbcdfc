import os
import signal
import subprocess
import sys
import textwrap

import pytest

from avsearch.errors import IndexLockedError
from avsearch.store.lock import WriteLock


def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    with WriteLock(tmp_path):
        with pytest.raises(IndexLockedError, match=f"pid {os.getpid()}"):
            WriteLock(tmp_path).acquire()
    WriteLock(tmp_path).acquire().release()  # free again


def test_lock_of_a_killed_process_is_recovered(tmp_path):
    code = textwrap.dedent(f"""
        import sys, time
        from avsearch.store.lock import WriteLock
        WriteLock({str(tmp_path)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "locked"
        with pytest.raises(IndexLockedError):
            WriteLock(tmp_path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        WriteLock(tmp_path).acquire().release()  # the kernel dropped the dead holder's lock
    finally:
        proc.kill()
