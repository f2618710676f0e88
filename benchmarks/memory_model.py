r"""Memory and throughput model of one Norton training step, computed from the shapes.

    python benchmarks/memory_model.py                      # paper shape (gpu_smoke.yaml)
    python benchmarks/memory_model.py --chunk-size 64      # Eq. 5 in checkpointed blocks
    python benchmarks/memory_model.py --json model.json    # also write every number as JSON

Prints markdown tables: floating-point work per step, peak GPU memory per step for four
precision paths, the largest ``data.videos_per_batch`` that fits 24, 40, 80 and 141 GiB, and a
lower bound on the step time at an H100's spec-sheet peak. Shapes come from a training config
(default ``nortonkit/configs/gpu_smoke.yaml``: bert-base, 6-layer video and 12-layer text BERT,
hidden h = 768, a = 12 heads, intermediate I = 3072, 64 videos x 16 clips = B = 1024 clip/caption
pairs; V = max_video_len + 2 = 18 frame positions and T = max_len - max_video_len - 3 + 2 = 31
word positions, CLS and SEP included; S3D features of 512). This is a model, not a measurement.

Precision paths: ``fp32``; ``fp32 + TF32`` (same memory, float32 products on TF32 tensor cores);
``bf16 encoders, fp32 Eq. 5`` (bf16 autocast, losses in float32); ``bf16 encoders + bf16 Eq. 5``
(also Eq. 5's matrix products in bf16, ``loss.similarity_precision``).

FLOPs (2 per multiply-add; backward = 2 x forward, so a step is 3 x forward)
------------------------------------------------------------------------------
* encoders, per token and layer: ``2 (4 h^2 + 2 h I)`` (Q, K, V, output and feed-forward
  products) ``+ 4 s h`` (``Q K^T`` and ``P V`` over the ``s`` positions of its sequence); the video
  MLP ``2 (512 h + h^2)`` per frame and the pooler ``2 h^2`` per sequence;
* L_clip: the ``(B, h) x (h, B)`` logits;
* Eq. 5 products: ``2 (B V') (h + 2) (B T')`` with ``V' = V - 1`` and ``T' = T - 1`` (CLS masked;
  the blocks are cut to their longest valid clip and caption, so the padded lengths are an upper
  bound); checkpointed blocks (``chunk_size``) recompute the forward: 4 x forward;
* Eq. 5 element-wise work, per entry of the ``(B, V', B, T')`` tensor: ``exp`` and the two sums
  forward, the sum of the two incoming gradients and the product with ``exp`` backward (5 FLOPs);
  as memory traffic per entry, 20 bytes forward (product written, ``exp_`` read and written in
  place, two reductions read it; + 4 for the bf16 product read back into its float32 copy) and
  16 backward (the gradient sum written, read with ``exp``, the product written; + 6 for the
  bf16 cast, + 16 in fp32 for the two ``CopySlices`` copies described below);
* Sinkhorn (no gradient): 50 iterations of two log-domain half-iterations, 4 FLOPs per entry, on
  the ``(B, B)`` FNE plan and the ``(B/K)^2`` bucket plans of ``(K+1) x (K+1)``.

Memory at the step's peak (bytes)
---------------------------------
The peak is where the losses start their backward pass: every encoder activation saved for
backward is alive, the Eq. 5 blocks are being differentiated and no parameter gradient exists yet
(``zero_grad(set_to_none=True)``). The optimizer step is the other candidate: gradients plus one
parameter-sized temporary of the foreach Adam. With P parameters (P_lin of them in ``nn.Linear``
layers), p = 4 (float32) or 2 (bf16 autocast) bytes per activation element::

    peak = 4 P (fp32 weights) + 8 P (Adam moments)
           + max(  2 P_lin (bf16 weight copies kept by autocast; bf16 paths only)
                 + encoder activations + encoder outputs + batch
                 + Eq. 5 inputs + Eq. 5 blocks + (B, B) matrices of the losses,
                   4 P (gradients) + 4 P (Adam temporary) )

Encoder activations, per token of a sequence of ``s`` positions and per layer (HF ``BertLayer``
in training mode, dropout 0.1, LayerNorms in float32 under autocast, the residual stream float32)::

    Q/K/V inputs        fp32: 4h (one tensor)      bf16: 3 * 2h (autocast casts it per linear)
    Q, K, V             3 p h                       (saved by the attention kernel)
    attention           sdpa: p h (output = out-proj input) + 4 a ceil32(s)/s (logsumexp)
                              + p ceil16(s) (the additive mask, padded to 16 columns)
                        eager: p h (context) + softmax output and dropout (fp32: 9 a s,
                              bf16: 7 a s = fp32 softmax 4, mask 1, bf16 copy 2)
    out-proj dropout    h (bool mask)
    LayerNorm 1 input   4h + 8 (mean, rstd)
    FFN input           fp32: 4h (the LayerNorm output)     bf16: 2h (its cast)
    GELU input, output  2 p I
    FFN dropout         h
    LayerNorm 2 input   4h + 8

i.e. ``34 h + 8 I + ...`` bytes in float32 and ``26 h + 4 I + ...`` in bf16 (``66 h`` and ``42 h``
for ``I = 4 h``; the sdpa kernel assumed is CUDA's memory-efficient one, which keeps no
``(s, s)`` tensor and regenerates its dropout mask). Embeddings add ``5 h + 32`` per token
(LayerNorm input, dropout mask, indices); the video MLP ``p 512 + p h + 4 h + p h`` per frame
(``4 (512 + 3 h)`` in float32). Encoder outputs: ``4 B (V + T) h`` (float32 tokens, kept for
the losses).

Eq. 5 (``nortonkit.similarity``): inputs ``(B V' + B T') (4 h + q (h + 2 [+ 6]))`` with q the
product's bytes (the normalised float32 rows kept by ``F.normalize``, the augmented rows kept by
the product, padded to a multiple of 8 features in half precision). Captions go in groups of
``n_c = max(128, ceil(B / 8))``, clips in blocks of ``chunk_size`` (all B when None); a block has
``m V' n_c T'`` entries. Without ``chunk_size`` the float32 ``exp`` of every block is saved for
backward (``4 B V' B T'``), and the backward of a block adds, per block entry, 8 bytes in the
bf16 path (the sum of the two incoming gradients, its product with ``exp``) and 16 in the fp32
path (there ``exp_`` runs in place on a view of the product, so autograd's ``CopySlices`` copies
the block's gradient twice more); with ``chunk_size`` nothing is saved and the backward
recomputes one block at a time: 20 (fp32) or 14 (bf16: 12 + its bf16 product) per block entry.
Both paths cast the products to float32 before the log-sum-exps, so the bf16 path saves memory
only through that backward and its smaller inputs; mainly it buys speed. The ``(B, B)``
matrices of the losses (similarities, logits, plans, soft targets, Sinkhorn iterates) are taken
as 30 float32 ``B^2``.

Checked on the CPU with the profiler's allocator events (``torch.profiler``,
``profile_memory=True``): the fp32 layer accounting with eager attention matches the memory a
3-layer, h = 128 text encoder retains after its forward pass to 0.2 % once CPU dropout is
counted as a float mask (CUDA's fused dropout keeps a bool mask, CPU's a float one), bf16
autocast to 3 %; the peak of Eq. 5's forward and backward (B = 256, h = 64, full lengths) to
3 % (fp32) and 5 % (bf16) without ``chunk_size``, 8 % and 3 % with ``chunk_size = 32``. CUDA's
memory-efficient attention kernel and its autocast casts are assumptions, not checked here.

Headroom: a batch fits a card when its peak is at most 90 % of the card (10 % for the CUDA
context, cuBLAS workspaces and allocator fragmentation). Not modelled: the allocator's rounding,
DDP buckets (a DDP run adds 4 P of gradient buckets), the DataLoader's pinned memory.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nortonkit.io import atomic_write  # noqa: E402
from nortonkit.train.config import load_config  # noqa: E402

GPU_SMOKE = Path(__file__).resolve().parents[1] / "nortonkit" / "configs" / "gpu_smoke.yaml"
GIB = 2**30
CAPACITIES_GIB = (24, 40, 80, 141)
HEADROOM = 0.10
# H100 SXM spec sheet (dense): FLOP/s per product dtype, and HBM3 bandwidth in bytes/s.
H100_PEAK = {"fp32": 66.9e12, "tf32": 494.7e12, "bf16": 989.4e12}
H100_BANDWIDTH = 3.35e12
LOSS_MATRICES = 30  # float32 (B, B) tensors alive in the losses (see the module docstring)


@dataclass(frozen=True)
class Shapes:
    """Everything the model needs from a training config (defaults: ``gpu_smoke.yaml``)."""

    videos_per_batch: int = 64
    clips_per_video: int = 16
    frames: int = 16  # data.max_video_len: V = frames + CLS + SEP
    words: int = 29  # data.max_len - max_video_len - 3: T = words + CLS + SEP
    feature_dim: int = 512
    hidden: int = 768
    heads: int = 12
    intermediate: int = 3072
    video_layers: int = 6
    text_layers: int = 12
    vocab: int = 30522
    max_positions: int = 512
    seq_len: int = 8  # K clips per sequence of L_video
    sinkhorn_iters: int = 50
    chunk_size: int | None = None  # loss.chunk_size: clips per Eq. 5 block
    attention: str = "sdpa"  # model.attn_implementation
    logit_scales: int = 2

    @property
    def pairs(self) -> int:
        """B, the clip/caption pairs of one step."""
        return self.videos_per_batch * self.clips_per_video

    @property
    def v_pos(self) -> int:
        """V, frame positions per clip (CLS + frames + SEP)."""
        return self.frames + 2

    @property
    def t_pos(self) -> int:
        """T, word positions per caption (CLS + words + SEP)."""
        return self.words + 2

    @classmethod
    def from_config(cls, path: str | Path = GPU_SMOKE, overrides: tuple[str, ...] = ()) -> Shapes:
        """The shapes of a nortonkit training config (``python -m nortonkit.train`` YAML)."""
        cfg = load_config(path, list(overrides))
        m, d, loss = cfg.model, cfg.data, cfg.loss
        return cls(
            videos_per_batch=d.videos_per_batch, clips_per_video=d.clips_per_video,
            frames=d.max_video_len, words=d.max_len - d.max_video_len - 3,
            feature_dim=m.video_feature_dim, hidden=m.hidden_size, heads=m.num_heads,
            intermediate=m.intermediate_size, video_layers=m.video_layers,
            text_layers=m.text_layers, vocab=m.vocab_size, max_positions=m.max_positions,
            seq_len=loss.seq_len, sinkhorn_iters=loss.n_iters, chunk_size=loss.chunk_size,
            attention=m.attn_implementation,
            logit_scales=1 + (m.clip_logit_scale == "learnable"),
        )


@dataclass(frozen=True)
class PrecisionPath:
    """Bytes per activation element and the product dtype of the encoders and of Eq. 5."""

    name: str
    act_bytes: int  # encoder activations: 4 (float32) or 2 (bf16 autocast)
    eq5_bytes: int  # Eq. 5 matrix-product operands: 4 or 2
    encoder_matmul: str  # key of H100_PEAK
    eq5_matmul: str


PATHS = (
    PrecisionPath("fp32", 4, 4, "fp32", "fp32"),
    PrecisionPath("fp32 + TF32", 4, 4, "tf32", "tf32"),
    PrecisionPath("bf16 encoders, fp32 Eq. 5", 2, 4, "bf16", "fp32"),
    PrecisionPath("bf16 encoders + bf16 Eq. 5", 2, 2, "bf16", "bf16"),
)


def _ceil_to(x: int, k: int) -> int:
    return -(-x // k) * k


# ----------------------------------------------------------------------------- parameters


def parameter_count(s: Shapes) -> dict[str, int]:
    """Parameters of the dual encoder (HF BERTs with poolers, the video MLP, logit scales)."""
    h, i = s.hidden, s.intermediate
    layer = 4 * (h * h + h) + 2 * h + (h * i + i) + (i * h + h) + 2 * h
    embeddings = (s.vocab + s.max_positions + 2) * h + 2 * h
    pooler = h * h + h
    mlp = s.feature_dim * h + h + 2 * h + h * h + h
    video = embeddings + s.video_layers * layer + pooler + mlp
    text = embeddings + s.text_layers * layer + pooler
    linear_layer = 4 * (h * h + h) + (h * i + i) + (i * h + h)
    linear = ((s.video_layers + s.text_layers) * linear_layer + 2 * pooler
              + s.feature_dim * h + h + h * h + h)
    return {"video": video, "text": text, "total": video + text + s.logit_scales,
            "linear": linear}


# ----------------------------------------------------------------------------- FLOPs


def _eq5_geometry(s: Shapes) -> dict[str, int]:
    """Entries of the Eq. 5 tensor, of its largest block, and the tokens in its products."""
    n = s.pairs
    v_cut, t_cut = s.v_pos - 1, s.t_pos - 1  # CLS masked: at most frames + SEP, words + SEP
    clips = min(s.chunk_size or n, n)
    captions = min(max(128, -(-n // 8)), n)
    return {"entries": n * v_cut * n * t_cut, "block": clips * v_cut * captions * t_cut,
            "video_tokens": n * v_cut, "text_tokens": n * t_cut, "clips": clips,
            "captions": captions}


def flops(s: Shapes) -> dict[str, dict[str, float]]:
    """Forward and per-step (forward + backward) FLOPs of each part; see the module docstring."""
    h, i, n = s.hidden, s.intermediate, s.pairs
    per_token_layer = 2 * (4 * h * h + 2 * h * i)
    video = n * s.v_pos * s.video_layers * (per_token_layer + 4 * s.v_pos * h)
    text = n * s.t_pos * s.text_layers * (per_token_layer + 4 * s.t_pos * h)
    encoders = (video + text + n * s.frames * 2 * (s.feature_dim * h + h * h)
                + 2 * n * 2 * h * h)
    geo = _eq5_geometry(s)
    products = 2 * geo["video_tokens"] * (h + 2) * geo["text_tokens"]
    recompute = 1 if s.chunk_size else 0  # checkpointed blocks run their forward twice
    elementwise_fwd, elementwise_bwd = 3 * geo["entries"], 2 * geo["entries"]
    groups = n // s.seq_len
    sinkhorn = (4 * 2 * s.sinkhorn_iters
                * (n * n + groups * groups * (s.seq_len + 1) ** 2))
    clip = 2 * n * n * h
    return {
        "encoders": {"forward": encoders, "step": 3 * encoders},
        "L_clip logits": {"forward": clip, "step": 3 * clip},
        "Eq. 5 products": {"forward": products, "step": (3 + recompute) * products},
        "Eq. 5 element-wise": {"forward": elementwise_fwd,
                               "step": (1 + recompute) * elementwise_fwd + elementwise_bwd},
        "Sinkhorn (FNE + bucket)": {"forward": sinkhorn, "step": sinkhorn},
    }


def eq5_traffic_bytes(s: Shapes, path: PrecisionPath) -> float:
    """Bytes the Eq. 5 element-wise passes move per step (module docstring)."""
    half = path.eq5_bytes == 2
    fwd = 20 + (4 if half else 0)
    bwd = 16 + (6 if half else 16)
    recompute = 1 if s.chunk_size else 0
    return _eq5_geometry(s)["entries"] * ((1 + recompute) * fwd + bwd)


# ----------------------------------------------------------------------------- memory


def layer_activation_bytes(seq: int, s: Shapes, p: int) -> float:
    """Bytes one BERT layer saves for backward per token, sequences of ``seq`` positions."""
    h, i, a = s.hidden, s.intermediate, s.heads
    qkv_inputs = 4 * h if p == 4 else 3 * p * h
    qkv = 3 * p * h
    if s.attention == "sdpa":
        attention = p * h + 4 * a * _ceil_to(seq, 32) / seq + p * _ceil_to(seq, 16)
    else:
        attention = p * h + (9 if p == 4 else 7) * a * seq
    ffn_input = 4 * h if p == 4 else p * h
    layer_norms = 2 * (4 * h + 8)
    dropout_masks = 2 * h
    return qkv_inputs + qkv + attention + ffn_input + 2 * p * i + layer_norms + dropout_masks


def encoder_activation_bytes(s: Shapes, path: PrecisionPath) -> dict[str, float]:
    """Activations both encoders keep for backward (video MLP and embeddings included)."""
    p, h, n = path.act_bytes, s.hidden, s.pairs
    embeddings = 5 * h + 8 + 24
    if p == 4:  # masked features, GELU input, LayerNorm input and output
        mlp = 4 * (s.feature_dim + 3 * h) + 8
    else:  # their bf16 casts, the float32 LayerNorm input
        mlp = 2 * (s.feature_dim + 2 * h) + 4 * h + 8
    video = n * s.v_pos * (s.video_layers * layer_activation_bytes(s.v_pos, s, p) + embeddings)
    video += n * s.frames * mlp + n * s.v_pos**2
    text = n * s.t_pos * (s.text_layers * layer_activation_bytes(s.t_pos, s, p) + embeddings)
    text += n * s.t_pos**2
    return {"video": video, "text": text}


def eq5_bytes(s: Shapes, path: PrecisionPath, grad: bool = True) -> dict[str, float]:
    """Memory of the Eq. 5 similarity: its saved inputs and its blocks at their peak.

    ``grad=False`` is the forward pass alone (B2's setting): the augmented caption rows of every
    group, one block of clips, one float32 block (+ its bf16 product).
    """
    geo = _eq5_geometry(s)
    h, q = s.hidden, path.eq5_bytes
    row = q * (h + 2 + (6 if q == 2 else 0))
    if not grad:
        inputs = geo["text_tokens"] * row + geo["clips"] * (s.v_pos - 1) * row
        block = geo["block"] * (4 + (2 if q == 2 else 0))
        return {"inputs": inputs, "blocks": block}
    inputs = (geo["video_tokens"] + geo["text_tokens"]) * (4 * h + row)
    backward = 16 if q == 4 else 8  # per block entry on top of its saved exp
    if s.chunk_size:
        blocks = (4 + backward + (2 if q == 2 else 0)) * geo["block"]
    else:
        blocks = 4 * geo["entries"] + backward * geo["block"]
    return {"inputs": inputs, "blocks": blocks}


def memory(s: Shapes, path: PrecisionPath) -> dict[str, float]:
    """Bytes of each component of one training step and the step's peak (module docstring)."""
    params = parameter_count(s)
    n_p, n = params["total"], s.pairs
    acts = encoder_activation_bytes(s, path)
    eq5 = eq5_bytes(s, path)
    parts = {
        "weights (fp32)": 4 * n_p,
        "Adam moments": 8 * n_p,
        "bf16 weight copies": 2 * params["linear"] if path.act_bytes == 2 else 0,
        "video encoder activations": acts["video"],
        "text encoder activations": acts["text"],
        "encoder outputs + batch": 4 * n * (s.v_pos + s.t_pos) * s.hidden
        + n * (4 * s.frames * s.feature_dim + s.frames + 9 * s.t_pos),
        "Eq. 5 inputs": eq5["inputs"],
        "Eq. 5 blocks": eq5["blocks"],
        "(B, B) loss matrices": LOSS_MATRICES * 4 * n * n,
        "gradients + Adam temporary": 8 * n_p,
    }
    persistent = parts["weights (fp32)"] + parts["Adam moments"]
    at_losses = sum(v for k, v in parts.items()
                    if k not in ("weights (fp32)", "Adam moments", "gradients + Adam temporary"))
    parts["peak"] = persistent + max(at_losses, parts["gradients + Adam temporary"])
    return parts


def max_videos_per_batch(s: Shapes, path: PrecisionPath, capacity_gib: float,
                         headroom: float = HEADROOM, limit: int = 1 << 16) -> int:
    """The largest ``videos_per_batch`` whose peak fits ``(1 - headroom) * capacity`` (0: none).

    The peak grows with the batch (linearly, and quadratically through Eq. 5 and the losses),
    so the first batch that does not fit ends the search.
    """
    budget = (1.0 - headroom) * capacity_gib * GIB
    best = 0
    for videos in range(1, limit + 1):
        if memory(replace(s, videos_per_batch=videos), path)["peak"] > budget:
            break
        best = videos
    return best


def time_bound_ms(s: Shapes, path: PrecisionPath) -> dict[str, float]:
    """Step time at an H100 SXM's spec-sheet peak (a lower bound): products at the peak of
    their dtype, Eq. 5's element-wise passes at full HBM bandwidth, everything else free."""
    f = flops(s)
    encoders = f["encoders"]["step"] / H100_PEAK[path.encoder_matmul]
    eq5 = (f["Eq. 5 products"]["step"] / H100_PEAK[path.eq5_matmul]
           + eq5_traffic_bytes(s, path) / H100_BANDWIDTH)
    rest = (f["L_clip logits"]["step"] + f["Sinkhorn (FNE + bucket)"]["step"]) / H100_PEAK["fp32"]
    return {"encoders": 1e3 * encoders, "Eq. 5": 1e3 * eq5, "other losses": 1e3 * rest,
            "step": 1e3 * (encoders + eq5 + rest)}


# ----------------------------------------------------------------------------- report


def _gib(x: float) -> str:
    return f"{x / GIB:.2f}"


def report(s: Shapes, capacities: tuple[float, ...] = CAPACITIES_GIB,
           headroom: float = HEADROOM) -> tuple[str, dict]:
    """The markdown tables and the same numbers as a JSON-ready dict."""
    params = parameter_count(s)
    f = flops(s)
    total = sum(v["step"] for v in f.values())
    mems = {p.name: memory(s, p) for p in PATHS}
    variants = (replace(s, chunk_size=None), replace(s, chunk_size=s.chunk_size or 64))
    fits = {f"chunk_size={v.chunk_size}": {p.name: {str(c): max_videos_per_batch(v, p, c, headroom)
                                                    for c in capacities} for p in PATHS}
            for v in variants}
    times = {p.name: time_bound_ms(s, p) for p in PATHS}
    b2 = {c: {p.name: sum(eq5_bytes(replace(s, chunk_size=c), p, grad=False).values())
              for p in (PATHS[0], PATHS[3])} for c in (None, 64)}

    head = [p.name for p in PATHS]
    lines = [
        f"Shape: {s.videos_per_batch} videos x {s.clips_per_video} clips = {s.pairs} pairs, "
        f"V = {s.v_pos} and T = {s.t_pos} positions, hidden {s.hidden}, {s.heads} heads, "
        f"intermediate {s.intermediate}, {s.video_layers} + {s.text_layers} layers, "
        f"{params['total'] / 1e6:.1f} M parameters, attention `{s.attention}`, Eq. 5 "
        f"chunk_size {s.chunk_size} (a model, not a measurement).",
        "",
        "| part | forward GFLOP | step GFLOP (fwd + bwd) | share of step |",
        "|---|---:|---:|---:|",
    ]
    for name, v in f.items():
        lines.append(f"| {name} | {v['forward'] / 1e9:,.1f} | {v['step'] / 1e9:,.1f} | "
                     f"{100 * v['step'] / total:.1f} % |")
    lines += [f"| **total** | | **{total / 1e9:,.1f}** | 100 % |", "",
              "| memory (GiB) | " + " | ".join(head) + " |",
              "|---|" + "---:|" * len(head)]
    for key in mems[head[0]]:
        cells = " | ".join((f"**{_gib(mems[h][key])}**" if key == "peak" else _gib(mems[h][key]))
                           for h in head)
        label = "**peak of the step**" if key == "peak" else key
        lines.append(f"| {label} | {cells} |")
    lines += ["", "Peak = weights + Adam moments + the larger of the rows in between (alive "
              "when the losses start their backward) and the last row (the optimizer step).",
              "", f"Largest `data.videos_per_batch` (x {s.clips_per_video} clips) whose peak "
              f"fits {100 * (1 - headroom):.0f} % of the card ({100 * headroom:.0f} % headroom):",
              "", "| card | Eq. 5 | " + " | ".join(head) + " |",
              "|---|---|" + "---:|" * len(head)]
    for c in capacities:
        for label, table in fits.items():
            lines.append(f"| {c:g} GiB | {label} | "
                         + " | ".join(str(table[h][str(c)]) for h in head) + " |")
    lines += ["", "Step time at the H100 SXM spec-sheet peak (a lower bound, ms; products at "
              "the peak of their dtype, Eq. 5's element-wise passes at 3.35 TB/s):", "",
              "| ms / step | " + " | ".join(head) + " |", "|---|" + "---:|" * len(head)]
    for key in ("encoders", "Eq. 5", "other losses", "step"):
        lines.append(f"| {key} | " + " | ".join(f"{times[h][key]:.1f}" for h in head) + " |")
    lines.append("| Eq. 5 share | " + " | ".join(
        f"{100 * times[h]['Eq. 5'] / times[h]['step']:.0f} %" for h in head) + " |")
    lines += ["", "Eq. 5 forward alone without gradient (B2's setting, B = "
              f"{s.pairs}): chunk_size None {b2[None][PATHS[0].name] / 2**20:,.0f} MiB "
              f"(bf16 products {b2[None][PATHS[3].name] / 2**20:,.0f} MiB), chunk_size 64 "
              f"{b2[64][PATHS[0].name] / 2**20:,.0f} MiB "
              f"(bf16 {b2[64][PATHS[3].name] / 2**20:,.0f} MiB).", ""]
    data = {"shapes": dataclasses.asdict(s), "parameters": params, "flops": f,
            "memory_bytes": mems, "max_videos_per_batch": fits, "headroom": headroom,
            "time_bound_ms_h100": times, "eq5_forward_nograd_bytes": {
                str(c): v for c, v in b2.items()}}
    return "\n".join(lines), data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=GPU_SMOKE,
                        help="training config to read the shapes from (default gpu_smoke.yaml)")
    parser.add_argument("--videos", type=int, default=None,
                        help="data.videos_per_batch for the FLOP and memory tables "
                             "(default: the config's)")
    parser.add_argument("--chunk-size", type=int, default=None,
                        help="loss.chunk_size: clips per checkpointed Eq. 5 block "
                             "(default: the config's)")
    parser.add_argument("--capacities", type=float, nargs="+", default=list(CAPACITIES_GIB),
                        help="card sizes in GiB for the largest-batch table")
    parser.add_argument("--headroom", type=float, default=HEADROOM,
                        help="fraction of each card kept free (default 0.1)")
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    if not 0.0 <= args.headroom < 1.0:
        parser.error(f"--headroom: expected a fraction in [0, 1), got {args.headroom}")
    s = Shapes.from_config(args.config)
    if args.videos is not None:
        s = replace(s, videos_per_batch=args.videos)
    if args.chunk_size is not None:
        s = replace(s, chunk_size=args.chunk_size)
    text, data = report(s, tuple(args.capacities), args.headroom)
    print(text)
    if args.json is not None:
        with atomic_write(args.json, "w") as f:
            json.dump(data, f, indent=1)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
