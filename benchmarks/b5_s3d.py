"""B5: S3D feature extraction speed (seconds of video per wall second) and memory vs length.

    python benchmarks/b5_s3d.py                  # CPU, 224 px, random weights
    python benchmarks/b5_s3d.py --device cuda    # on a GPU (batch 32 by default there)

Prints markdown tables:

1. throughput: decode-only and decode + S3D (``nortonkit.s3d.extract_features``) on a synthetic
   320x240 @ 30 fps video, for each batch size, after one warm-up forward;
2. memory: peak RSS of a fresh subprocess extracting a short and a long synthetic video; with
   streamed decoding the two peaks should match (the official extractor's whole-video float32
   tensor, 18 MB per second of video, is listed for comparison).

Random weights are fine for speed: the network's cost does not depend on the weights.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nortonkit.s3d import S3D, embed_chunks, extract_features, iter_chunks  # noqa: E402


def make_video(path: Path, seconds: int, fps: int = 30, w: int = 320, h: int = 240) -> Path:
    import av

    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        s.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(seconds * fps):
            img = np.roll(base, 3 * i, axis=1)  # moving texture
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    return path


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    parent across fork + exec, which would report the benchmark driver's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build_model(device: str, warm_up: bool = True) -> S3D:
    torch.manual_seed(0)
    model = S3D(with_text=False).eval().to(device)
    if warm_up:
        with torch.inference_mode():  # allocator and kernel selection
            embed_chunks(model, torch.zeros(1, 30, 224, 224, 3, dtype=torch.uint8))
    return model


def child_memory(video: str, device: str, batch_size: int) -> None:
    model = build_model(device, warm_up=False)
    before = peak_rss_mb()
    t = time.perf_counter()
    feats = extract_features(video, model, batch_size=batch_size)
    print(json.dumps(dict(rows=len(feats), rss_after_load_mb=before, peak_rss_mb=peak_rss_mb(),
                          wall_s=time.perf_counter() - t)))


def throughput(video: Path, seconds: int, device: str, batch_sizes: list[int]) -> list[str]:
    rows = []
    t = time.perf_counter()
    n = sum(1 for _ in iter_chunks(video))
    dt = time.perf_counter() - t
    rows.append(f"| decode only (PyAV filter graph) | - | {n} | {dt:.1f} | {n / dt:.2f} |")
    model = build_model(device)
    for bs in batch_sizes:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t = time.perf_counter()
        feats = extract_features(video, model, batch_size=bs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        dt = time.perf_counter() - t
        rows.append(f"| decode + S3D fp32 ({device}) | {bs} | {len(feats)} | {dt:.1f} | "
                    f"{len(feats) / dt:.2f} |")
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--seconds", type=int, default=4, help="video length for throughput")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=None)
    p.add_argument("--mem-seconds", type=int, nargs=2, default=[10, 40])
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--child", nargs=3, metavar=("VIDEO", "DEVICE", "BATCH"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child_memory(args.child[0], args.child[1], int(args.child[2]))
        return
    cuda = args.device.startswith("cuda")
    batch_sizes = args.batch_sizes or ([8, 32] if cuda else [1, 4])
    if cuda:
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        gpu = torch.cuda.get_device_name(0)
    tmp = Path(tempfile.mkdtemp(prefix="b5_"))
    load = os.getloadavg()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, "
          f"torch {torch.__version__} ({torch.get_num_threads()} threads)"
          + (f", GPU {gpu}" if cuda else "") + f"; load average at start {load[0]:.1f}\n")

    video = make_video(tmp / "throughput.mp4", args.seconds)
    print(f"### Throughput, 224 px, {args.seconds} s synthetic 320x240 video\n")
    print("| stage | batch | seconds of video | wall s | video s / wall s |")
    print("|---|---:|---:|---:|---:|")
    for row in throughput(video, args.seconds, args.device, batch_sizes):
        print(row, flush=True)

    if args.skip_memory:
        return
    print("\n### Peak RSS of a fresh process vs video length (224 px, streamed)\n")
    print("| video s | rows | peak RSS after model build MB | peak RSS MB | whole-video float32 "
          "(official) MB | wall s |")
    print("|---:|---:|---:|---:|---:|---:|")
    bs = batch_sizes[0]
    for secs in args.mem_seconds:
        path = make_video(tmp / f"mem_{secs}.mp4", secs)
        out = subprocess.run([sys.executable, __file__, "--child", str(path), args.device,
                              str(bs)], capture_output=True, text=True, check=True)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        official = secs * 30 * 224 * 224 * 3 * 4 / 2**20
        print(f"| {secs} | {r['rows']} | {r['rss_after_load_mb']:.0f} | {r['peak_rss_mb']:.0f} "
              f"| {official:.0f} | {r['wall_s']:.1f} |", flush=True)
    print(f"\nload average at end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
