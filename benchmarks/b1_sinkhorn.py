"""B1: the L_video transport workload, nortonkit vs POT.

    python benchmarks/b1_sinkhorn.py                  # CPU, 2 torch threads, writes results/b1.md
    python benchmarks/b1_sinkhorn.py --device cuda    # on a GPU, when one is present
    python benchmarks/b1_sinkhorn.py --no-write       # print the table only

Workload (Norton's sequence loss at the paper's batch size, docs/protocols.md 2.3 items 7-10):
a 1024 x 1024 caption-clip similarity matrix in [0, 1] is cut into G^2 = 128^2 = 16,384 blocks
of 8 x 8, the bucket value p is the bottom-30 % quantile of the aligned (diagonal) pairs, and
every block is solved with the alignable prompt bucket (9 x 9 augmented problems, SuperGlue
marginals), eps = 0.1, exactly 50 iterations, float32.

Compared, on the same inputs and with the same 50 iterations from u = v = 0:

1. ``nortonkit.bucket_sinkhorn`` (the public call, validation included);
2. nortonkit's log-domain back-end alone (the fallback used for gradients / extreme inputs);
3. POT's batched ``ot.batch.solve_batch`` on torch tensors with ``method="log_sinkhorn"``,
   given the augmented cost ``-S_bar`` and the same marginals, ``max_iter=50``, ``tol=0`` (so
   all 50 iterations run; POT also checks the marginal error every 10th iteration);
4. POT's ``ot.sinkhorn(method="sinkhorn_log")`` in a Python loop, timed on a subset and
   extrapolated to all problems.

Accuracy: every plan is compared with a float64 run of the same 50 iterations (a plain dense
log-domain loop written below, independent of nortonkit). Timings are the median of several
repeats after one warm-up; the methods are interleaved within each repeat so that load from
other processes hits them alike (the load average is reported).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from nortonkit import transport as sk  # noqa: E402
from nortonkit.io import atomic_write  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "b1.md"


def make_workload(n_problems: int, size: int, seed: int, device: str):
    """Blocks ``(P, L, L)`` of a min-max normalised cosine-similarity matrix, and ``p``."""
    groups = math.isqrt(n_problems)
    if groups * groups != n_problems:
        raise ValueError(f"--problems: expected a square number (G^2), got {n_problems}")
    g = torch.Generator().manual_seed(seed)
    b = groups * size  # clips in the batch (1024 for the paper's setting)
    text = torch.nn.functional.normalize(torch.randn(b, 64, generator=g), dim=-1)
    video = torch.nn.functional.normalize(text + 0.8 * torch.randn(b, 64, generator=g), dim=-1)
    sim = text @ video.T  # (B, B) captions x clips
    sim = (sim - sim.min()) / (sim.max() - sim.min())  # [0, 1] as in the official fusion
    p = sk.bucket_value_from_quantile(torch.diagonal(sim), 0.3)
    blocks = sim.view(groups, size, groups, size).transpose(1, 2).reshape(-1, size, size)
    return blocks.contiguous().to(device), float(p)


def augmented_problem(s: torch.Tensor, p: float):
    """``S_bar`` (P, L+1, L+1) and the SuperGlue marginals (P, L+1), as POT receives them."""
    n_p, m, n = s.shape
    aug = torch.full((n_p, m + 1, n + 1), p, dtype=s.dtype, device=s.device)
    aug[:, :m, :n] = s
    a = torch.full((n_p, m + 1), 1.0 / (m + n), dtype=s.dtype, device=s.device)
    a[:, m] = n / (m + n)
    b = torch.full((n_p, n + 1), 1.0 / (m + n), dtype=s.dtype, device=s.device)
    b[:, n] = m / (m + n)
    return aug, a, b


def reference_plans(aug: torch.Tensor, a, b, eps: float, n_iters: int) -> torch.Tensor:
    """Float64 dense log-domain Sinkhorn, same iterates; kept (L, L) blocks."""
    k = aug.double() / eps
    la, lb = a.double().log(), b.double().log()
    u = torch.zeros_like(la)
    v = torch.zeros_like(lb)
    for _ in range(n_iters):
        u = la - torch.logsumexp(k + v[:, None, :], dim=-1)
        v = lb - torch.logsumexp(k + u[:, :, None], dim=-2)
    return (k + u[:, :, None] + v[:, None, :]).exp()[:, :-1, :-1]


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str) -> tuple[float, object]:
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - t0, out


def machine_line(device: str) -> str:
    mem = "?"
    try:
        with open("/proc/meminfo") as f:
            kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
        mem = f"{kb / 2**20:.0f} GiB"
    except (OSError, StopIteration, ValueError):
        pass
    cpu = platform.processor() or platform.machine()
    line = (
        f"{os.cpu_count()}-core CPU ({cpu}), {mem} RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}"
    )
    if device.startswith("cuda"):
        line += f", GPU {torch.cuda.get_device_name()}"
    return line


def run(args: argparse.Namespace) -> str:
    import ot
    from ot.batch import solve_batch

    torch.set_num_threads(args.threads)
    device = args.device
    s, p = make_workload(args.problems, args.size, args.seed, device)
    aug, a, b = augmented_problem(s, p)
    eps, iters = args.eps, args.iters
    load_before = os.getloadavg()

    def ours():
        return sk.bucket_sinkhorn(s, p, eps=eps, n_iters=iters, marginals="superglue").plan

    def ours_log():
        with torch.no_grad():
            lp, _, _ = sk._iterate_log(aug / eps, a.log(), b.log(), None, None, iters)
        return lp.exp()[:, :-1, :-1]

    def pot_batched():
        res = solve_batch(
            -aug,
            reg=eps,
            a=a,
            b=b,
            max_iter=iters,
            tol=0.0,
            method="log_sinkhorn",
            grad="detach",
        )
        return res.plan[:, :-1, :-1]

    methods = {
        "nortonkit `bucket_sinkhorn`": ours,
        "nortonkit log-domain back-end (fallback)": ours_log,
        "POT `ot.batch.solve_batch` (log_sinkhorn)": pot_batched,
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    plans = {}
    for name, fn in methods.items():  # warm-up
        plans[name] = timed(fn, device)[1]
    for _ in range(args.repeats):
        for name, fn in methods.items():
            times[name].append(timed(fn, device)[0])

    # POT's per-problem solver in a Python loop (NumPy, CPU), on a subset; extrapolated.
    subset = min(args.loop_subset, args.problems)
    aug_np = aug[:subset].cpu().numpy()
    a_np, b_np = a[:subset].cpu().numpy(), b[:subset].cpu().numpy()

    def pot_loop():
        with warnings.catch_warnings():  # stopThr=0 runs all iterations and then warns
            warnings.simplefilter("ignore", UserWarning)
            return np.stack(
                [
                    ot.sinkhorn(
                        a_np[i],
                        b_np[i],
                        -aug_np[i],
                        reg=eps,
                        method="sinkhorn_log",
                        numItermax=iters,
                        stopThr=0.0,
                    )
                    for i in range(subset)
                ]
            )

    pot_loop()  # warm-up
    loop_times = [timed(pot_loop, "cpu")[0] for _ in range(args.loop_repeats)]
    loop_plans = torch.from_numpy(pot_loop()[:, :-1, :-1])
    load_after = os.getloadavg()

    ref = reference_plans(aug, a, b, eps, iters)
    errors = {name: float((q.double() - ref).abs().max()) for name, q in plans.items()}
    loop_err = float((loop_plans.double() - ref[:subset].cpu()).abs().max())

    med = {name: statistics.median(t) for name, t in times.items()}
    loop_med = statistics.median(loop_times) * args.problems / subset
    pot_ref = med["POT `ot.batch.solve_batch` (log_sinkhorn)"]
    ours_med = med["nortonkit `bucket_sinkhorn`"]
    speedup = pot_ref / ours_med
    target = "met" if speedup >= 3.0 else "NOT met"

    rows = [
        "| method | median time (s) | per problem (us) | vs POT batched | max abs error vs "
        "float64 |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in methods:
        rows.append(
            f"| {name} | {med[name]:.3f} | {med[name] / args.problems * 1e6:.2f} | "
            f"{pot_ref / med[name]:.2f}x | {errors[name]:.1e} |"
        )
    rows.append(
        f"| POT `ot.sinkhorn` loop (sinkhorn_log), {subset} problems extrapolated | "
        f"{loop_med:.1f} | {loop_med / args.problems * 1e6:.0f} | {pot_ref / loop_med:.3f}x | "
        f"{loop_err:.1e} |"
    )
    spread = {n: (min(t), max(t)) for n, t in times.items()}
    lines = [
        "# B1: Sinkhorn with the alignable prompt bucket (L_video workload)",
        "",
        f"- Workload: {args.problems:,} problems of {args.size}x{args.size} plus bucket "
        f"({args.size + 1}x{args.size + 1} augmented), SuperGlue marginals, eps = {eps}, "
        f"{iters} iterations, float32, p = bottom-30 % quantile of the aligned pairs "
        f"(p = {p:.4f}); blocks of a min-max normalised 1024 x 1024 cosine-similarity matrix.",
        f"- Device: {device}; torch threads: {torch.get_num_threads()}; seed: {args.seed}.",
        f"- Machine: {machine_line(device)}.",
        f"- Versions: torch {torch.__version__}, POT {ot.__version__}, numpy {np.__version__}.",
        f"- Timing: median of {args.repeats} interleaved repeats after one warm-up "
        f"(POT loop: median of {args.loop_repeats} runs over {subset} problems, scaled to "
        f"{args.problems:,}). Load average before / after: "
        f"{load_before[0]:.2f} / {load_after[0]:.2f} (the machine is shared; min-max per "
        "method: " + ", ".join(f"{lo:.3f}-{hi:.3f} s" for lo, hi in spread.values()) + ").",
        "- Error: max |plan - plan_float64| over all kept entries, against a float64 run of the "
        f"same {iters} iterations (plan entries are at most 1/16).",
        "",
        *rows,
        "",
        f"Speed-up of `bucket_sinkhorn` over POT's batched solver: **{speedup:.1f}x** (target "
        f">= 3x: {target}). Accuracy target (1e-5 of float64): "
        f"{'met' if errors['nortonkit `bucket_sinkhorn`'] <= 1e-5 else 'NOT met'}.",
        "",
        "Why it is faster: with no gradient recorded and S/eps of moderate spread, the "
        "iterations run on a kernel exponentiated once, exp(S/eps - max) (zero on masked "
        "entries) and stored batch-last (M, N, P), with max-normalised scalings and a log "
        "offset per problem: each half-iteration is one vectorised product-and-sum over the "
        "kernel plus O(M + N) work per problem, instead of an (M, N) add, max, exp, sum and "
        "log per problem. The iterates are the log-domain ones (same start, "
        "same count); problems whose spread of S/eps could under- or overflow the dtype, and "
        '`grad="unroll"`, take the log-domain back-end (row 2).',
        "",
        "Reproduce: `python benchmarks/b1_sinkhorn.py` "
        f"(`--device cuda` on a GPU). Command used: `{' '.join(sys.argv)}`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    ap.add_argument("--problems", type=int, default=16384, help="G^2 problems (default 16384)")
    ap.add_argument("--size", type=int, default=8, help="L, clips per sequence (default 8)")
    ap.add_argument("--iters", type=int, default=50)
    ap.add_argument("--eps", type=float, default=0.1)
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--loop-subset", type=int, default=200)
    ap.add_argument("--loop-repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--no-write", action="store_true", help="print only")
    args = ap.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        ap.error("--device cuda: no CUDA device is available here")
    report = run(args)
    print(report)
    if not args.no_write:
        with atomic_write(args.out, "w") as f:
            f.write(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
