"""B3: all-pairs video-paragraph sequence measures at YouCookII scale, nortonkit vs dtw-python.

    python benchmarks/b3_sequence.py                 # CPU, 1 and 2 torch threads, results/b3.md
    python benchmarks/b3_sequence.py --threads 2     # one thread count only
    python benchmarks/b3_sequence.py --no-write      # print the table only

Workload (Norton's video-paragraph retrieval, Table 2, background removed): 436 videos (the
YouCookII validation set) with K_v ~ U{3, ..., 20} clips each (seeded), and one paragraph of
K_v captions per video; caption k is a noisy copy of clip k (unit-norm 64-d features). Every
paragraph is scored against every video: 436 x 436 = 190,096 (paragraph, video) pairs of
different sizes, padded to 20 x 20 and masked. Measures, all on every pair:

1. Cap. Avg. (``alignment.cap_avg``): per caption the best clip, mean over captions;
2. DTW (``alignment.dtw``) on the cost ``1 - S``;
3. OTAM (``alignment.otam``) on ``1 - S`` in both orientations, summed as the official metric;
4. OT: ``sinkhorn.sinkhorn(S, eps=0.1, n_iters=50)`` and the score ``sum(Q * S)``; the pairs
   are grouped by their exact size (m, n) so that each call is unmasked.

Reference: dtw-python's ``dtw(C, distance_only=True, step_pattern="symmetric1")`` in a Python
loop over a random subset of the pairs, extrapolated to all pairs; its values are compared
with ours on that subset (float32 run, and a float64 run that must agree to 1e-12).
Timings are medians of interleaved repeats after one warm-up; the machine may be shared, so
the load average is reported next to wall and CPU seconds.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nortonkit.alignment import cap_avg, dtw, otam  # noqa: E402
from nortonkit.io import atomic_write  # noqa: E402
from nortonkit.transport import sinkhorn  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "b3.md"


def make_workload(n_videos: int, min_clips: int, max_clips: int, dim: int, noise: float, seed: int):
    """Similarity blocks (P, L, L), rows = captions of paragraph q, columns = clips of video v.

    Pair ``p = q * n_videos + v``; returns the blocks and the prefix masks.
    """
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(min_clips, max_clips + 1, (n_videos,), generator=g)
    big = max_clips
    clips = torch.nn.functional.normalize(torch.randn(n_videos, big, dim, generator=g), dim=-1)
    jitter = torch.nn.functional.normalize(torch.randn(n_videos, big, dim, generator=g), dim=-1)
    caps = torch.nn.functional.normalize(clips + noise * jitter, dim=-1)
    valid = torch.arange(big)[None, :] < lengths[:, None]  # (V, L)
    clips = clips * valid[:, :, None]  # zero padding (masked below anyway)
    caps = caps * valid[:, :, None]
    sim = torch.einsum("qtd,vcd->qvtc", caps, clips).reshape(n_videos * n_videos, big, big)
    row_mask = valid.repeat_interleave(n_videos, dim=0)  # (P, L): captions of q
    col_mask = valid.repeat(n_videos, 1)  # (P, L): clips of v
    return sim.contiguous(), row_mask, col_mask, lengths


def ot_scores(
    sim: torch.Tensor,
    rows: torch.Tensor,
    cols: torch.Tensor,
    eps: float,
    n_iters: int,
    chunk: int = 4096,
) -> torch.Tensor:
    """``sum(Q * S)`` with ``Q = sinkhorn(S, eps, n_iters)`` per pair, grouped by exact size."""
    out = torch.empty(sim.shape[0], dtype=sim.dtype)
    key = rows * (sim.shape[2] + 1) + cols
    order = torch.argsort(key, stable=True)
    keys, counts = torch.unique_consecutive(key[order], return_counts=True)
    start = 0
    for k, cnt in zip(keys.tolist(), counts.tolist()):
        idx = order[start : start + cnt]
        start += cnt
        m, n = divmod(k, sim.shape[2] + 1)
        for s in range(0, cnt, chunk):
            part = idx[s : s + chunk]
            block = sim[part, :m, :n]  # (G, m, n), unmasked
            plan = sinkhorn(block, eps=eps, n_iters=n_iters).plan
            out[part] = (plan * block).sum(dim=(1, 2))
    return out


def recall_at_1(scores: torch.Tensor, n_videos: int) -> float:
    """Paragraph -> video R@1 from pair scores (higher = better), pair ``q * V + v``."""
    mat = scores.view(n_videos, n_videos)
    return float((mat.argmax(dim=1) == torch.arange(n_videos)).double().mean())


def timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - t0, time.process_time() - c0, out


def machine_line() -> str:
    mem, cpu = "?", platform.processor() or platform.machine()
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
        with open("/proc/cpuinfo") as f:
            cpu = next(line for line in f if line.startswith("model name")).split(":")[1].strip()
    except (OSError, StopIteration, ValueError, IndexError):
        pass
    return (
        f"{os.cpu_count()}-core CPU ({cpu}), {mem} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )


def run(args: argparse.Namespace) -> str:
    import dtw as dtwpy

    threads = args.threads
    torch.set_num_threads(threads[0])
    load_before = os.getloadavg()
    t_sim, _, (sim, rm, cm, lengths) = timed(
        lambda: make_workload(
            args.videos, args.min_clips, args.max_clips, args.dim, args.noise, args.seed
        )
    )
    n_pairs = sim.shape[0]
    rows, cols = rm.sum(1), cm.sum(1)

    cost_box: list[torch.Tensor] = []

    def m_cost():
        cost_box[:] = [1.0 - sim]  # (P, L, L), shared by DTW and OTAM
        return None

    def m_cap():
        return cap_avg(sim.transpose(1, 2), cm, rm)  # (P, clips, captions)

    def m_dtw():
        return -dtw(cost_box[0], rm, cm).cost

    def m_otam():
        cost = cost_box[0]
        return -(otam(cost, rm, cm).cost + otam(cost.transpose(1, 2), cm, rm).cost)

    def m_ot():
        return ot_scores(sim, rows, cols, args.eps, args.iters)

    dtw_key = "DTW (`dtw` on C)"
    methods = {
        "cost C = 1 - S (shared by DTW and OTAM)": m_cost,
        "Cap. Avg. (`cap_avg`)": m_cap,
        dtw_key: m_dtw,
        "OTAM (`otam` on C and C^T, summed)": m_otam,
        f"OT (`sinkhorn`, eps {args.eps}, {args.iters} iterations, score sum(Q*S))": m_ot,
    }
    wall = {(t, k): [] for t in threads for k in methods}
    cpu = {(t, k): [] for t in threads for k in methods}
    scores = {}
    with torch.no_grad():
        for name, fn in methods.items():  # warm-up
            scores[name] = fn()
        for _ in range(args.repeats):  # thread settings and measures interleaved
            for t in threads:
                torch.set_num_threads(t)
                for name, fn in methods.items():
                    w, c, _ = timed(fn)
                    wall[t, name].append(w)
                    cpu[t, name].append(c)
    torch.set_num_threads(threads[0])

    # dtw-python on a random subset, extrapolated.
    g = torch.Generator().manual_seed(args.seed + 1)
    subset = torch.randperm(n_pairs, generator=g)[: args.subset]
    cost64 = 1.0 - sim[subset].double()  # the exact float64 costs both implementations see
    blocks = [cost64[i, : rows[p], : cols[p]].numpy() for i, p in enumerate(subset.tolist())]

    def loop():
        return np.array(
            [
                dtwpy.dtw(
                    c, keep_internals=False, distance_only=True, step_pattern="symmetric1"
                ).distance
                for c in blocks
            ]
        )

    loop()  # warm-up
    loop_wall, loop_cpu = [], []
    for _ in range(args.loop_repeats):
        w, c, ref = timed(loop)
        loop_wall.append(w)
        loop_cpu.append(c)
    ours32 = -scores[dtw_key][subset].double().numpy()
    with torch.no_grad():
        ours64 = dtw(cost64, rm[subset], cm[subset]).cost.numpy()
    err32 = float(np.abs(ours32 - ref).max())
    err64 = float(np.abs(ours64 - ref).max())
    load_after = os.getloadavg()

    med_w = {k: statistics.median(v) for k, v in wall.items()}
    med_c = {k: statistics.median(v) for k, v in cpu.items()}
    scale = n_pairs / len(blocks)
    loop_w, loop_c = statistics.median(loop_wall) * scale, statistics.median(loop_cpu) * scale

    def label(t: int) -> str:
        return f"{t} thread{'s' if t > 1 else ''}"

    head = "| measure | " + " | ".join(f"{label(t)}: wall (s) | CPU (s)" for t in threads)
    table = [
        head + " | R@1 (synthetic) |",
        "|---|" + "---:|---:|" * len(threads) + "---:|",
    ]
    for name in methods:
        r1 = "" if scores[name] is None else f"{recall_at_1(scores[name], args.videos):.3f}"
        cells = " | ".join(f"{med_w[t, name]:.3f} | {med_c[t, name]:.3f}" for t in threads)
        table.append(f"| {name} | {cells} | {r1} |")
    totals = {
        t: (sum(med_w[t, k] for k in methods), sum(med_c[t, k] for k in methods)) for t in threads
    }
    cells = " | ".join(f"**{totals[t][0]:.3f}** | **{totals[t][1]:.3f}**" for t in threads)
    table.append(f"| **all four measures, cost included** | {cells} | |")
    cells = " | ".join(f"{loop_w:.2f} | {loop_c:.2f}" for _ in threads)
    table.append(
        f"| dtw-python loop (symmetric1, single-threaded), {len(blocks):,} pairs "
        f"extrapolated | {cells} | |"
    )
    verdicts = []
    for t in threads:
        speed_w = loop_w / med_w[t, dtw_key]
        speed_c = loop_c / med_c[t, dtw_key]
        verdicts.append(
            f"- {label(t)}: DTW **{speed_w:.0f}x** faster than the dtw-python loop in wall time "
            f"({speed_c:.0f}x in CPU time; target >= 20x: "
            f"{'met' if speed_w >= 20.0 else 'NOT met'}); all four measures on all pairs "
            f"**{totals[t][0]:.2f} s** wall (target <= 5 s: "
            f"{'met' if totals[t][0] <= 5.0 else 'NOT met'})."
        )
    lines = [
        "# B3: all-pairs video-paragraph sequence measures (Cap. Avg., DTW, OTAM, OT)",
        "",
        f"- Workload: {args.videos} videos x {args.videos} paragraphs = {n_pairs:,} pairs; "
        f"clips per video K_v ~ U{{{args.min_clips}..{args.max_clips}}} (seeded, mean "
        f"{lengths.double().mean():.1f}), caption = unit(clip + {args.noise} x random unit "
        f"vector), {args.dim}-d unit features, similarity blocks padded to "
        f"{args.max_clips} x {args.max_clips} with prefix masks, float32. Building the "
        f"blocks (one einsum) took {t_sim:.2f} s and is not counted below.",
        f"- Seed: {args.seed}; torch threads: {', '.join(map(str, threads))} (interleaved).",
        f"- Machine: {machine_line()}.",
        f"- Versions: torch {torch.__version__}, numpy {np.__version__}, dtw-python "
        f"{getattr(dtwpy, '__version__', '?')}.",
        f"- Timing: median of {args.repeats} interleaved repeats after one warm-up, wall and "
        f"process CPU time. Load average before / after: {load_before[0]:.2f} / "
        f"{load_after[0]:.2f}. The machine is shared with other jobs: under load, two torch "
        "threads can be far slower than one (each small op waits for the slower thread), so "
        "compare the CPU columns when the load is high.",
        "",
        *table,
        "",
        *verdicts,
        f"- Same DTW values: on {len(blocks):,} random pairs, max |ours - dtw-python| = "
        f"{err64:.1e} in float64 and {err32:.1e} from the float32 run.",
        "- How: DTW is an anti-diagonal wavefront over all pairs at once (39 vectorised steps "
        "for 20 x 20, each pair's value read at its own (m-1, n-1)); OTAM is a column "
        "wavefront (20 steps); both run in place on chunks of 8,192 pairs that stay in "
        "cache. OT runs one unmasked `sinkhorn` call per exact pair size (m, n) and chunk; "
        "it dominates the total.",
        "",
        f"Reproduce: `python benchmarks/b3_sequence.py`. Command used: `{' '.join(sys.argv)}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=436)
    ap.add_argument("--min-clips", type=int, default=3)
    ap.add_argument("--max-clips", type=int, default=20)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--noise", type=float, default=1.0, help="caption noise level (default 1)")
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument(
        "--threads",
        type=lambda v: [int(t) for t in v.split(",")],
        default=[1, 2],
        help="torch CPU thread counts, comma-separated, timed interleaved (default 1,2)",
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--subset", type=int, default=2000, help="pairs for the dtw-python loop")
    ap.add_argument("--loop-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if not 1 <= args.min_clips <= args.max_clips:
        ap.error(
            f"--min-clips/--max-clips: expected 1 <= min <= max, got "
            f"{args.min_clips}, {args.max_clips}"
        )
    if not args.threads or min(args.threads) < 1:
        ap.error(f"--threads: expected positive integers, got {args.threads}")
    if args.subset < 1 or args.videos < 1:
        ap.error("--subset and --videos: expected positive integers")
    report = run(args)
    print(report)
    if not args.no_write:
        with atomic_write(args.out, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
