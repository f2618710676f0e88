"""B4: one Norton training step split into encoders, L_clip and L_video.

    python benchmarks/b4_train_step.py                     # tiny model on CPU -> results/b4.md
    python benchmarks/b4_train_step.py --shape paper --device cuda [--tf32]   # paper shape, GPU
    python benchmarks/b4_train_step.py --shape paper --encoder-videos 1 --chunk-size 64
                                                           # paper-shape losses on a CPU
    python benchmarks/b4_train_step.py --no-write          # print the table only
    python benchmarks/b4_train_step.py --similarity-precision bf16   # Eq. 5 products in bf16

Shapes (random inputs with the pre-training layout, docs/protocols.md §5.4):

* ``tiny``: the ``tiny_synthetic.yaml`` step: 8 videos x 16 clips = 128 pairs, the tiny dual
  encoder (hidden 64, 2 + 2 layers), float32.
* ``paper``: Norton's step: 64 videos x 16 clips = 1,024 pairs (128 sequences of 8), bert-base
  sizes (6-layer video, 12-layer text BERT, hidden 768), 16 frames (+ CLS, SEP) and 29 tokens
  (+ CLS, SEP) per clip, bf16 autocast on a GPU with the losses in float32.

Both use the ``norton`` preset (FNE with 50 Sinkhorn iterations, Eq. 5 similarity, 50-iteration
bucket Sinkhorn over G^2 = 16,384 plans at paper shape). One step is timed in five consecutive
parts, each ended by a device synchronisation:

1. encoders forward (both BERTs, autocast);
2. L_clip forward + backward down to the pooled embeddings (detached leaves);
3. L_video forward + backward down to the token embeddings (similarity of Eq. 5 included);
4. encoders backward from the gradients of 2 and 3;
5. optimizer: gradient-norm clipping, Adam, logit-scale clamp.

Rows "of which Sinkhorn" time the two plan computations alone on the same inputs. The split
step is checked against the fused :func:`nortonkit.train.objective.train_step` on the same
batch. Median
over ``--repeats`` steps after ``--warmup`` steps. With ``--encoder-videos k`` (CPU, paper shape)
the encoders run on ``k`` videos and their time is scaled by ``64 / k`` (encoders are linear in
the number of clips); the losses always run on the full batch.

Reference: Norton Table 8 gives 87 min/epoch for clip-caption contrast alone and 146 min/epoch
for the full objective, i.e. +68 % (59 of the 146 minutes, 40 % of the step, spent on FNE,
L_video and the soft maximum).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from nortonkit.encoders import DualEncoder, DualEncoderOutput, EncoderOutput  # noqa: E402
from nortonkit.io import atomic_write  # noqa: E402
from nortonkit.losses import sequence_blocks  # noqa: E402
from nortonkit.train import (  # noqa: E402
    NortonObjective,
    build_optimizer,
    clip_term,
    train_step,
    video_similarity,
    video_term,
)
from nortonkit.train.config import config_from_dict  # noqa: E402
from nortonkit.transport import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "b4.md"
SHAPES = {
    "tiny": dict(videos=8, model={"preset": "tiny", "trainable": "all"}),
    "paper": dict(videos=64, model={"preset": "bert-base", "trainable": "all",
                                    "text_init": "random", "attn_implementation": "sdpa"}),
}
CLIPS, FRAMES, TOKENS = 16, 16, 29


def make_batch(videos: int, seed: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    """Random clip features and captions with the pre-training layout and ragged lengths."""
    g = torch.Generator().manual_seed(seed)
    n = videos * CLIPS
    video = torch.nn.functional.normalize(torch.randn(n, FRAMES, 512, generator=g), dim=-1)
    vlen = torch.randint(3, FRAMES + 1, (n,), generator=g)
    video_mask = torch.arange(FRAMES)[None] < vlen[:, None]
    width = TOKENS + 2
    tlen = torch.randint(8, TOKENS + 1, (n,), generator=g) + 2  # + CLS, SEP
    ids = torch.randint(1000, 30000, (n, width), generator=g)
    ids[:, 0] = 101
    ids[torch.arange(n), tlen - 1] = 102
    text_mask = torch.arange(width)[None] < tlen[:, None]
    ids = ids.masked_fill(~text_mask, 0)
    return tuple(x.to(device) for x in (video, video_mask, ids, text_mask))


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def leaf(out: DualEncoderOutput) -> DualEncoderOutput:
    """Detached copies that collect the gradients of the losses."""
    def side(s: EncoderOutput) -> EncoderOutput:
        return EncoderOutput(s.pooled.detach().requires_grad_(),
                             s.tokens.detach().requires_grad_(), s.mask)
    return DualEncoderOutput(side(out.video), side(out.text))


def split_step(objective, encoder, optimizer, batch, enc_batch, scale, device, cfg):
    """Seconds of the five parts of one step (see the module docstring)."""
    loss = cfg.loss
    times = {}
    optimizer.zero_grad(set_to_none=True)
    sync(device)
    t0 = time.perf_counter()
    enc_out = objective.encode(*enc_batch)
    sync(device)
    t1 = time.perf_counter()
    if enc_batch is batch:
        full = leaf(enc_out)
    else:  # encoders ran on a sub-batch: the losses get full-size embeddings of the same kind
        with torch.no_grad():
            rep = batch[0].shape[0] // enc_batch[0].shape[0]
            full = leaf(DualEncoderOutput(*(EncoderOutput(
                s.pooled.repeat(rep, 1), s.tokens.repeat(rep, 1, 1), s.mask.repeat(rep, 1))
                for s in enc_out)))
    with torch.autocast(device.type, enabled=False):
        clip = clip_term(full.video.pooled, full.text.pooled,
                         getattr(encoder, "clip_logit_scale", None), loss)
        (loss.clip_weight * clip.loss).backward()
        sync(device)
        t2 = time.perf_counter()
        sim = video_similarity(full, loss)
        video = video_term(sim, encoder.logit_scale, loss, CLIPS)
        (loss.video_weight * video.loss).backward()
    sync(device)
    t3 = time.perf_counter()
    if enc_batch is batch:
        outs, grads = [], []
        for s, g in zip(enc_out, full):
            for a, b in ((s.pooled, g.pooled), (s.tokens, g.tokens)):
                if b.grad is not None:
                    outs.append(a)
                    grads.append(b.grad)
        torch.autograd.backward(outs, grads)
    else:
        n = enc_batch[0].shape[0]
        outs = [enc_out.video.pooled, enc_out.text.pooled, enc_out.video.tokens,
                enc_out.text.tokens]
        grads = [full.video.pooled.grad[:n], full.text.pooled.grad[:n],
                 full.video.tokens.grad[:n], full.text.tokens.grad[:n]]
        torch.autograd.backward(outs, grads)
    sync(device)
    t4 = time.perf_counter()
    params = [p for g in optimizer.param_groups for p in g["params"]]
    torch.nn.utils.clip_grad_norm_(params, cfg.optim.clip_norm)
    optimizer.step()
    encoder.clamp_logit_scales_()
    sync(device)
    t5 = time.perf_counter()
    times["encoders forward"] = (t1 - t0) * scale
    times["L_clip"] = t2 - t1
    times["L_video"] = t3 - t2
    times["encoders backward"] = (t4 - t3) * scale
    times["optimizer"] = t5 - t4
    return times, full


def sinkhorn_only(full: DualEncoderOutput, encoder, cfg, device) -> dict[str, float]:
    """The two plan computations alone, on the inputs of the step."""
    loss = cfg.loss
    with torch.no_grad():
        v, t = full.video.pooled, full.text.pooled
        if loss.clip_normalize:
            v = torch.nn.functional.normalize(v, dim=-1)
            t = torch.nn.functional.normalize(t, dim=-1)
        logits = v @ t.T
        scale = getattr(encoder, "clip_logit_scale", None)
        if scale is not None:
            logits = logits * scale.exp()
        sync(device)
        t0 = time.perf_counter()
        sinkhorn(logits, eps=loss.fne_eps, n_iters=loss.n_iters)
        sync(device)
        t1 = time.perf_counter()
        sim = video_similarity(full, loss)
        blocks = sequence_blocks(sim, loss.seq_len)
        flat = blocks.reshape(-1, loss.seq_len, loss.seq_len)
        p = bucket_value_from_quantile(sim.diagonal(), loss.bucket_quantile)
        sync(device)
        t2 = time.perf_counter()
        bucket_sinkhorn(flat, p, eps=loss.video_eps, n_iters=loss.n_iters,
                        marginals=loss.bucket_marginals, renormalize=loss.renormalize)
        sync(device)
        t3 = time.perf_counter()
    return {"FNE Sinkhorn": t1 - t0, "bucket Sinkhorn": t3 - t2}


def fused_step(objective, encoder, optimizer, batch, cfg, device) -> float:
    sync(device)
    t0 = time.perf_counter()
    train_step(objective, encoder, optimizer, batch, cfg.optim.clip_norm)
    sync(device)
    return time.perf_counter() - t0


def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo, else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> str:
    cpu = cpu_name()
    text = (f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
            f"{torch.get_num_threads()} torch threads")
    if device.type == "cuda":
        text += f", GPU {torch.cuda.get_device_name(device)}"
    return text


def measure(args) -> dict:
    """Median seconds per part of the step (``med``) and what was run; see the module doc."""
    device = torch.device(args.device)
    shape = SHAPES[args.shape]
    videos = args.videos or shape["videos"]
    precision = "bf16" if device.type == "cuda" else "fp32"
    loss = {"chunk_size": args.chunk_size}
    if args.similarity_precision is not None:
        loss["similarity_precision"] = args.similarity_precision
    cfg = config_from_dict({"preset": args.preset, "model": {**shape["model"]},
                            "data": {"videos_per_batch": videos}, "loss": loss})
    torch.manual_seed(0)
    encoder = DualEncoder(cfg.model).to(device)
    autocast = torch.bfloat16 if precision == "bf16" else None
    objective = NortonObjective(encoder, cfg.loss, CLIPS, autocast_dtype=autocast)
    optimizer = build_optimizer(encoder, cfg)
    for group in optimizer.param_groups:
        group["lr"] = cfg.optim.lr
    batch = make_batch(videos, 0, device)
    enc_batch, scale = batch, 1.0
    if args.encoder_videos:
        k = args.encoder_videos * CLIPS
        enc_batch = tuple(x[:k] for x in batch)
        scale = videos / args.encoder_videos
    rows: dict[str, list[float]] = {}
    for i in range(args.warmup + args.repeats):
        times, full = split_step(objective, encoder, optimizer, batch, enc_batch, scale,
                                 device, cfg)
        times.update(sinkhorn_only(full, encoder, cfg, device))
        if not args.encoder_videos:
            times["fused train_step"] = fused_step(objective, encoder, optimizer, batch, cfg,
                                                   device)
        if i >= args.warmup:
            for k, v in times.items():
                rows.setdefault(k, []).append(v)
        print(f"step {i + 1}/{args.warmup + args.repeats}: "
              + ", ".join(f"{k} {1000 * v:.1f} ms" for k, v in times.items()), flush=True)
    med = {k: statistics.median(v) for k, v in rows.items()}
    return dict(med=med, device=device, videos=videos, precision=precision, cfg=cfg,
                scale=scale)


def run(args) -> str:
    m = measure(args)
    med, device, cfg = m["med"], m["device"], m["cfg"]
    videos, precision, scale = m["videos"], m["precision"], m["scale"]
    parts = ("encoders forward", "encoders backward", "L_clip", "L_video", "optimizer")
    total = sum(med[p] for p in parts)
    losses = med["L_clip"] + med["L_video"]
    lines = [
        f"## {args.shape} shape, {device.type}",
        "",
        f"- {datetime.date.today().isoformat()}; {machine(device)}",
        f"- batch: {videos} videos x {CLIPS} clips = {videos * CLIPS} pairs, "
        f"{FRAMES} frames (+ CLS, SEP), {TOKENS} tokens (+ CLS, SEP); model "
        f"{cfg.model.preset} (hidden {cfg.model.hidden_size}, {cfg.model.video_layers} + "
        f"{cfg.model.text_layers} layers); preset `{args.preset}`; {precision}"
        + (f"; similarity in blocks of {args.chunk_size} clips" if args.chunk_size else "")
        + (f"; Eq. 5 products in {args.similarity_precision}"
           if args.similarity_precision is not None else "")
        + ("; TF32 matmuls" if args.tf32 and device.type == "cuda" else "")
        + (f"; encoders timed on {args.encoder_videos} videos and scaled x{scale:g}"
           if args.encoder_videos else ""),
        f"- median of {args.repeats} steps after {args.warmup} warm-up steps",
        "",
        "| part | ms / step | share of step |",
        "|---|---:|---:|",
    ]
    for p in parts:
        lines.append(f"| {p} | {1000 * med[p]:.1f} | {100 * med[p] / total:.1f} % |")
        if p == "L_clip":
            lines.append(f"| &nbsp;&nbsp;of which FNE Sinkhorn (50 it.) | "
                         f"{1000 * med['FNE Sinkhorn']:.1f} | "
                         f"{100 * med['FNE Sinkhorn'] / total:.1f} % |")
        if p == "L_video":
            lines.append(f"| &nbsp;&nbsp;of which bucket Sinkhorn (50 it.) | "
                         f"{1000 * med['bucket Sinkhorn']:.1f} | "
                         f"{100 * med['bucket Sinkhorn'] / total:.1f} % |")
    lines.append(f"| **step (sum of parts)** | **{1000 * total:.1f}** | 100 % |")
    if "fused train_step" in med:
        lines.append(f"| step (fused `train_step`) | {1000 * med['fused train_step']:.1f} | |")
    lines += ["", f"**L_clip + L_video: {100 * losses / total:.1f} % of the step** "
              f"(target at paper shape: at most 15 %; Norton Table 8: the full objective costs "
              f"+68 % over clip-only contrast, 40 % of its step).", ""]
    return "\n".join(lines)


def write(section: str, path: Path) -> None:
    """Replace this section (same ``## `` heading) in ``path``, keeping the others."""
    head = section.splitlines()[0]
    intro = ("# B4: training-step time split\n\n"
             "`python benchmarks/b4_train_step.py` (see its docstring for the method).\n")
    sections: list[str] = []
    if path.is_file():
        text = path.read_text()
        parts = text.split("\n## ")
        intro = parts[0].rstrip() + "\n"
        sections = ["## " + p.rstrip() + "\n" for p in parts[1:]]
    sections = [s for s in sections if s.splitlines()[0] != head] + [section.rstrip() + "\n"]
    sections.sort(key=lambda s: s.startswith("## Notes"))  # hand-written notes stay last
    with atomic_write(path, "w") as f:
        f.write(intro + "\n" + "\n".join(sections))


def build_parser() -> argparse.ArgumentParser:
    """The command line of :func:`main` (also used to build ``args`` for :func:`measure`)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=tuple(SHAPES), default="tiny")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--preset", default="norton")
    parser.add_argument("--videos", type=int, default=None, help="override videos per batch")
    parser.add_argument("--encoder-videos", type=int, default=None,
                        help="time the encoders on this many videos and scale (CPU, paper)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="clips per block of the Eq. 5 similarity (bounds its memory)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--tf32", action="store_true",
                        help="GPU: float32 matmuls on TF32 tensor cores (train.tf32)")
    parser.add_argument("--similarity-precision", choices=("auto", "fp32", "bf16", "fp16"),
                        default=None,
                        help="dtype of the Eq. 5 matrix products (loss.similarity_precision; "
                             "default: the config's, 'auto' = the encoders' autocast dtype)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda: no GPU visible")
    torch.backends.cuda.matmul.allow_tf32 = args.tf32
    section = run(args)
    print(section)
    if not args.no_write:
        write(section, args.out)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
