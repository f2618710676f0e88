"""B2: Norton's fine-grained similarity (Eq. 5) at the pre-training shape, chunked vs naive.

    python benchmarks/b2_similarity.py                  # CPU, 2 torch threads, writes results/b2.md
    python benchmarks/b2_similarity.py --quick          # 256 x 256 pairs, a few seconds
    python benchmarks/b2_similarity.py --device cuda    # on a GPU, when one is present
    python benchmarks/b2_similarity.py --no-write       # print the table only

Workload (docs/protocols.md §2.3 items 2-4, §9 item 11): 1,024 clips x 1,024 captions of one
pre-training batch, V = 18 frame-token positions (CLS + 16 frames + SEP, CLS masked, 3-16 valid
frames + SEP) and T = 31 word-token positions (CLS masked, 8-29 words + SEP), D = 768, float32,
alpha = 1, padding filled with random vectors (as encoder outputs are). Compared:

1. ``naive``: the straightforward einsum ``"avd,btd->abvt"`` that materialises the
   (1024, 1024, 18, 31) similarity tensor (2.3 GB), masks it with -inf and takes
   ``torch.logsumexp`` over each token axis (exact masking, the paper's formula);
2. ``full``: ``token_lse_similarity(chunk_size=None)`` (all clips per block);
3. ``chunked``: ``token_lse_similarity(chunk_size=64)`` (64 clips per block).

Memory: on CPU every variant runs in its own fresh process; peak extra memory is the process's
peak resident set (``ru_maxrss``) after the call minus its resident set just before the call
(inputs already built, a tiny warm-up call already done). On CUDA it is
``torch.cuda.max_memory_allocated()`` minus the allocation before the call. Time is wall clock
of one call (the naive variant is run once only). Results are compared with the naive output.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from nortonkit.io import atomic_write, safe_torch_load  # noqa: E402
from nortonkit.similarity import token_lse_similarity  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "b2.md"
VARIANTS = ("naive", "full", "chunked")


def make_inputs(n: int, seed: int, device: str, d: int = 768):
    """Token tensors and masks shaped like one Norton pre-training batch (see module doc)."""
    g = torch.Generator().manual_seed(seed)
    v_pad, t_pad = 18, 31
    vt = torch.randn(n, v_pad, d, generator=g)
    tt = torch.randn(n, t_pad, d, generator=g)
    frames = torch.randint(3, 17, (n, 1), generator=g)  # valid frames; + SEP right after them
    words = torch.randint(8, 30, (n, 1), generator=g)  # valid words; + SEP right after them
    pos_v, pos_t = torch.arange(v_pad)[None], torch.arange(t_pad)[None]
    vm = (pos_v >= 1) & (pos_v <= frames + 1)  # CLS (position 0) masked, as in the official code
    tm = (pos_t >= 1) & (pos_t <= words + 1)
    return vt.to(device), vm.to(device), tt.to(device), tm.to(device)


def naive_similarity(vt, vm, tt, tm, alpha: float = 1.0):
    """Eq. 5 with the whole (M, N, V, T) tensor materialised (exact masking)."""
    v = F.normalize(vt.masked_fill(~vm[..., None], 0.0), dim=-1)
    t = F.normalize(tt.masked_fill(~tm[..., None], 0.0), dim=-1)
    r = torch.einsum("avd,btd->abvt", v, t).div_(alpha)  # (M, N, V, T), a clips, b captions
    r.masked_fill_(~vm[:, None, :, None], float("-inf"))
    r.masked_fill_(~tm[None, :, None, :], float("-inf"))
    v2t = torch.logsumexp(r, dim=-1)  # (M, N, V): -inf on padded frames
    v2t = alpha * torch.where(vm[:, None, :], v2t, 0.0).sum(-1) / vm.sum(-1)[:, None]
    t2v = torch.logsumexp(r, dim=-2)  # (M, N, T)
    t2v = alpha * torch.where(tm[None, :, :], t2v, 0.0).sum(-1) / tm.sum(-1)[None, :]
    return (v2t + t2v) / 2  # (M, N)


def run_variant(name: str, inputs, chunk: int):
    vt, vm, tt, tm = inputs
    if name == "naive":
        return naive_similarity(vt, vm, tt, tm)
    return token_lse_similarity(vt, vm, tt, tm, chunk_size=None if name == "full" else chunk)


def worker(args) -> None:
    """One variant in this (fresh) process; prints a JSON line, saves the result."""
    import psutil

    torch.set_num_threads(args.threads)
    inputs = make_inputs(args.n, args.seed, "cpu")
    with torch.no_grad():
        small = tuple(x[:4] for x in inputs)
        run_variant(args.worker, small, args.chunk)  # warm-up (kernels, thread pool)
        base = psutil.Process().memory_info().rss
        peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        t0 = time.perf_counter()
        out = run_variant(args.worker, inputs, args.chunk)
        seconds = time.perf_counter() - t0
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    torch.save(out, args.result)
    print(json.dumps(dict(seconds=seconds, extra=peak - base, peak_before=peak_before - base)))


def measure_cpu(args) -> dict:
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in VARIANTS:
            result = Path(tmp) / f"{name}.pt"
            cmd = [
                sys.executable,
                __file__,
                "--worker",
                name,
                "--result",
                str(result),
                "--n",
                str(args.n),
                "--seed",
                str(args.seed),
                "--chunk",
                str(args.chunk),
                "--threads",
                str(args.threads),
            ]
            load = os.getloadavg()[0]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode:
                raise RuntimeError(f"variant {name} failed:\n{proc.stderr[-3000:]}")
            stats = json.loads(proc.stdout.strip().splitlines()[-1])
            stats["out"] = safe_torch_load(result)
            stats["load"] = load
            rows[name] = stats
            print(
                f"{name}: {stats['seconds']:.1f} s, +{stats['extra'] / 2**20:.0f} MiB", flush=True
            )
    return rows


def measure_cuda(args) -> dict:
    torch.set_num_threads(args.threads)
    inputs = make_inputs(args.n, args.seed, "cuda")
    rows = {}
    with torch.no_grad():
        for name in VARIANTS:
            run_variant(name, tuple(x[:4] for x in inputs), args.chunk)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            t0 = time.perf_counter()
            out = run_variant(name, inputs, args.chunk)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            extra = torch.cuda.max_memory_allocated() - base
            rows[name] = dict(seconds=seconds, extra=extra, out=out.cpu(), load=os.getloadavg()[0])
            del out
            torch.cuda.empty_cache()
            print(f"{name}: {seconds:.2f} s, +{extra / 2**20:.0f} MiB", flush=True)
    return rows


def machine(args) -> str:
    import psutil

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name"))
    except (OSError, StopIteration):
        pass
    parts = [
        f"{cpu}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB RAM",
        f"torch {torch.__version__}, {args.threads} torch threads, seed {args.seed}",
    ]
    if args.device == "cuda":
        parts.insert(0, torch.cuda.get_device_name())
    return "; ".join(parts)


def table(rows: dict, args) -> str:
    naive = rows["naive"]
    unit = "CUDA allocator" if args.device == "cuda" else "RSS"
    lines = [
        f"| variant | time (s) | speed-up vs naive | peak extra memory ({unit}, MiB) "
        "| memory vs naive | max abs diff vs naive | load avg at start |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    labels = dict(
        naive="naive einsum (full (M, N, V, T) tensor)",
        full="`token_lse_similarity(chunk_size=None)`",
        chunked=f"`token_lse_similarity(chunk_size={args.chunk})`",
    )
    for name in VARIANTS:
        r = rows[name]
        diff = float((r["out"] - naive["out"]).abs().max())
        lines.append(
            f"| {labels[name]} | {r['seconds']:.2f} | {naive['seconds'] / r['seconds']:.2f}x "
            f"| {r['extra'] / 2**20:,.0f} | {r['extra'] / naive['extra']:.3f} | {diff:.1e} "
            f"| {r['load']:.1f} |"
        )
    return "\n".join(lines)


def verdict(rows: dict) -> list[str]:
    naive, chunked = rows["naive"], rows["chunked"]
    diff = float((chunked["out"] - naive["out"]).abs().max())
    mem = chunked["extra"] / naive["extra"]
    return [
        f"- peak extra memory of the chunked path: {mem:.3f} of the naive one "
        f"(target <= 0.125): {'met' if mem <= 0.125 else 'NOT met'}",
        f"- equal results: max abs difference {diff:.1e} (target <= 1e-5): "
        f"{'met' if diff <= 1e-5 else 'NOT met'}",
        f"- no slower: chunked {chunked['seconds']:.2f} s vs naive {naive['seconds']:.2f} s: "
        f"{'met' if chunked['seconds'] <= naive['seconds'] else 'NOT met'}",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="256 x 256 pairs instead of 1,024")
    parser.add_argument("--n", type=int, default=None, help="clips = captions (default 1024)")
    parser.add_argument("--chunk", type=int, default=64, help="clips per block (chunked variant)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-write", action="store_true", help="print only, keep results/b2.md")
    parser.add_argument("--worker", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.n = args.n or (256 if args.quick else 1024)
    if args.worker:
        worker(args)
        return
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available")
    start = time.perf_counter()
    rows = measure_cuda(args) if args.device == "cuda" else measure_cpu(args)
    text = "\n".join(
        [
            "# B2: fine-grained similarity (Norton Eq. 5), chunked vs naive",
            "",
            f"Shape: {args.n} clips x {args.n} captions, V = 18 frame and T = 31 word token "
            "positions (3-16 frames + SEP and 8-29 words + SEP valid, CLS masked), D = 768, "
            f"float32, alpha = 1, exact masking, device {args.device}.",
            f"Machine: {machine(args)}.",
            "",
            table(rows, args),
            "",
            *verdict(rows),
            "",
            "Method: "
            + (
                "each variant in a fresh process; peak extra memory = peak RSS "
                "(ru_maxrss) after the call minus RSS just before it"
                if args.device == "cpu"
                else "torch.cuda.max_memory_allocated() minus the allocation before the call"
            )
            + "; time = wall clock of one call after a tiny warm-up call (single runs: on a "
            "machine shared with other processes, see the load column, timings vary by tens of "
            "percent between runs; memory and accuracy do not). Produced by "
            f"`python benchmarks/b2_similarity.py{' --quick' if args.quick else ''}"
            f"{' --device cuda' if args.device == 'cuda' else ''}` in "
            f"{time.perf_counter() - start:.0f} s.",
            "",
        ]
    )
    print(text)
    if not args.no_write:
        with atomic_write(RESULTS, "w") as f:
            f.write(text)
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
