#!/usr/bin/env python
"""Extract Norton-style S3D features from your own videos: one 512-d row per second.

    python data_recipes/extract_features.py --checkpoint s3d_howto100m.pth \\
        --videos my_videos/ --out features/ [--shard-to feat_shard/ --split train]

Each video becomes ``<out>/<video_id>.npy``: float16, shape (N, 512), rows L2-normalised, row i =
second [i, i+1) (see data_recipes/EXTRACT.md). Videos are decoded with PyAV through the same
libavfilter chain as the official ffmpeg command and streamed through S3D in one-second chunks.

The run is resumable: valid outputs are skipped, invalid ones redone, every file is written
atomically. Per-video failures are collected and printed as a table at the end; the exit status
is 0 when everything succeeded, 1 when some videos failed, 2 for a setup error (bad checkpoint,
bad arguments, conflicting settings in the output folder).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.io import atomic_save_npy, atomic_write  # noqa: E402

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".flv", ".mpg", ".mpeg",
                    ".3gp", ".ogv", ".wmv", ".ts", ".mts"}
SETTINGS_FILE = "extraction.json"
# Settings that change the features; a folder must not mix them.
_BINDING = ("checkpoint_sha256", "fps", "size", "last_chunk", "rotation", "amp")


class Video(NamedTuple):
    video_id: str
    path: Path


class Failure(NamedTuple):
    video_id: str
    path: str
    error: str


class SetupError(Exception):
    """Stops the run before any video is processed (exit status 2)."""


# --------------------------------------------------------------------------- inputs


def _read_list(path: Path) -> list[Video]:
    base = path.parent
    videos = []
    if path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "video_path" not in reader.fieldnames:
                raise SetupError(f"{path}: expected a csv header with a 'video_path' column "
                                 f"(optional 'video_id'), got {reader.fieldnames}")
            for i, row in enumerate(reader, start=2):
                raw = (row.get("video_path") or "").strip()
                if not raw:
                    raise SetupError(f"{path}: line {i}: empty video_path")
                p = Path(raw) if Path(raw).is_absolute() else base / raw
                vid = (row.get("video_id") or "").strip() or p.stem
                videos.append(Video(vid, p))
        return videos
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            p = Path(line) if Path(line).is_absolute() else base / line
            videos.append(Video(p.stem, p))
    return videos


def collect_videos(sources: Sequence[str]) -> list[Video]:
    """Videos from folders (recursive, by extension), list files (.txt/.lst/.csv) or files.

    Relative paths inside a list are relative to the list's folder. The video id is the file
    name without its last extension unless a csv gives a ``video_id`` column. Duplicate ids and
    ids unusable as file names are setup errors (the official scripts overwrote silently).
    """
    videos: list[Video] = []
    for src in sources:
        p = Path(src)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_EXTENSIONS
                           and f.is_file() and not any(part.startswith(".") for part in
                                                       f.relative_to(p).parts))
            videos += [Video(f.stem, f) for f in found]
        elif p.is_file() and p.suffix.lower() in {".txt", ".lst", ".csv"}:
            videos += _read_list(p)
        elif p.is_file():
            videos.append(Video(p.stem, p))
        else:
            raise SetupError(f"--videos {src}: no such file or folder")
    seen: dict[str, Path] = {}
    for v in videos:
        if not v.video_id or "/" in v.video_id or v.video_id.startswith("."):
            raise SetupError(f"{v.path}: video id {v.video_id!r} cannot be a file name")
        if v.video_id in seen:
            raise SetupError(f"duplicate video id {v.video_id!r}: {seen[v.video_id]} and "
                             f"{v.path} would write the same feature file")
        seen[v.video_id] = v.path
    return videos


# --------------------------------------------------------------------------- outputs


def feature_file_rows(path: Path, dim: int = 512) -> int | None:
    """Rows of a valid finished feature file, or None if it is absent or invalid.

    Valid: a float16 ``(N, dim)`` array with ``N >= 1``, finite, row norms 1 within 1e-2.
    """
    if not path.is_file():
        return None
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError):
        return None
    if arr.dtype != np.float16 or arr.ndim != 2 or arr.shape[1] != dim or arr.shape[0] < 1:
        return None
    norms = np.linalg.norm(arr.astype(np.float32), axis=1)
    if not np.all(np.isfinite(norms)) or np.abs(norms - 1).max() > 1e-2:
        return None
    return int(arr.shape[0])


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


def _check_settings(out: Path, settings: dict[str, Any], allow_mixed: bool) -> None:
    path = out / SETTINGS_FILE
    if path.is_file() and not allow_mixed:
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as e:
            raise SetupError(f"{path}: unreadable ({e}); delete it or pass "
                             "--allow-mixed-settings") from None
        diff = {k: (old.get(k), settings[k]) for k in _BINDING if old.get(k) != settings[k]}
        if diff:
            text = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
            raise SetupError(f"{path}: this folder was extracted with other settings ({text}); "
                             "use another --out or pass --allow-mixed-settings")
    with atomic_write(path, "w") as f:
        json.dump(settings, f, indent=2, sort_keys=True)


# --------------------------------------------------------------------------- run


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description="S3D (HowTo100M MIL-NCE) features, one L2-normalised float16 row per second.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--checkpoint", required=True, type=Path,
                   help="s3d_howto100m.pth (see data_recipes/EXTRACT.md; never downloaded)")
    p.add_argument("--videos", required=True, nargs="+",
                   help="folders (searched recursively), list files (.txt/.lst, or .csv with a "
                        "video_path column) or video files")
    p.add_argument("--out", required=True, type=Path, help="folder for <video_id>.npy")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    p.add_argument("--batch-size", type=int, default=None,
                   help="seconds per forward pass (default: 32 on CUDA, 1 on CPU)")
    p.add_argument("--amp", action="store_true", help="CUDA fp16 autocast (not bit-faithful)")
    p.add_argument("--tf32", action="store_true",
                   help="allow TF32 convolutions on Ampere+ GPUs (off for fidelity)")
    p.add_argument("--last-chunk", choices=("pad", "repeat", "drop"), default="pad",
                   help="final partial second: black frames (official), repeat last frame, drop")
    p.add_argument("--rotation", choices=("auto", "official"), default="auto",
                   help="rotated videos: upright without distortion, or the official stretch")
    p.add_argument("--size", type=int, default=224,
                   help="crop size; the released features use 224 (smaller: smoke tests only)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads; CPU bytes are reproducible for a fixed count")
    p.add_argument("--shard-to", type=Path, default=None,
                   help="after extraction, write HowTo100M-style feature shards here")
    p.add_argument("--split", default="train", help="split name of the shards")
    p.add_argument("--shard-size", type=int, default=4096, help="videos per shard")
    p.add_argument("--allow-missing", action="store_true",
                   help="shard even if some videos failed (they are left out)")
    p.add_argument("--allow-mixed-settings", action="store_true",
                   help="add to a folder extracted with other settings")
    p.add_argument("--report", type=Path, default=None, help="also write the summary as json")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _resolve_device(name: str) -> Any:
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise SetupError(f"--device {name}: {e}") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SetupError(f"--device {name}: CUDA is not available on this machine")
    return device


def _print_summary(stats: dict[str, Any], failures: list[Failure], stream: Any) -> None:
    print("\nextraction summary", file=stream)
    print("| videos | extracted | skipped (done) | redone (invalid) | failed | seconds of video "
          "| wall s |", file=stream)
    print("|---:|---:|---:|---:|---:|---:|---:|", file=stream)
    print(f"| {stats['videos']} | {stats['extracted']} | {stats['skipped']} | {stats['redone']} "
          f"| {stats['failed']} | {stats['seconds']} | {stats['wall_s']:.1f} |", file=stream)
    if failures:
        print(f"\n{len(failures)} video(s) failed:", file=stream)
        print("| video_id | file | error |\n|---|---|---|", file=stream)
        for f in failures:
            err = f.error.replace("|", "/").replace("\n", " ")
            print(f"| {f.video_id} | {f.path} | {err} |", file=stream)


def run(args: argparse.Namespace) -> int:
    import torch

    from nortonkit import s3d

    t0 = time.perf_counter()
    if args.batch_size is not None and args.batch_size < 1:
        raise SetupError(f"--batch-size: expected an integer >= 1, got {args.batch_size}")
    if args.size < 2 or args.size % 2:
        raise SetupError(f"--size: expected an even integer >= 2, got {args.size}")
    if args.shard_size < 1:
        raise SetupError(f"--shard-size: expected an integer >= 1, got {args.shard_size}")
    videos = collect_videos(args.videos)
    if not videos:
        raise SetupError(f"--videos {' '.join(args.videos)}: no video files found "
                         f"(extensions: {', '.join(sorted(VIDEO_EXTENSIONS))})")
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    stats = dict(videos=len(videos), extracted=0, skipped=0, redone=0, failed=0, seconds=0,
                 wall_s=0.0)
    failures: list[Failure] = []
    warned: list[Failure] = []
    todo: list[tuple[Video, bool]] = []
    interrupted = False
    for v in videos:
        target = out / f"{v.video_id}.npy"
        if feature_file_rows(target) is not None:
            stats["skipped"] += 1
        else:
            todo.append((v, target.exists()))

    if todo:
        device = _resolve_device(args.device)
        if args.amp and device.type != "cuda":
            raise SetupError("--amp: autocast needs a CUDA device")
        if args.threads:
            torch.set_num_threads(args.threads)
        torch.backends.cudnn.allow_tf32 = args.tf32
        torch.backends.cuda.matmul.allow_tf32 = args.tf32
        batch_size = args.batch_size or (32 if device.type == "cuda" else 1)
        try:
            model = s3d.load_s3d(args.checkpoint, with_text=False, device=device)
        except (ValueError, FileNotFoundError) as e:
            raise SetupError(str(e)) from None
        settings = dict(
            checkpoint=str(args.checkpoint.resolve()), checkpoint_sha256=_sha256(args.checkpoint),
            fps=s3d.CHUNK_FPS, size=args.size, last_chunk=args.last_chunk,
            rotation=args.rotation, amp=args.amp, tf32=args.tf32, device=str(device),
            torch=torch.__version__, av=_av_version(), numpy=np.__version__,
        )
        _check_settings(out, settings, args.allow_mixed_settings)
        bar = _progress(len(todo), disabled=args.no_progress)
        try:
            for v, existed in todo:
                if interrupted:
                    break
                bar.set_postfix_str(v.video_id[:24])
                try:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        feats = s3d.extract_features(
                            v.path, model, batch_size=batch_size, amp=args.amp, size=args.size,
                            rotation=args.rotation, last_chunk=args.last_chunk)
                    atomic_save_npy(out / f"{v.video_id}.npy", feats)
                except Exception as e:  # every failure is reported in the summary
                    failures.append(Failure(v.video_id, str(v.path), f"{type(e).__name__}: {e}"))
                    stats["failed"] += 1
                except KeyboardInterrupt:  # finished files are complete; rerun to resume
                    interrupted = True
                    continue
                else:
                    stats["extracted"] += 1
                    stats["redone"] += int(existed)
                    stats["seconds"] += int(feats.shape[0])
                    warned += [Failure(v.video_id, str(v.path), str(w.message)) for w in caught]
                bar.update(1)
        finally:
            bar.close()

    stats["wall_s"] = time.perf_counter() - t0
    _print_summary(stats, failures, sys.stdout)
    for w in warned:
        print(f"warning: {w.video_id}: {w.error}", file=sys.stdout)
    if interrupted:
        print("\ninterrupted: finished files are complete; rerun the same command to resume",
              file=sys.stdout)
        return 130

    shard: dict[str, Any] | None = None
    if args.shard_to is not None:
        if failures and not args.allow_missing:
            print(f"\nsharding skipped: {len(failures)} video(s) failed; fix them and rerun, or "
                  "pass --allow-missing to shard the others", file=sys.stdout)
        else:
            shard = _shard(out, [v.video_id for v in videos
                                 if v.video_id not in {f.video_id for f in failures}], args)
    if args.report is not None:
        with atomic_write(args.report, "w") as f:
            json.dump(dict(stats, failures=[f._asdict() for f in failures],
                           warnings=[w._asdict() for w in warned], shards=shard), f, indent=2)
    return 1 if failures else 0


def _shard(out: Path, video_ids: list[str], args: argparse.Namespace) -> dict[str, Any]:
    try:
        from nortonkit.data.howto100m import shard_feature_dir
    except ImportError as e:
        raise SetupError(f"--shard-to needs nortonkit.data.howto100m ({e})") from None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = shard_feature_dir(out, video_ids, args.shard_to, args.split, args.shard_size)
    print(f"\nsharded {res.n_videos} videos ({res.n_rows} seconds) into {res.n_shards} "
          f"'{args.split}' shard(s) in {args.shard_to}", file=sys.stdout)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stdout)
    return dict(dir=str(args.shard_to), split=args.split, n_videos=res.n_videos,
                n_shards=res.n_shards, n_rows=res.n_rows, skipped=len(res.skipped))


def _av_version() -> str:
    import av

    lavfi = ".".join(map(str, av.library_versions["libavfilter"]))
    return f"{av.__version__} (libavfilter {lavfi})"


def _progress(total: int, disabled: bool) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="video", desc="s3d", disable=disabled, dynamic_ncols=True)


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = _parser().parse_args(argv)
    threads = torch.get_num_threads()  # --threads must not leak into a calling process
    try:
        return run(args)
    except SetupError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        torch.set_num_threads(threads)


if __name__ == "__main__":
    sys.exit(main())
