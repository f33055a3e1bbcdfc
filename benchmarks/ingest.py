"""Ingest benchmark: decode throughput of the media layer vs the ffmpeg CLI, and peak RSS of indexing.

Part 1, decode: generated H.264 files (1080p and 480p, 30 fps, x264 defaults: B-frames, keyframe
every 250 frames, textured moving content; each with 1 slice per frame, as the ffmpeg CLI's x264
writes by default, and with 4, as slice-threaded encoders and much broadcast material do) are
decoded the way the indexer needs them -- frames sampled at 2 fps and scaled to WAVE's pixel budget
(bicubic), audio as 16 kHz mono float32 -- by

* ``ffmpeg``: the ffmpeg command-line tool doing the same sampling (`fps=2,scale=W:H:flags=bicubic`,
  rgb24 raw video; `-ac 1 -ar 16000 -f f32le` audio), writing to /dev/null (cheaper than any real
  consumer, so the baseline is flattered, not handicapped);
* ``avsearch/<mode>``: `avsearch.media.decode.iter_clips` over 10 s clips with its DecodeOptions,
  for the modes `all` (decode every frame), `nonref` (skip B-frames nothing refers to), `bidir`
  (skip all B-frames: the default, with everything else at its default too) and `keyframes`
  (keyframes only: the coarse fast path, frames are then the keyframes); `bidir-pil` resizes with
  PIL itself (WAVE's reference) instead of torch's kernel, `bidir-sws` with one swscale pass,
  `bidir-framethreads` decodes with frame threading instead of slice threading; `bidir-split` is the
  default options decoded by `decode_files` with two workers, as the indexer decodes a file indexed
  on its own on a machine of 2-5 cores (the second worker takes the second half of a file of 60 s or more).

Each is run `--repeats` times, alternating, and the best time is kept. The figure is seconds of
media decoded per wall-clock second.

Part 1b, a folder: the four files above plus a 3-minute 480p one, last (the long file at the end
of a folder is the case splitting is for), decoded as the indexer decodes a folder: `decode_files`,
two workers, each taking the next file; an idle worker splits the running file with the most
media left if both parts keep `min_split_s` (30 s, the default) or more. Against, in the same run:
the same without splitting (`min_split_s` infinite: one decoder per file, the indexer before
splitting existed), a lower threshold (15 s), and the ffmpeg CLI on the same files, two at a time.
`--folder-workers 4,8` adds the default split with more decode workers (for a machine with more
cores: the indexer's default is half the CPUs, 2 to 4, so 2 on a 2-core machine; see decode_workers.py).

Part 2, memory: `avsearch index` (tiny model) in a subprocess on a generated 2-hour file, against
the same on a 5-minute file of the same kind: peak RSS of each (ru_maxrss of the child). Streaming
decode means the 2-hour figure should equal the 5-minute one, not be 24 times it.

    python benchmarks/ingest.py                 # both parts, results in benchmarks/results/
    python benchmarks/ingest.py --skip-memory   # decode part only
    python benchmarks/ingest.py --skip-decode   # memory part only
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import av  # noqa: E402

from avsearch.media.decode import DecodeOptions, iter_clips  # noqa: E402
from avsearch.media.parallel import MIN_SPLIT_S, FileToDecode, decode_files  # noqa: E402
from avsearch.media.probe import probe  # noqa: E402
from avsearch.media.resize import smart_resize  # noqa: E402
from avsearch.media.segment import plan_clips  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"


# -- generated media ---------------------------------------------------------------------------


def _texture(height: int, width: int, seed: int) -> np.ndarray:
    """A smooth random texture (blurred noise, tiled twice as wide) that scrolls: realistic-ish bitrate."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (height // 8 + 1, (2 * width) // 8 + 1, 3), dtype=np.uint8)
    big = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)[:height, : 2 * width]
    return big


