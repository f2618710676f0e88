"""GPU check: every GPU number of the benchmarks in one call, within a fixed time budget.

    python benchmarks/gpu_check.py                        # on a GPU box: every part, <= 8 min
    python benchmarks/gpu_check.py --device cpu --tiny    # dry run of every part on a CPU
    python benchmarks/gpu_check.py --only b2,b4           # a subset of the parts

Parts, in this order, each run in its own subprocess under a timeout (a part that fails or runs
out of time becomes a failed row with its one-line reason, and the next part still runs):

``train``  the GPU smoke training (``nortonkit/configs/gpu_smoke.yaml``, 30 updates of 64 x 16
           clip/caption pairs after generating its synthetic corpus): wall time, s/update after
           warm-up (median of the logged ``sec_per_step``), peak GPU memory, final loss finite;
``b1``     B1, Sinkhorn with the prompt bucket at paper shape (16,384 problems of 8 x 8, 50
           iterations): ``bucket_sinkhorn`` against float64, and POT's batched solver if POT is
           installed;
``b2``     B2, Eq. 5 at paper shape (1,024 x 1,024 pairs, 18 x 31 tokens, D = 768, no chunking
           as in training) with the products in fp32, TF32, bf16 and fp16 (the mixed-precision
           path of ``nortonkit.similarity``): forward, forward + backward, peak memory, max
           difference from fp32;
``b4``     B4, the training step split at paper shape, Eq. 5 in fp32, fp32 + TF32 and bf16:
           the losses' share of the step, peak memory;
``b5``     B5, S3D extraction throughput: decoding, decoding + S3D, the network alone (fp32 and
           fp16 autocast), random weights;
``ddp``    two ``torchrun`` processes, 2 updates of ``gpu_smoke.yaml``: with nccl on two GPUs
           when two are visible, else with gloo on the CPU and the tiny model (nortonkit puts
           rank r on ``cuda:r``, and nccl refuses two ranks on one GPU); the row says which.

Every part's timeout is its share of what is left of ``--budget-s`` (default 480 s, corpus
generation included), so time a part does not use goes to the later ones. ``--tiny`` shrinks
every part (tiny model, smoke corpus, small shapes, few steps): the CPU dry run. On the CPU,
TF32 and fp16 rows are reported as "skipped (cpu)", not faked.

Output: a header line (device, torch, CUDA, date) and one markdown table (part | setting |
result | time), ready to paste into ``benchmarks/README.md``, and one JSON file with the same
rows (``benchmarks/results/gpu_check_<device>.json`` by default, written atomically). Synthetic
data, checkpoints and logs go to ``--work-dir`` (default: a temporary folder, removed at the
end). Exit status: 0 when no row failed, 1 when one did, 2 when ``--device cuda`` finds no GPU
(then nothing runs).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime
import importlib.util
import inspect
import json
import math
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import b1_sinkhorn  # noqa: E402
import b2_similarity  # noqa: E402
import b4_train_step  # noqa: E402
import b5_s3d  # noqa: E402
import torch  # noqa: E402

from nortonkit import transport as sk  # noqa: E402
from nortonkit.io import atomic_write  # noqa: E402
from nortonkit.s3d import S3D, embed_chunks, extract_features, iter_chunks  # noqa: E402
from nortonkit.similarity import token_lse_similarity  # noqa: E402
from nortonkit.synthetic.corpus import ensure_corpus  # noqa: E402
from nortonkit.train.config import LossConfig, load_config  # noqa: E402
from nortonkit.train.loop import fit  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
GPU_SMOKE = ROOT / "nortonkit" / "configs" / "gpu_smoke.yaml"
PARTS = ("train", "b1", "b2", "b4", "b5", "ddp")
# Share of the remaining budget each part may use (renormalised over the parts still to run).
SHARES = {"train": 0.30, "b1": 0.05, "b2": 0.12, "b4": 0.23, "b5": 0.12, "ddp": 0.18}
ROW = "@gpu_check_row "  # prefix of the JSON lines a worker prints for each row
# Mixed-precision Eq. 5: the similarity's precision= argument and loss.similarity_precision.
HAS_EQ5_PRECISION = "precision" in inspect.signature(token_lse_similarity).parameters
HAS_LOSS_PRECISION = "similarity_precision" in {f.name for f in dataclasses.fields(LossConfig)}


@dataclasses.dataclass(frozen=True)
class Sizes:
    """How big each part runs: the paper shapes, or the tiny dry run (``--tiny``)."""

    train_steps: int
    train_warmup: int  # updates left out of the s/update median
    corpus: str  # data.synthetic of the training parts
    train_overrides: tuple[str, ...]  # on top of gpu_smoke.yaml
    b1_problems: int
    b1_repeats: int
    b2_pairs: int
    b2_dim: int
    b2_repeats: int
    b4_shape: str
    b4_videos: int | None
    b4_warmup: int
    b4_repeats: int
    b5_seconds: int
    b5_size: int
    b5_batch: int
    b5_net_batch: int
    b5_repeats: int


TINY_MODEL = ("model.preset=tiny", "data.synthetic=smoke", "data.videos_per_batch=4",
              "data.num_workers=0")
PAPER = Sizes(train_steps=30, train_warmup=5, corpus="default", train_overrides=(),
              b1_problems=16384, b1_repeats=9, b2_pairs=1024, b2_dim=768, b2_repeats=5,
              b4_shape="paper", b4_videos=None, b4_warmup=2, b4_repeats=3, b5_seconds=16,
              b5_size=224, b5_batch=8, b5_net_batch=32, b5_repeats=3)
TINY = Sizes(train_steps=6, train_warmup=2, corpus="smoke", train_overrides=TINY_MODEL,
             b1_problems=256, b1_repeats=3, b2_pairs=64, b2_dim=64, b2_repeats=1,
             b4_shape="tiny", b4_videos=2, b4_warmup=1, b4_repeats=1, b5_seconds=2, b5_size=64,
             b5_batch=2, b5_net_batch=2, b5_repeats=1)


# ----------------------------------------------------------------------------- helpers


def _one_line(text: str, limit: int = 200) -> str:
    """The last non-empty line of ``text`` (an error's summary), cut to ``limit`` characters."""
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    line = lines[-1] if lines else "no output"
    line = line.replace("|", "/")  # keeps the markdown table intact
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def _timed(fn: Callable[[], object], device: str) -> float:
    _sync(device)
    t0 = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t0


def _reset_peak(device: str) -> int:
    """Reset the CUDA peak counter; the bytes allocated now (0 on the CPU)."""
    if device != "cuda":
        return 0
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    return torch.cuda.memory_allocated()


def _peak_gib(device: str, base: int = 0) -> float | None:
    if device != "cuda":
        return None
    return (torch.cuda.max_memory_allocated() - base) / 2**30


def _peak_rss_gib() -> float:
    """This process's peak resident set (VmHWM), GiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    raise OSError("/proc/self/status has no VmHWM line")


def _ms(seconds: float) -> str:
    return f"{1e3 * seconds:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


def device_name(device: str) -> str:
    if device == "cuda":
        return torch.cuda.get_device_name(0)
    return f"CPU {b4_train_step.cpu_name()}, {os.cpu_count()} cores"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ----------------------------------------------------------------------------- workers
# Each runs in a subprocess (``--worker PART``) and prints one ROW line per setting.


class Worker:
    """Emits the rows of one part; a failing setting becomes a failed row, the next one runs."""

    def __init__(self, part: str, device: str):
        self.part, self.device = part, device

    def emit(self, setting: str, status: str, result: str, seconds: float | None,
             **metrics: object) -> None:
        row = dict(part=self.part, setting=setting, status=status, result=result,
                   seconds=None if seconds is None else round(seconds, 3), metrics=metrics)
        print(ROW + json.dumps(row), flush=True)

    def skip(self, setting: str, why: str) -> None:
        self.emit(setting, "skipped", f"skipped ({why})", None)

    def run(self, setting: str, fn: Callable[[], tuple[str, dict]]) -> None:
        """``fn() -> (result text, metrics)``; its exception becomes a failed row."""
        t0 = time.perf_counter()
        try:
            result, metrics = fn()
            status = "ok"
        except Exception as e:  # reported as a row: the other settings still run
            result, metrics, status = f"failed: {type(e).__name__}: {_one_line(e)}", {}, "failed"
            if self.device == "cuda":
                torch.cuda.empty_cache()
        self.emit(setting, status, result, time.perf_counter() - t0, **metrics)


def _train_overrides(sizes: Sizes, work: Path, name: str, device: str,
                     extra: tuple[str, ...] = ()) -> list[str]:
    return [f"data.root={work / ('synthetic-' + sizes.corpus)}", f"data.synthetic={sizes.corpus}",
            f"train.out_dir={work / 'runs' / name}", "train.log_every=1", "train.progress=false",
            "train.tensorboard=false", f"train.device={device}", *sizes.train_overrides, *extra]


def _describe(cfg) -> str:
    t = cfg.train
    bits = [f"{cfg.data.videos_per_batch} x {cfg.data.clips_per_video} pairs",
            f"model {cfg.model.preset}"]
    if t.device == "cuda":
        bits.append(f"autocast {t.precision}")
        if HAS_LOSS_PRECISION:
            bits.append(f"Eq. 5 {cfg.loss.similarity_precision}")
        bits.append(f"TF32 {'on' if t.tf32 else 'off'}")
    else:
        bits.append("fp32")
    return ", ".join(bits)


def work_train(w: Worker, sizes: Sizes, work: Path) -> None:
    device = w.device
    overrides = _train_overrides(sizes, work, "train", device,
                                 (f"train.max_steps={sizes.train_steps}",))
    cfg = load_config(GPU_SMOKE, overrides)

    def corpus():
        t0 = time.perf_counter()
        ensure_corpus(cfg.data.root, cfg.data.synthetic, cfg.data.synthetic_seed)
        return f"ready in {time.perf_counter() - t0:.1f} s", {}

    def train():
        base = _reset_peak(device)
        t0 = time.perf_counter()
        result = fit(cfg)
        wall = time.perf_counter() - t0
        rows = result.train_log
        steady = [float(r["sec_per_step"]) for r in rows if int(r["step"]) > sizes.train_warmup]
        per_step = statistics.median(steady) if steady else math.nan
        loss = float(rows[-1]["loss"])
        if not math.isfinite(loss):
            raise FloatingPointError(f"final loss {loss} after {result.step} updates")
        peak = _peak_gib(device, base)
        mem = (f"peak {peak:.1f} GiB allocated" if peak is not None
               else f"peak RSS {_peak_rss_gib():.1f} GiB")
        text = (f"{per_step:.3f} s/update (`train_step`, median of updates "
                f"{sizes.train_warmup + 1}-{result.step}), {mem}, final loss {loss:.3f} "
                "(finite); time: the whole run, retrieval, validation and checkpoints included")
        return text, dict(s_per_update=per_step, peak_gib=peak, final_loss=loss,
                          updates=result.step, wall_s=wall)

    w.run(f"synthetic corpus ({cfg.data.synthetic})", corpus)
    w.run(f"gpu_smoke.yaml, {sizes.train_steps} updates, {_describe(cfg)}", train)


def work_b1(w: Worker, sizes: Sizes, work: Path) -> None:
    device, eps, iters = w.device, 0.1, 50
    blocks, p = b1_sinkhorn.make_workload(sizes.b1_problems, 8, 0, device)
    aug, a, b = b1_sinkhorn.augmented_problem(blocks, p)
    times: dict[str, float] = {}
    what = f"{sizes.b1_problems:,} problems of 8 x 8 + bucket, {iters} it., fp32"

    def ours():
        def solve():
            return sk.bucket_sinkhorn(blocks, p, eps=eps, n_iters=iters,
                                      marginals="superglue").plan
        plan = solve()  # warm-up
        times["ours"] = statistics.median(_timed(solve, device) for _ in range(sizes.b1_repeats))
        ref = b1_sinkhorn.reference_plans(aug, a, b, eps, iters)
        err = float((plan.double() - ref).abs().max())
        per = times["ours"] / sizes.b1_problems * 1e6
        return (f"median {_ms(times['ours'])} ({per:.2f} us/problem), max abs error "
                f"{err:.1e} vs float64"), dict(median_s=times["ours"], max_abs_error=err)

    def pot():
        from ot.batch import solve_batch  # POT: an optional (dev) dependency

        def solve():
            return solve_batch(-aug, reg=eps, a=a, b=b, max_iter=iters, tol=0.0,
                               method="log_sinkhorn", grad="detach").plan
        solve()
        seconds = statistics.median(_timed(solve, device) for _ in range(sizes.b1_repeats))
        speedup = seconds / times["ours"] if "ours" in times else math.nan
        target = " (target >= 3x)" if sizes.b1_problems == PAPER.b1_problems else ""
        return (f"median {_ms(seconds)}; `bucket_sinkhorn` {speedup:.1f}x faster{target}",
                dict(median_s=seconds, speedup=speedup))

    w.run(f"`bucket_sinkhorn`, {what}", ours)
    setting = "POT `solve_batch` (log_sinkhorn), same problems"
    if importlib.util.find_spec("ot") is None:
        w.skip(setting, "POT not installed")
    else:
        w.run(setting, pot)


def work_b2(w: Worker, sizes: Sizes, work: Path) -> None:
    device, n = w.device, sizes.b2_pairs
    inputs = b2_similarity.make_inputs(n, 0, device, sizes.b2_dim)
    ref: dict[str, torch.Tensor] = {}
    what = f"{n:,} x {n:,} pairs, 18 x 31 tokens, D = {sizes.b2_dim}, no chunks"

    def measure(precision: str, tf32: bool) -> tuple[str, dict]:
        torch.backends.cuda.matmul.allow_tf32 = tf32
        kw = {"precision": precision} if HAS_EQ5_PRECISION else {}
        vt, vm, tt, tm = inputs
        small = tuple(x[:4] for x in inputs)
        try:
            with torch.no_grad():
                token_lse_similarity(*small, **kw)  # warm-up
                fwd = statistics.median(
                    _timed(lambda: token_lse_similarity(*inputs, **kw), device)
                    for _ in range(sizes.b2_repeats))
                out = token_lse_similarity(*inputs, **kw)
            leaves = (vt.detach().requires_grad_(), tt.detach().requires_grad_())

            def step():
                token_lse_similarity(leaves[0], vm, leaves[1], tm, **kw).sum().backward()
            step()  # warm-up
            base = _reset_peak(device)
            both = statistics.median(_timed(step, device) for _ in range(sizes.b2_repeats))
            peak = _peak_gib(device, base)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
        if precision == "fp32" and not tf32:
            ref["fp32"] = out
            diff = "the reference"
        elif "fp32" in ref:
            diff = f"max abs diff vs fp32 {float((out - ref['fp32']).abs().max()):.1e}"
        else:
            diff = "no fp32 reference"
        mem = f", peak +{peak:.2f} GiB" if peak is not None else ""
        return (f"forward {_ms(fwd)}, forward + backward {_ms(both)}{mem}, {diff}",
                dict(forward_s=fwd, forward_backward_s=both, peak_gib=peak))

    for name, precision, tf32 in (("fp32", "fp32", False), ("TF32", "fp32", True),
                                  ("bf16", "bf16", False), ("fp16", "fp16", False)):
        setting = f"Eq. 5 products in {name}, {what}"
        if device == "cpu" and name in ("TF32", "fp16"):
            w.skip(setting, "cpu")
        elif precision != "fp32" and not HAS_EQ5_PRECISION:
            w.skip(setting, "this nortonkit has no mixed-precision Eq. 5")
        else:
            w.run(setting, lambda p=precision, t=tf32: measure(p, t))


def work_b4(w: Worker, sizes: Sizes, work: Path) -> None:
    device = w.device

    def measure(precision: str, tf32: bool) -> tuple[str, dict]:
        argv = ["--shape", sizes.b4_shape, "--device", device, "--warmup", str(sizes.b4_warmup),
                "--repeats", str(sizes.b4_repeats), "--no-write"]
        if sizes.b4_videos:
            argv += ["--videos", str(sizes.b4_videos)]
        if HAS_LOSS_PRECISION:
            argv += ["--similarity-precision", precision]
        args = b4_train_step.build_parser().parse_args(argv)
        torch.backends.cuda.matmul.allow_tf32 = tf32
        try:
            base = _reset_peak(device)
            med = b4_train_step.measure(args)["med"]
            peak = _peak_gib(device, base)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = False
        parts = ("encoders forward", "encoders backward", "L_clip", "L_video", "optimizer")
        step = sum(med[k] for k in parts)
        share = 100 * (med["L_clip"] + med["L_video"]) / step
        mem = f", peak {peak:.1f} GiB" if peak is not None else ""
        text = (f"losses **{share:.1f} %** of a {_ms(step)} step (encoders "
                f"{_ms(med['encoders forward'] + med['encoders backward'])}, L_clip "
                f"{_ms(med['L_clip'])}, L_video {_ms(med['L_video'])}){mem}")
        return text, dict(step_s=step, losses_share=share, peak_gib=peak,
                          parts_s={k: med[k] for k in med})

    shape = "paper shape (64 x 16 pairs, bert-base)" if sizes.b4_shape == "paper" else (
        f"tiny shape ({sizes.b4_videos} x 16 pairs, tiny model)")
    autocast = "bf16 autocast" if device == "cuda" else "fp32 encoders"
    for name, precision, tf32 in (("fp32", "fp32", False), ("fp32 + TF32", "fp32", True),
                                  ("bf16 (mixed-precision path)", "bf16", False)):
        setting = f"{shape}, {autocast}, Eq. 5 in {name}"
        if device == "cpu" and tf32:
            w.skip(setting, "cpu")
        elif precision == "bf16" and not HAS_LOSS_PRECISION:
            w.skip(setting, "this nortonkit has no loss.similarity_precision")
        else:
            w.run(setting, lambda p=precision, t=tf32: measure(p, t))


def work_b5(w: Worker, sizes: Sizes, work: Path) -> None:
    device, size = w.device, sizes.b5_size
    if device == "cuda":  # the extractor's defaults, as in b5_s3d.py
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
    video = b5_s3d.make_video(work / "b5.mp4", sizes.b5_seconds)
    built: list[S3D] = []
    what = f"{sizes.b5_seconds} s 320x240 @ 30 fps video, {size} px"

    def decode():
        t0 = time.perf_counter()
        n = sum(1 for _ in iter_chunks(video, size=size))
        dt = time.perf_counter() - t0
        return f"{n / dt:.1f} video s / wall s", dict(rate=n / dt)

    def model() -> S3D:
        """S3D with random weights (the cost does not depend on them), built once, warmed up."""
        if not built:
            torch.manual_seed(0)
            built.append(S3D(with_text=False).eval().to(device))
            embed_chunks(built[0], torch.zeros(1, 30, size, size, 3, dtype=torch.uint8))
        return built[0]

    def extract():
        net = model()
        base = _reset_peak(device)
        t0 = time.perf_counter()
        feats = extract_features(video, net, batch_size=sizes.b5_batch, size=size)
        _sync(device)
        dt = time.perf_counter() - t0
        peak = _peak_gib(device, base)
        mem = f", peak {peak:.2f} GiB" if peak is not None else ""
        return (f"{len(feats) / dt:.2f} video s / wall s{mem}",
                dict(rate=len(feats) / dt, peak_gib=peak))

    def network(amp: bool):
        net = model()
        g = torch.Generator().manual_seed(0)
        chunks = torch.randint(0, 256, (sizes.b5_net_batch, 30, size, size, 3), generator=g,
                               dtype=torch.uint8)
        embed_chunks(net, chunks, amp=amp)  # warm-up
        seconds = statistics.median(_timed(lambda: embed_chunks(net, chunks, amp=amp), device)
                                    for _ in range(sizes.b5_repeats))
        rate = sizes.b5_net_batch / seconds
        return f"{rate:.1f} video s / wall s ({_ms(seconds)} a batch)", dict(rate=rate)

    w.run(f"decode only (PyAV), {what}", decode)
    w.run(f"decode + S3D fp32, batch {sizes.b5_batch}, {what}", extract)
    w.run(f"S3D network alone fp32, batch {sizes.b5_net_batch}, {size} px", lambda: network(False))
    setting = f"S3D network alone fp16 autocast, batch {sizes.b5_net_batch}, {size} px"
    if device == "cpu":
        w.skip(setting, "cpu")
    else:
        w.run(setting, lambda: network(True))


def work_ddp(w: Worker, sizes: Sizes, work: Path) -> None:
    gpus = torch.cuda.device_count() if w.device == "cuda" else 0
    if gpus >= 2:
        how, device, run_sizes = "nccl on 2 GPUs", "cuda", sizes
    else:
        reason = ("--device cpu" if w.device == "cpu"
                  else f"{gpus} GPU visible: nccl needs one GPU per process")
        how, device, run_sizes = f"gloo on the CPU ({reason})", "cpu", TINY
    overrides = _train_overrides(run_sizes, work, "ddp", device, ("train.max_steps=2",))
    cfg = load_config(GPU_SMOKE, overrides)

    def ddp():
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node=2", "-m", "nortonkit.train", "--config", str(GPU_SMOKE),
               *overrides]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise RuntimeError(f"torchrun exited {proc.returncode}: {_one_line(proc.stderr)}")
        with open(Path(cfg.train.out_dir) / "train_log.csv", newline="") as f:
            rows = list(csv.DictReader(f))
        loss = float(rows[-1]["loss"])
        if not math.isfinite(loss):
            raise FloatingPointError(f"final loss {loss}")
        per = statistics.median(float(r["sec_per_step"]) for r in rows)
        return (f"{len(rows)} updates on 2 ranks, {per:.3f} s/update (rank 0), final loss "
                f"{loss:.3f} (finite); time: torchrun start-up and validation included",
                dict(updates=len(rows), s_per_update=per, final_loss=loss, wall_s=wall,
                     backend="nccl" if device == "cuda" else "gloo"))

    w.run(f"torchrun 2 processes, 2 updates, {how}, {_describe(cfg)}", ddp)


WORKERS = {"train": work_train, "b1": work_b1, "b2": work_b2, "b4": work_b4, "b5": work_b5,
           "ddp": work_ddp}


# ----------------------------------------------------------------------------- driver


def run_part(part: str, args: argparse.Namespace, work: Path, timeout: float) -> list[dict]:
    """Run one part's worker under ``timeout`` seconds; its rows, plus a failed row if needed."""
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", part, "--device",
           args.device, "--work-dir", str(work)] + (["--tiny"] if args.tiny else [])
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            cwd=ROOT, start_new_session=True)  # own group: torchrun included
    try:
        out, err = proc.communicate(timeout=timeout)
        problem = (f"worker exited {proc.returncode}: {_one_line(err)}"
                   if proc.returncode else None)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        problem = f"timed out after {timeout:.0f} s (its share of --budget-s {args.budget_s:g})"
    rows = [json.loads(ln[len(ROW):]) for ln in out.splitlines() if ln.startswith(ROW)]
    if problem is None and not rows:
        problem = f"no result: {_one_line(err)}"
    if problem is not None:
        rows.append(dict(part=part, setting="(the part)", status="failed",
                         result=f"failed: {problem}", seconds=round(time.perf_counter() - t0, 3),
                         metrics={}))
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| part | setting | result | time |", "|---|---|---|---:|"]
    for r in rows:
        seconds = "" if r["seconds"] is None else f"{r['seconds']:.1f} s"
        lines.append(f"| {r['part']} | {r['setting']} | {r['result']} | {seconds} |")
    return "\n".join(lines)


