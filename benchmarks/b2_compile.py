"""B2 with ``torch.compile``: what compiling Eq. 5's chunk loop gives, eager against compiled.

    python benchmarks/b2_compile.py                 # CPU, 256 x 256 pairs, D = 768, 1 thread
    python benchmarks/b2_compile.py --device cuda   # on a GPU, 1,024 x 1,024 pairs
    python benchmarks/b2_compile.py --n 128 --repeats 2   # a quick look

Workload: the inputs of :func:`b2_similarity.make_inputs` (V = 18, T = 31 token positions,
padding as in a pre-training batch), ``token_lse_similarity(chunk_size=64)`` with the matrix
products in fp32 and in bf16 (the mixed-precision path), forward + backward. For each
precision: the eager time (median of ``--repeats`` calls after one warm-up), the time of the
first compiled call (compilation included), the compiled time (median, after that call), and
the largest difference between the eager and compiled similarities. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from b2_similarity import make_inputs  # noqa: E402
from b4_train_step import cpu_name  # noqa: E402

from nortonkit.similarity import token_lse_similarity  # noqa: E402


def _step(fn, inputs, precision: str, device: str) -> tuple[float, torch.Tensor]:
    """Seconds of one forward + backward of ``fn`` and its (detached) output."""
    vt, vm, tt, tm = (x.detach().requires_grad_(x.is_floating_point()) for x in inputs)
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = fn(vt, vm, tt, tm, chunk_size=64, precision=precision)
    out.sum().backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, out.detach().float()


def measure(n: int, device: str, repeats: int, seed: int = 0) -> list[dict]:
    inputs = make_inputs(n, seed, device)
    compiled = torch.compile(token_lse_similarity, dynamic=False)
    rows = []
    for precision in ("fp32", "bf16"):
        _step(token_lse_similarity, inputs, precision, device)  # warm-up
        eager = [_step(token_lse_similarity, inputs, precision, device) for _ in range(repeats)]
        first, _ = _step(compiled, inputs, precision, device)  # compiles
        comp = [_step(compiled, inputs, precision, device) for _ in range(repeats)]
        rows.append(dict(
            precision=precision,
            eager_s=statistics.median(t for t, _ in eager),
            first_compiled_s=first,
            compiled_s=statistics.median(t for t, _ in comp),
            max_abs_diff=float((eager[0][1] - comp[0][1]).abs().max()),
        ))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    ap.add_argument("--n", type=int, default=None, help="clips = captions (cpu 256, cuda 1024)")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("b2_compile: --device cuda, but torch sees no GPU; nothing run")
        return 2
    torch.set_num_threads(args.threads)
    n = args.n or (1024 if args.device == "cuda" else 256)
    rows = measure(n, args.device, args.repeats)
    where = (torch.cuda.get_device_name() if args.device == "cuda"
             else f"{cpu_name()}, {args.threads} thread(s)")
    print(f"B2 compile: {n} x {n} pairs, V 18, T 31, D 768, chunk 64, forward + backward; "
          f"{where}; torch {torch.__version__}; {platform.machine()}\n")
    print("| Eq. 5 products | eager s | first compiled call s | compiled s | speed-up "
          "| max abs diff |\n|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {r['eager_s']:.3f} | {r['first_compiled_s']:.1f} | "
              f"{r['compiled_s']:.3f} | {r['eager_s'] / r['compiled_s']:.2f}x | "
              f"{r['max_abs_diff']:.1e} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