def write_h264(path: Path, *, width: int, height: int, seconds: float, fps: int = 30, audio: bool = True,
               preset: str = "veryfast", slices: int = 1, seed: int = 0) -> Path:
    """H.264 (x264 defaults but the preset and slice count) + AAC 48 kHz stereo, textured content
    moving every frame. One slice per frame is what the ffmpeg CLI's x264 writes by default
    (frame-threaded encoding); several, what slice-threaded encoders, many cameras and broadcast
    write: the count decides what slice threading can do when decoding."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tex = _texture(height, width, seed)
    n_frames = int(round(seconds * fps))
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps, options={"preset": preset, "crf": "23",
                                                          "x264-params": f"slices={slices}"})
        v.thread_type = "FRAME"  # PyAV's default (slice threads) would make one slice per thread
        v.width, v.height, v.pix_fmt = width, height, "yuv420p"
        a = None
        if audio:
            a = out.add_stream("aac", rate=48000, layout="stereo")
        for i in range(n_frames):
            shift = (4 * i) % width
            img = np.ascontiguousarray(tex[:, shift: shift + width])
            y0 = (7 * i) % max(1, height - height // 4)
            img[y0: y0 + height // 4, : width // 4] = (i * 3) % 256  # a moving block
            for packet in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in v.encode():
            out.mux(packet)
        if a is not None:
            total = int(seconds * 48000)
            pts = 0
            for start in range(0, total, 1024):  # generated per frame: 2 hours never sit in memory
                t = np.arange(start, min(total, start + 1024)) / 48000
                wave = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
                chunk = np.ascontiguousarray(np.stack([wave, wave * 0.5]))
                frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                frame.sample_rate, frame.pts, frame.time_base = 48000, pts, Fraction(1, 48000)
                pts += chunk.shape[1]
                for packet in a.encode(frame):
                    out.mux(packet)
            for packet in a.encode():
                out.mux(packet)
    return path


# -- decoders under test -------------------------------------------------------------------------


MODES = {
    "all": DecodeOptions(skip_frames="none"),
    "nonref": DecodeOptions(skip_frames="nonref"),
    "bidir-pil": DecodeOptions(skip_frames="bidir", resize="pil"),
    "bidir-framethreads": DecodeOptions(skip_frames="bidir", thread_type="AUTO"),
    "bidir": DecodeOptions(),
    "bidir-sws": DecodeOptions(skip_frames="bidir", resize="swscale"),
    "keyframes": DecodeOptions(skip_frames="keyframes"),
    "bidir-split": DecodeOptions(),  # decoded by decode_files with two workers, as the indexer does
}
assert MODES["bidir"].skip_frames == "bidir" and MODES["bidir"].resize == "torch"  # the default is what runs


def decode_avsearch(path: Path, mode: str) -> dict:
    media = probe(path)
    ranges = plan_clips(media.duration_s, clip_s=10.0, min_last_s=1.0)
    frames = samples = 0
    if mode == "bidir-split":
        reports = decode_files([FileToDecode(path, ranges, media=media)], MODES[mode], workers=2)
        clips = (r.clip for r in reports if r.kind == "clip")
    else:
        clips = iter_clips(path, ranges, MODES[mode], media=media)
    for clip in clips:
        frames += 0 if clip.frames is None else len(clip.frames)
        samples += 0 if clip.audio is None else len(clip.audio)
    return {"frames": frames, "audio_samples": samples}


def decode_ffmpeg(path: Path, width: int, height: int) -> dict:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path),
           "-map", "0:v:0", "-vf", f"fps=2,scale={width}:{height}:flags=bicubic", "-pix_fmt", "rgb24",
           "-f", "rawvideo", "-y", "/dev/null",
           "-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-y", "/dev/null"]
    subprocess.run(cmd, check=True)
    return {}


def model_size(media) -> tuple[int, int]:
    """(height, width) the decoders scale this file's frames to: WAVE's pixel budget."""
    return smart_resize(media.height, media.width, factor=28, min_pixels=784, max_pixels=176_400)


def time_alternating(decoders: dict, repeats: int, media_s: float) -> dict:
    """Each decoder (name -> a call returning facts) run `repeats` times, alternating; best time kept."""
    runs: dict[str, list[float]] = {name: [] for name in decoders}
    facts: dict[str, dict] = {}
    for _ in range(repeats):
        for name, decode in decoders.items():
            t0 = time.perf_counter()
            facts[name] = decode()
            runs[name].append(time.perf_counter() - t0)
    return {name: {"best_s": min(times), "all_s": times, "media_s_per_s": media_s / min(times), **facts[name]}
            for name, times in runs.items()}


def bench_decode(path: Path, repeats: int, modes: list[str], log) -> dict:
    media = probe(path)
    h, w = model_size(media)
    decoders = {"ffmpeg": lambda: decode_ffmpeg(path, w, h)} | {
        name: (lambda name=name: decode_avsearch(path, name)) for name in modes}
    out = {"file": path.name, "width": media.width, "height": media.height, "duration_s": media.duration_s,
           "fps": media.fps, "scaled_to": [h, w], "size_mb": path.stat().st_size / 1e6,
           "decoders": time_alternating(decoders, repeats, media.duration_s)}
    base = out["decoders"]["ffmpeg"]["best_s"]
    for name in modes:
        out["decoders"][name]["speedup_vs_ffmpeg"] = base / out["decoders"][name]["best_s"]
    log(f"{path.name}: " + ", ".join(f"{n} {d['media_s_per_s']:.1f} media-s/s" for n, d in out["decoders"].items()))
    return out


# name -> (min_split_s, decode workers)
FOLDER_SPLITS = {"no split": (float("inf"), 2), f"split >= {MIN_SPLIT_S:g} s (default)": (MIN_SPLIT_S, 2),
                 "split >= 15 s": (15.0, 2)}


def decode_folder(paths: list[Path], min_split_s: float, workers: int = 2) -> dict:
    files = []
    for path in paths:
        media = probe(path)
        files.append(FileToDecode(path, plan_clips(media.duration_s, clip_s=10.0, min_last_s=1.0), media=media))
    clips = 0
    for report in decode_files(files, DecodeOptions(), workers=workers, min_split_s=min_split_s):
        if report.kind == "error":
            raise RuntimeError(f"{paths[report.file]}: {report.error}")
        clips += report.kind == "clip"
    return {"clips": clips}


def bench_folder(paths: list[Path], repeats: int, log, more_workers: tuple[int, ...] = ()) -> dict:
    variants = dict(FOLDER_SPLITS) | {f"{w} workers, split >= {MIN_SPLIT_S:g} s": (MIN_SPLIT_S, w) for w in more_workers}
    sizes = {path: model_size(probe(path)) for path in paths}

    def ffmpeg_two_at_a_time() -> dict:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: decode_ffmpeg(p, sizes[p][1], sizes[p][0]), paths))
        return {}

    decoders = {"ffmpeg x2": ffmpeg_two_at_a_time} | {
        name: (lambda args=args: decode_folder(paths, *args)) for name, args in variants.items()}
    media_s = sum(probe(p).duration_s for p in paths)
    out = {"files": [p.name for p in paths], "media_s": media_s,
           "decoders": time_alternating(decoders, repeats, media_s)}
    log("folder: " + ", ".join(f"{n} {d['best_s']:.2f} s" for n, d in out["decoders"].items()))
    return out


# -- memory ------------------------------------------------------------------------------------


def index_peak_rss(media_path: Path, work: Path) -> dict:
    """Peak RSS of a fresh `avsearch index` process (tiny model) on one file.

    VmHWM, not ru_maxrss: Linux children inherit the parent's ru_maxrss across fork+exec, so a
    parent that had just generated a 2-hour file reported its own peak (8 GB) for the child.
    """
    folder = work / f"lib-{media_path.stem}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / media_path.name
    if not link.exists():
        link.symlink_to(media_path)
    index = work / f"index-{media_path.stem}"
    shutil.rmtree(index, ignore_errors=True)
    code = ("import atexit, resource, sys\nfrom avsearch.cli.app import main\n"
            "atexit.register(lambda: print('MAXRSS_KB', [l.split()[1] for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')][0], file=sys.stderr))\nsys.argv = ['avsearch', *sys.argv[1:]]\nmain()")
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, "index", str(folder), "--index", str(index), "--model", "tiny",
                           "--json"], capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"avsearch index failed ({proc.returncode}): {proc.stderr[-2000:]}")
    rss_kb = int(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB")))
    out = proc.stdout
    summary = json.loads(out[out.index("{"):]) if "{" in out else {}
    return {"file": media_path.name, "duration_s": probe(media_path).duration_s, "peak_rss_mib": rss_kb / 1024,
            "elapsed_s": elapsed, "summary": summary}


# -- reporting ---------------------------------------------------------------------------------


def render_md(res: dict) -> str:
    lines = ["# Ingest benchmark", "",
             f"{res.get('date', '')}. Machine: {res['machine']}. PyAV {res['pyav']}, ffmpeg CLI: {res['ffmpeg_version']}.",
             "Best of {} alternating runs; media seconds decoded per wall-clock second "
             "(frames at 2 fps scaled to the 176,400-pixel budget + 16 kHz mono audio).".format(res["repeats"]), "",
             "| file | ffmpeg CLI | " + " | ".join(f"avsearch {m}" for m in res["modes"]) + " |",
             "|---|---:|" + "---:|" * len(res["modes"])]
    for d in res["decode"]:
        dec = d["decoders"]
        cells = [f"{dec[m]['media_s_per_s']:.1f} ({dec[m]['speedup_vs_ffmpeg']:.2f}x)" for m in res["modes"]]
        lines.append(f"| {d['width']}x{d['height']} {d['duration_s']:.0f} s, {d.get('slices', '?')} slice(s), "
                     f"{d['size_mb']:.0f} MB | "
                     f"{dec['ffmpeg']['media_s_per_s']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", "Modes: `all` decodes every frame; `nonref` skips non-reference frames "
              "(B-frames), so a 2 fps sample is the nearest decoded frame, at most a few frames from the "
              "instant; `bidir` (the default) skips every B-frame (I/P only), falling back to `nonref` "
              "where I/P frames are sparser than half a sampling slot; "
              "`keyframes` decodes keyframes only (one frame per GOP, here every 250 frames). "
              "Frames are converted to RGB at full size and resized with PIL's bicubic through torch's kernel "
              "(the default, `resize=\"torch\"`), except: `-pil` resizes with PIL itself (WAVE's reference, bit "
              "for bit), `-sws` scales and converts in one swscale pass (as the ffmpeg CLI does). Threading is "
              "FFmpeg's frame threading for `all` and `nonref`, slice threading for `bidir` and `keyframes`; "
              "`-framethreads` is `bidir` with frame threading; `bidir-split` is `decode_files` with two "
              "workers, what the indexer does for a file indexed on its own (the second worker takes the second "
              "half of a file of 60 s or more).", ""]
    folder = res.get("folder")
    if folder:
        base = folder["decoders"]["no split"]["best_s"]
        lines += ["## A folder: " + ", ".join(folder["files"]), "",
                  f"{folder['media_s']:.0f} s of media in all, decoded in this order by two workers (each takes the "
                  "next file; with splitting, an idle worker takes half of the running file with the most media "
                  "left). `ffmpeg x2`: the CLI on the same files, two processes at a time.", "",
                  "| decoder | best time | media-s/s | vs no split |", "|---|---:|---:|---:|"]
        for name, d in folder["decoders"].items():
            lines.append(f"| {name} | {d['best_s']:.2f} s | {d['media_s_per_s']:.1f} | {base / d['best_s']:.2f}x |")
        lines.append("")
    lines += ["What the runs mean, with the figures of every run of the day: `ingest-reading.md` (written by hand).", ""]
    if res.get("memory"):
        lines += ["## Peak RSS of `avsearch index --model tiny` on one file", "",
                  f"Measured {res.get('memory_date', res.get('date', ''))}.", "",
                  "| file | duration | peak RSS | wall time | clips |", "|---|---:|---:|---:|---:|"]
        for m in res["memory"]:
            lines.append(f"| {m['file']} | {m['duration_s'] / 60:.0f} min | {m['peak_rss_mib']:.0f} MiB | "
                         f"{m['elapsed_s']:.0f} s | {m['summary'].get('clips_added', m['summary'].get('clips', '?'))} |")
        lines.append("")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "avsearch-ingest-bench")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds-1080p", type=float, default=30.0)
    p.add_argument("--seconds-480p", type=float, default=60.0)
    p.add_argument("--modes", default=",".join(MODES), help="comma-separated, from: " + ", ".join(MODES))
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-folder", action="store_true", help="no folder part; keeps the last folder figures")
    p.add_argument("--seconds-long-480p", type=float, default=180.0, help="the folder's last, long file")
    p.add_argument("--folder-workers", default="", help="more decode-worker counts to time on the folder, e.g. 4,8 "
                   "(for machines with more cores: is the default of 2 too few?)")
    p.add_argument("--skip-decode", action="store_true", help="memory part only; keeps the last decode figures")
    p.add_argument("--long-hours", type=float, default=2.0)
    args = p.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("the ffmpeg command-line tool is needed for the baseline: apt-get install ffmpeg", file=sys.stderr)
        return 2
    modes = args.modes.split(",")
    args.work.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    files = [(args.work / f"h264-{h}p-{s:g}s-{n}slice.mp4", w, h, s, n)
             for w, h, s in ((1920, 1080, args.seconds_1080p), (854, 480, args.seconds_480p)) for n in (1, 4)]
    for path, w, h, s, n in ([] if args.skip_decode else files):
        if not path.exists():
            log(f"generating {path.name}")
            write_h264(path, width=w, height=h, seconds=s, slices=n)
    ffmpeg_version = subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0]
    res = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "pyav": av.__version__, "ffmpeg_version": ffmpeg_version, "repeats": args.repeats, "modes": modes,
           "decode": [], "memory": []}
    previous = args.out / "ingest.json"
    if args.skip_decode and previous.is_file():
        before = json.loads(previous.read_text())
        res |= {k: before[k] for k in ("date", "repeats", "modes", "decode")}
        files = []
    for path, *_, slices in files:
        res["decode"].append(bench_decode(path, args.repeats, modes, log) | {"slices": slices})
    if not args.skip_folder and files:
        long = args.work / f"h264-480p-{args.seconds_long_480p:g}s-1slice.mp4"
        if not long.exists():
            log(f"generating {long.name}")
            write_h264(long, width=854, height=480, seconds=args.seconds_long_480p, slices=1, seed=1)
        more = tuple(int(w) for w in args.folder_workers.split(",") if w.strip())
        res["folder"] = bench_folder([f[0] for f in files] + [long], args.repeats, log, more)
    elif previous.is_file():
        res["folder"] = json.loads(previous.read_text()).get("folder")
    if args.skip_memory and previous.is_file():  # keep the last memory figures, saying when they were taken
        before = json.loads(previous.read_text())
        res["memory"] = before.get("memory", [])
        res["memory_date"] = before.get("memory_date", before.get("date", "2026-11-23"))
    if not args.skip_memory:
        res["memory_date"] = time.strftime("%Y-%m-%d")
        for seconds in (300.0, args.long_hours * 3600):
            path = args.work / f"long-{seconds:g}s.mp4"
            if not path.exists():
                log(f"generating {path.name}")
                write_h264(path, width=320, height=180, seconds=seconds, fps=10, preset="ultrafast")
            res["memory"].append(index_peak_rss(path, args.work))
            log(f"indexed {path.name}: peak RSS {res['memory'][-1]['peak_rss_mib']:.0f} MiB "
                f"in {res['memory'][-1]['elapsed_s']:.0f} s")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(res, indent=2) + "\n")
    (args.out / "ingest.md").write_text(render_md(res))
    print(render_md(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
