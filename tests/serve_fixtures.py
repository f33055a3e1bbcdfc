"""A running `avsearch serve` for a test module: a private copy of the indexed tiny library,
served on 127.0.0.1 at a free port, in a thread of the test process (so tests can also look at
the live Index the service holds)."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKEN = "test-token-0123456789"
MAX_UPLOAD_MB = 1.0


def start_service(tmp_dir: Path, indexed_template, *, roots=(), token: str | None = TOKEN):
    from avsearch import Index
    from avsearch.server.config import ServeConfig
    from avsearch.server.runner import Service

    root, _ = indexed_template
    shutil.copytree(root / "index", tmp_dir / "index")
    index = Index.open(tmp_dir / "index")
    config = ServeConfig.make(port=0, token=token, no_token=token is None, max_upload_mb=MAX_UPLOAD_MB, roots=roots)
    return Service(index, config).start(), root / "library"
