"""Codec matrix: the media layer against the ffmpeg CLI on files the ffmpeg CLI encoded itself.

Needs the ffmpeg command-line tool (Debian: `apt-get install ffmpeg`; it is the baseline and the
encoder here, never needed by the tests). Files are encoded from lavfi test sources (testsrc2,
moving; a sine for sound), one per codec family, at 1080p and at SD where the codec is used at
both; interlaced sources (DV, MPEG-2 from tape) come from a 50 fps source woven into 25 fps
interlaced frames, so that motion combs as it does on tape.

Each video file is decoded the way the indexer needs it -- frames sampled at 2 fps and scaled to
WAVE's pixel budget (bicubic), audio as 16 kHz mono float32 -- by

* ``ffmpeg``: the ffmpeg CLI (`fps=2,scale=W:H:flags=bicubic` rgb24 + `-ac 1 -ar 16000` f32le, to
  /dev/null; benchmarks/ingest.py's baseline);
* ``avsearch``: `decode_files` with the default DecodeOptions and decode workers (per-codec
  strategy: avsearch.media.strategy);
* ``one-way``: the same with `by_codec=False`, the single strategy of before (B-frame skipping,
  slice threads) for every codec;
* ``keyframes``: `skip_frames="keyframes"` (keyframes only, the explicit coarse option) for the
  inter-frame codecs.

Audio-only files (AAC, MP3, Opus, Vorbis, FLAC, PCM 16/24/32-bit and float, AC-3; 48 kHz stereo)
are decoded + resampled to 16 kHz mono by `decode_files` and by the CLI. Each decoder runs
`--repeats` times, alternating, best time kept; the figure is media seconds per wall second.

Last, `avsearch index --model tiny` on a folder holding one file of each video codec (the whole
pipeline: probe, plan, decode, embed with the tiny model, write), timed against the CLI decoding
the same folder two files at a time.

    python benchmarks/codecs.py                  # everything, results in benchmarks/results/codecs.*
    python benchmarks/codecs.py --only vp9-720p,prores-1080p --skip-index
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
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import av  # noqa: E402

from avsearch.media.decode import DecodeOptions  # noqa: E402
from avsearch.media.parallel import FileToDecode, decode_files  # noqa: E402
from avsearch.media.probe import probe  # noqa: E402
from avsearch.media.segment import plan_clips  # noqa: E402
from avsearch.media.strategy import choose_strategy  # noqa: E402
from ingest import model_size  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"

_SINE = ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000,aformat=channel_layouts=stereo"]
_PCM = ["-c:a", "pcm_s16le"]

# name -> (file suffix, frame size, fps, interlaced?, video encoder args, audio encoder args)
VIDEO = {
    "h264-1080p": (".mp4", "1920x1080", 30, False, ["-c:v", "libx264", "-preset", "veryfast"], ["-c:a", "aac"]),
    "h264-480p": (".mp4", "854x480", 30, False, ["-c:v", "libx264", "-preset", "medium", "-bf", "3"], ["-c:a", "aac"]),
    "hevc-1080p": (".mp4", "1920x1080", 30, False, ["-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
                                                     "bframes=3:log-level=error", "-tag:v", "hvc1"], ["-c:a", "aac"]),
    "mpeg2-576i": (".mpg", "720x576", 25, True, ["-c:v", "mpeg2video", "-b:v", "6M", "-bf", "2", "-g", "12",
                                                  "-flags", "+ildct+ilme", "-top", "1"], ["-c:a", "mp2"]),
    "mpeg2-1080i": (".ts", "1920x1080", 25, True, ["-c:v", "mpeg2video", "-b:v", "20M", "-bf", "2", "-g", "12",
                                                    "-flags", "+ildct+ilme", "-top", "1"], ["-c:a", "mp2"]),
    "vp9-720p": (".webm", "1280x720", 30, False, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                                   "-b:v", "2M"], ["-c:a", "libopus"]),
    "vp9-1080p": (".webm", "1920x1080", 30, False, ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8",
                                                     "-b:v", "4M", "-row-mt", "1"], ["-c:a", "libopus"]),
    "av1-720p": (".mkv", "1280x720", 30, False, ["-c:v", "libsvtav1", "-preset", "10", "-crf", "35"],
                 ["-c:a", "libopus"]),
    "av1-1080p": (".mkv", "1920x1080", 30, False, ["-c:v", "libsvtav1", "-preset", "12", "-crf", "35"],
                  ["-c:a", "libopus"]),
    "prores-1080p": (".mov", "1920x1080", 25, False, ["-c:v", "prores_ks", "-profile:v", "2"], _PCM),
    "dnxhr-1080p": (".mov", "1920x1080", 25, False, ["-c:v", "dnxhd", "-profile:v", "dnxhr_sq",
                                                      "-pix_fmt", "yuv422p"], ["-c:a", "pcm_s24le"]),
    "dnxhd-720p": (".mov", "1280x720", 25, False, ["-c:v", "dnxhd", "-b:v", "90M", "-pix_fmt", "yuv422p"], _PCM),
    "mjpeg-1080p": (".avi", "1920x1080", 30, False, ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"], _PCM),
    "mjpeg-480p": (".avi", "640x480", 30, False, ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p"], _PCM),
    "dv-576i": (".avi", "720x576", 25, True, ["-c:v", "dvvideo", "-pix_fmt", "yuv420p"], _PCM),
    "jpeg2000-576p": (".mov", "720x576", 25, False, ["-c:v", "jpeg2000", "-pix_fmt", "yuv420p"], _PCM),
}
# JPEG 2000 decodes at a third of real time through the CLI: a shorter file keeps the run in bounds.
SECONDS_CAP = {"jpeg2000-576p": 8.0}
INTRA = {"prores-1080p", "dnxhr-1080p", "dnxhd-720p", "mjpeg-1080p", "mjpeg-480p", "dv-576i", "jpeg2000-576p"}

# name -> (file suffix, audio encoder args)
AUDIO = {
    "aac": (".m4a", ["-c:a", "aac", "-b:a", "160k"]),
    "mp3": (".mp3", ["-c:a", "libmp3lame", "-b:a", "192k"]),
    "opus": (".opus", ["-c:a", "libopus", "-b:a", "128k"]),
    "vorbis": (".ogg", ["-c:a", "libvorbis", "-q:a", "5"]),
    "flac": (".flac", ["-c:a", "flac"]),
    "pcm_s16le": (".wav", ["-c:a", "pcm_s16le"]),
    "pcm_s24le": (".wav", ["-c:a", "pcm_s24le"]),
    "pcm_s32le": (".wav", ["-c:a", "pcm_s32le"]),
    "pcm_f32le": (".wav", ["-c:a", "pcm_f32le"]),
    "ac3": (".ac3", ["-c:a", "ac3", "-b:a", "384k"]),
}


# -- encoding (ffmpeg CLI) ----------------------------------------------------------------------


def encode_video(work: Path, name: str, seconds: float) -> Path:
    suffix, size, fps, interlaced, vargs, aargs = VIDEO[name]
    path = work / f"{name}-{seconds:g}s{suffix}"
    if path.exists():
        return path
    # Interlaced: a 50 fps source woven two fields to a frame (top field first), as a camera does.
    source = f"testsrc2=size={size}:rate={2 * fps if interlaced else fps}"
    vf = ["-vf", "tinterlace=mode=interleave_top,setfield=tff"] if interlaced else []
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", source, *_SINE, "-t", f"{seconds:g}",
           *vf, *vargs, *aargs, "-ar", "48000", "-shortest", str(path)]
    subprocess.run(cmd, check=True)
    return path


def encode_audio(work: Path, name: str, seconds: float) -> Path:
    suffix, aargs = AUDIO[name]
    path = work / f"audio-{name}-{seconds:g}s{suffix}"
    if not path.exists():
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *_SINE, "-t", f"{seconds:g}", *aargs,
                        "-ar", "48000", str(path)], check=True)
    return path


def time_alternating(decoders: dict, repeats: int, media_s: float) -> dict:
    """Each decoder (name -> a call returning facts) run `repeats` times, alternating; best kept.

    Wall time, and CPU time (this process's threads plus any child process's: user + system):
    on a machine shared with other jobs, wall time swings with their load, while CPU time counts
    the work done, which is what differs between the decoders.
    """
    import resource

    def cpu() -> float:
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in decoders}
    facts: dict[str, dict] = {}
    for _ in range(repeats):
        for name, decode in decoders.items():
            t0, c0 = time.perf_counter(), cpu()
            facts[name] = decode()
            runs[name].append((time.perf_counter() - t0, cpu() - c0))
    return {name: {"best_s": min(w for w, _ in times), "all_s": [w for w, _ in times],
                   "best_cpu_s": min(c for _, c in times), "all_cpu_s": [c for _, c in times],
                   "media_s_per_s": media_s / min(w for w, _ in times), **facts[name]}
            for name, times in runs.items()}


# -- decoders under test -------------------------------------------------------------------------


def ffmpeg_cli(path: Path, video: bool) -> dict:
    cmd = ["ffmpeg", "-nostdin", "-loglevel", "error", "-i", str(path)]
    if video:
        h, w = model_size(probe(path))
        cmd += ["-map", "0:v:0", "-vf", f"fps=2,scale={w}:{h}:flags=bicubic", "-pix_fmt", "rgb24",
                "-f", "rawvideo", "-y", "/dev/null"]
    cmd += ["-map", "0:a:0", "-ac", "1", "-ar", "16000", "-f", "f32le", "-y", "/dev/null"]
    subprocess.run(cmd, check=True)
    return {}


def media_layer(path: Path, options: DecodeOptions) -> dict:
    media = probe(path)
    ranges = plan_clips(media.duration_s, clip_s=10.0, min_last_s=1.0)
    frames = samples = 0
    for report in decode_files([FileToDecode(path, ranges, media=media)], options):
        if report.kind == "error":
            raise RuntimeError(f"{path}: {report.error}")
        if report.kind == "clip":
            frames += 0 if report.clip.frames is None else len(report.clip.frames)
            samples += 0 if report.clip.audio is None else len(report.clip.audio)
    return {"frames": frames, "audio_samples": samples}


def bench_file(path: Path, name: str, repeats: int, video: bool, log) -> dict:
    media = probe(path)
    decoders = {"ffmpeg": lambda: ffmpeg_cli(path, video), "avsearch": lambda: media_layer(path, DecodeOptions())}
    if video:
        decoders["one-way"] = lambda: media_layer(path, DecodeOptions(by_codec=False))
        if name not in INTRA:
            decoders["keyframes"] = lambda: media_layer(path, DecodeOptions(skip_frames="keyframes"))
        if name in INTRA:
            # Only the sampled frames are decoded; what is left is their conversion, full-size RGB then
            # PIL's bicubic (WAVE's reference): against one swscale pass, as the CLI does it.
            decoders["swscale"] = lambda: media_layer(path, DecodeOptions(resize="swscale"))
        if choose_strategy(media.video_codec, DecodeOptions()).family == "no-b-frames":
            # The default's slice (tile) threads against frame threads, all else equal.
            decoders["frame-threads"] = lambda: media_layer(path, DecodeOptions(thread_type="FRAME"))
    timed = time_alternating(decoders, repeats, media.duration_s)
    base, base_cpu = timed["ffmpeg"]["best_s"], timed["ffmpeg"]["best_cpu_s"]
    for d in timed.values():
        d["vs_ffmpeg"] = base / d["best_s"]
        d["cpu_vs_ffmpeg"] = base_cpu / max(d["best_cpu_s"], 1e-3)
    codec = media.video_codec if video else media.audio_codec
    out = {"name": name, "file": path.name, "codec": codec, "audio_codec": media.audio_codec,
           "size": f"{media.width}x{media.height}" if video else "", "fps": media.fps,
           "duration_s": media.duration_s, "size_mb": path.stat().st_size / 1e6,
           "strategy": choose_strategy(codec, DecodeOptions()).family if video else "audio", "decoders": timed}
    log(f"{name}: " + ", ".join(f"{k} {d['media_s_per_s']:.1f} media-s/s ({d['vs_ffmpeg']:.2f}x)"
                                for k, d in timed.items()))
    return out


def bench_index(paths: list[Path], work: Path, repeats: int, log) -> dict:
    """`avsearch index --model tiny` on a folder of `paths` (fresh index each run) vs the CLI decoding them."""
    folder = work / "mixed"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for p in paths:
        (folder / p.name).symlink_to(p)
    cli = shutil.which("avsearch") or str(Path(sys.executable).with_name("avsearch"))

    def index() -> dict:
        target = work / "mixed-index"
        shutil.rmtree(target, ignore_errors=True)
        proc = subprocess.run([cli, "index", str(folder), "--index", str(target), "--model", "tiny", "--json"],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"avsearch index failed: {proc.stderr[-2000:]}")
        out = proc.stdout
        return {"summary": json.loads(out[out.index("{"):]) if "{" in out else {}}

    def ffmpeg_two_at_a_time() -> dict:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda p: ffmpeg_cli(p, True), paths))
        return {}

    def decode_folder() -> dict:
        files = [FileToDecode(p, plan_clips(probe(p).duration_s, clip_s=10.0, min_last_s=1.0)) for p in paths]
        return {"clips": sum(r.kind == "clip" for r in decode_files(files, DecodeOptions()))}

    media_s = sum(probe(p).duration_s for p in paths)
    timed = time_alternating({"ffmpeg x2 (decode only)": ffmpeg_two_at_a_time,
                              "avsearch decode_files (decode only)": decode_folder, "avsearch index": index},
                             repeats, media_s)
    log("index: " + ", ".join(f"{k} {d['best_s']:.1f} s" for k, d in timed.items()))
    return {"files": [p.name for p in paths], "media_s": media_s, "decoders": timed}


def show_fields(path: Path, out: Path, at_s: float = 5.25) -> Path:
    """A sampled frame of an interlaced file as the indexer saw it before (the whole frame scaled:
    both fields, combed where things move) and now (one field), side by side."""
    import numpy as np
    from PIL import Image

    from avsearch.media.decode import read_clip

    pictures = [read_clip(path, at_s, at_s + 0.5, DecodeOptions(by_codec=by_codec), audio=False).frames[0]
                for by_codec in (False, True)]
    Image.fromarray(np.concatenate([pictures[0], np.zeros_like(pictures[0][:, :8]), pictures[1]], axis=1)).save(out)
    return out


# -- reporting ---------------------------------------------------------------------------------


def _cell(d: dict, key: str) -> str:
    x = d["decoders"].get(key)
    if not x:
        return "–"
    cpu = f", CPU {x['cpu_vs_ffmpeg']:.2f}x" if "cpu_vs_ffmpeg" in x else ""
    return f"{x['media_s_per_s']:.1f} ({x['vs_ffmpeg']:.2f}x{cpu})"


def render_md(res: dict) -> str:
    lines = ["# Codec matrix: the media layer vs the ffmpeg CLI", "",
             f"{res['date']}. Machine: {res['machine']} (shared with other jobs: figures are noisy). "
             f"PyAV {res['pyav']} (FFmpeg {res['pyav_ffmpeg']}), ffmpeg CLI: {res['ffmpeg_version']}.",
             f"Best of {res['repeats']} alternating runs; media seconds decoded per wall second (x: against "
             "the CLI in the same run; CPU x: the CLI's CPU seconds over ours, user + system, all threads). Video: frames at 2 fps scaled to the 176,400-pixel budget (bicubic) + "
             "16 kHz mono audio; `avsearch` is `decode_files` with default options (per-codec strategy), "
             "`one-way` the same with `by_codec=False` (before), `keyframes` the explicit keyframes-only option.",
             "", "| file | strategy | ffmpeg CLI | avsearch | one-way | keyframes | swscale | target |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for d in res["video"]:
        target = 5.0 if d["strategy"] == "intra-only" else 1.5
        met = "met" if d["decoders"]["avsearch"]["vs_ffmpeg"] >= target else "**missed**"
        lines.append(f"| {d['name']} ({d['codec']} {d['size']} {d['fps']:.0f} fps + {d['audio_codec']}, "
                     f"{d['duration_s']:.0f} s, {d['size_mb']:.0f} MB) | {d['strategy']} | "
                     f"{d['decoders']['ffmpeg']['media_s_per_s']:.1f} | {_cell(d, 'avsearch')} | "
                     f"{_cell(d, 'one-way')} | {_cell(d, 'keyframes')} | {_cell(d, 'swscale')} | ≥ {target:g}x {met} |")
    lines += ["", "## Audio (decode + resample to 16 kHz mono; 48 kHz stereo sources)", "",
              "| file | ffmpeg CLI | avsearch | target |", "|---|---:|---:|---|"]
    for d in res["audio"]:
        met = "met" if d["decoders"]["avsearch"]["vs_ffmpeg"] >= 2.0 else "**missed**"
        lines.append(f"| {d['name']} ({d['duration_s']:.0f} s) | {d['decoders']['ffmpeg']['media_s_per_s']:.0f} | "
                     f"{_cell(d, 'avsearch')} | ≥ 2x {met} |")
    threaded = [d for d in res["video"] if "frame-threads" in d["decoders"]]
    if threaded:
        lines += ["", "## VP9/AV1: slice (tile) threads, the default, against frame threads", "",
                  "| file | ffmpeg CLI | slice threads | frame threads |", "|---|---:|---:|---:|"]
        for d in threaded:
            lines.append(f"| {d['name']} | {d['decoders']['ffmpeg']['media_s_per_s']:.1f} | {_cell(d, 'avsearch')} | "
                         f"{_cell(d, 'frame-threads')} |")
    idx = res.get("index")
    if idx:
        lines += ["", "## The whole pipeline on a folder of all the video files", "",
                  f"{len(idx['files'])} files, {idx['media_s']:.0f} s of media: `avsearch index --model tiny` "
                  "(fresh index: probe, decode, embed with the tiny model, write) against the ffmpeg CLI only "
                  "decoding the same files two at a time, and the media layer decoding them as the indexer does "
                  "(`decode_files`, default workers).", "",
                  "| run | best time | media-s/s | CPU time |", "|---|---:|---:|---:|"]
        for k, d in idx["decoders"].items():
            lines.append(f"| {k} | {d['best_s']:.1f} s | {d['media_s_per_s']:.1f} | {d.get('best_cpu_s', 0):.1f} s |")
    lines += ["", "What the figures mean and why some targets are missed: `codecs-reading.md` (written by hand).", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "avsearch-codecs-bench")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seconds", type=float, default=20.0, help="length of each video file")
    p.add_argument("--audio-seconds", type=float, default=120.0, help="length of each audio file")
    p.add_argument("--only", default="", help="comma-separated names from: " + ", ".join([*VIDEO, *AUDIO]))
    p.add_argument("--skip-index", action="store_true", help="no whole-pipeline run")
    p.add_argument("--stem", default="", help="results file name (default codecs, or codecs-partial with --only)")
    args = p.parse_args(argv)
    if shutil.which("ffmpeg") is None:
        print("the ffmpeg command-line tool is needed (encoder and baseline): apt-get install ffmpeg", file=sys.stderr)
        return 2
    only = {n for n in args.only.split(",") if n}
    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t_start:7.1f}s] {msg}", flush=True)

    res = {"date": time.strftime("%Y-%m-%d"), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "pyav": av.__version__, "pyav_ffmpeg": ".".join(map(str, av.ffmpeg_version_info)) if isinstance(
               av.ffmpeg_version_info, tuple) else str(av.ffmpeg_version_info),
           "ffmpeg_version": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout.split("\n")[0],
           "repeats": args.repeats, "seconds": args.seconds, "video": [], "audio": []}
    stem = args.stem or ("codecs" if not only else "codecs-partial")

    def save() -> None:  # after every file: a run cut short keeps what it measured
        (args.out / f"{stem}.json").write_text(json.dumps(res, indent=2) + "\n")
        (args.out / f"{stem}.md").write_text(render_md(res))

    videos = []
    for name in VIDEO:
        if only and name not in only:
            continue
        log(f"encoding {name}")
        videos.append(encode_video(args.work, name, min(args.seconds, SECONDS_CAP.get(name, args.seconds))))
        res["video"].append(bench_file(videos[-1], name, args.repeats, True, log))
        save()
    for name in AUDIO:
        if only and name not in only:
            continue
        path = encode_audio(args.work, name, args.audio_seconds)
        res["audio"].append(bench_file(path, name, args.repeats, False, log))
        save()
    interlaced = [v for v in videos if v.name.startswith("mpeg2-576i")]
    if interlaced:
        show_fields(interlaced[0], args.out / "codecs-interlaced.png")
    if not args.skip_index and videos:
        res["index"] = bench_index(videos, args.work, max(1, args.repeats - 1), log)
    save()
    print(render_md(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
