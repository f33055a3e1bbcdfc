"""What the fragment tests look at on disk: data files of the clips dataset no version lists."""

from __future__ import annotations

from pathlib import Path


def unreferenced_data_files(index_dir: Path) -> set[str]:
    """Data files in <index>/lance/clips.lance/data that no version on disk lists: fragments
    written but never committed. Read with Lance itself, independently of the code under test."""
    import lance

    uri = str(Path(index_dir) / "lance" / "clips.lance")
    listed: set[str] = set()
    for v in lance.dataset(uri).versions():
        for fragment in lance.dataset(uri, version=v["version"]).get_fragments():
            listed |= {f.path for f in fragment.data_files()}
    on_disk = {p.name for p in (Path(uri) / "data").glob("*.lance")}
    return on_disk - listed
