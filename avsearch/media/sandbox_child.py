"""The media sandbox's child process (see avsearch.media.sandbox): reads files on request.

Run as `python -m avsearch.media.sandbox_child RECV_FD SEND_FD`; answers each request with
("ok", MediaFile) for a probe, ("clip", Clip)... ("end", damage) for a decode, or ("error", text).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from multiprocessing.connection import Connection
from typing import Optional

import numpy as np

from avsearch.errors import MediaError
from avsearch.media.damage import Damage
from avsearch.media.decode import iter_clips
from avsearch.media.probe import probe
from avsearch.resample import RESAMPLERS


def _obey_fault(fault: Optional[str], stage: str, path: str) -> None:
    """The test hook (AVSEARCH_TEST_MEDIA_FAULT="crash|hang:probe|decode:TEXT", sent by the parent)."""
    if not fault:
        return
    action, _, rest = fault.partition(":")
    want_stage, _, text = rest.partition(":")
    if want_stage == stage and text and text in path:
        if action == "crash":
            os.kill(os.getpid(), signal.SIGSEGV)
        elif action == "hang":
            time.sleep(3600)


def _warm_up(options) -> None:
    """Load the frame resizer's library now (torch: seconds on a fresh process), so that the first
    clip's wait is decoding only."""
    if options.resize in RESAMPLERS:
        RESAMPLERS[options.resize](np.zeros((2, 2, 3), dtype=np.uint8), 1, 1)


def serve(recv: Connection, send: Connection) -> None:
    send.send(("ready", None))
    while True:
        try:
            message = recv.recv()
        except EOFError:  # the parent has gone
            return
        kind, path = message[0], message[1]
        try:
            if kind == "probe":
                _obey_fault(message[2], "probe", path)
                send.send(("ok", probe(path)))
            else:
                _, _, ranges, options, video, audio, media, fault = message
                _warm_up(options)
                send.send(("started", None))  # the parent's stall clock starts now
                _obey_fault(fault, "decode", path)
                damage: list[Damage] = []
                for clip in iter_clips(path, ranges, options, video=video, audio=audio, media=media, damage=damage):
                    send.send(("clip", clip))
                send.send(("end", damage))
        except MediaError as err:
            send.send(("error", str(err)))
        except Exception as err:  # any other failure is this file's, never the child's end
            send.send(("error", f"{path}: {type(err).__name__}: {err}"))


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends this child
    serve(Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False))