def drive(args: argparse.Namespace, parts: list[str]) -> int:
    sizes = "tiny shapes (dry run)" if args.tiny else "paper shapes"
    name = device_name(args.device)
    header = (f"gpu_check, {sizes}: {name}; torch {torch.__version__}; CUDA "
              f"{torch.version.cuda or 'none'}; {datetime.date.today().isoformat()}")
    out = args.out or RESULTS / (f"gpu_check_{_slug(name) if args.device == 'cuda' else 'cpu'}"
                                 f"{'_tiny' if args.tiny else ''}.json")
    own_work = args.work_dir is None
    work = Path(tempfile.mkdtemp(prefix="gpu_check_")) if own_work else args.work_dir
    work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    deadline = start + args.budget_s
    rows: list[dict] = []
    part_wall: dict[str, float] = {}
    try:
        for i, part in enumerate(parts):
            left = deadline - time.perf_counter()
            shares = sum(SHARES[p] for p in parts[i:])
            timeout = left * SHARES[part] / shares
            if timeout < 1.0:
                rows.append(dict(part=part, setting="(the part)", status="failed",
                                 result=f"failed: not run, --budget-s {args.budget_s:g} spent",
                                 seconds=None, metrics={}))
                continue
            print(f"[gpu_check] {part}: up to {timeout:.0f} s", file=sys.stderr, flush=True)
            t0 = time.perf_counter()
            got = run_part(part, args, work, timeout)
            rows += got
            part_wall[part] = round(time.perf_counter() - t0, 1)
            print(f"[gpu_check] {part}: {len(got)} rows in {part_wall[part]:.0f} s",
                  file=sys.stderr, flush=True)
    finally:
        if own_work:
            shutil.rmtree(work, ignore_errors=True)
    wall = time.perf_counter() - start
    failed = sum(r["status"] == "failed" for r in rows)
    print(header)
    print()
    print(table(rows))
    print()
    print(f"Wall time {wall:.0f} s (budget {args.budget_s:g} s); {failed} failed rows. "
          f"Command: `python benchmarks/gpu_check.py {' '.join(sys.argv[1:])}`.")
    report = dict(
        device=name, device_type=args.device, torch=torch.__version__, cuda=torch.version.cuda,
        cudnn=torch.backends.cudnn.version() if args.device == "cuda" else None,
        python=platform.python_version(), cpu_cores=os.cpu_count(),
        date=datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        sizes="tiny" if args.tiny else "paper", parts=parts, budget_s=args.budget_s,
        wall_s=round(wall, 1), part_wall_s=part_wall, header=header, rows=rows,
    )
    with atomic_write(out, "w") as f:
        json.dump(report, f, indent=1)
    print(f"wrote {out}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Exit status: 0 when no row failed, 1 when one did, 2 when --device cuda finds "
               "no GPU.")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda",
                        help="where every part runs (default cuda)")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny shapes and few steps in every part: the CPU dry run")
    parser.add_argument("--out", type=Path, default=None,
                        help="the JSON report (default benchmarks/results/gpu_check_<device>"
                             "[_tiny].json)")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="wall-time budget of the whole check in seconds; each part's "
                             "timeout is its share of what is left (default 480)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated parts to run, of {','.join(PARTS)} (default all)")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for synthetic data, runs and videos (default: a temporary "
                             "folder, removed at the end)")
    parser.add_argument("--worker", choices=PARTS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        WORKERS[args.worker](Worker(args.worker, args.device), TINY if args.tiny else PAPER,
                             args.work_dir)
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("gpu_check: no CUDA GPU is visible (torch.cuda.is_available() is False), nothing "
              "was run; dry-run on the CPU with: python benchmarks/gpu_check.py --device cpu "
              "--tiny", file=sys.stderr)
        return 2
    if args.budget_s <= 0:
        parser.error(f"--budget-s: expected a positive number of seconds, got {args.budget_s:g}")
    parts = list(PARTS)
    if args.only:
        wanted = [p.strip() for p in args.only.split(",") if p.strip()]
        unknown = sorted(set(wanted) - set(PARTS))
        if unknown or not wanted:
            parser.error(f"--only: expected parts among {','.join(PARTS)}, got {args.only!r}")
        parts = [p for p in PARTS if p in wanted]
    return drive(args, parts)


if __name__ == "__main__":
    sys.exit(main())
