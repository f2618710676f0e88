"""Linear dual encoders trained on stage 1's own batches: is the data or the encoder the limit?

Stage 1 (``nortonkit/configs/synthetic_stage1.yaml``) trains the small transformer dual
encoder on clips and merged captions drawn by the VideoCLIP sampler. This script trains three
*linear* dual encoders on exactly those batches (same corpus, same sampler, same 64 x 2 layout,
300 updates, symmetric InfoNCE on cosines at tau = 0.07, Adam at 1e-2, as the ``linear InfoNCE``
baseline of :mod:`nortonkit.lab.baselines`) and scores them with the study's measures:

* ``bag (sum)``: the baseline's text side, a sum of one learned vector per WordPiece id;
* ``LayerNorm mean``: every word vector LayerNorm-ed, then averaged (CLS out, SEP in), which is
  where a post-LN BERT with mean pooling starts: every token weighs the same;
* ``LayerNorm mean + positions``: the same with a learned position vector added before the
  LayerNorm, as BERT's embeddings do;
* ``LayerNorm, attention pooling``: the LayerNorm-ed word vectors weighed by a learned query
  (:func:`nortonkit.encoders.attention_pool`, zero at the start), as ``model.pooling=attention``
  pools the transformer's tokens.

The video side is the mean of the clip's frames times a learned matrix in all three. Output: a
markdown table of synthetic YouCookII clip R@1 and paragraph DTW R@1 (background removed),
mean +- std over training seeds, and the wall time.

    python benchmarks/linear_on_sampler.py [--data artifacts/synthetic] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nortonkit.data.text import encode_texts, load_tokenizer  # noqa: E402
from nortonkit.data.youcook import load_youcook_paragraphs  # noqa: E402
from nortonkit.encoders import attention_pool  # noqa: E402
from nortonkit.lab.robustness import clip_r1, paragraph_r1  # noqa: E402
from nortonkit.train.config import load_config  # noqa: E402
from nortonkit.train.loop import _open_split  # noqa: E402

TEXT_MODES = ("bag (sum)", "LayerNorm mean", "LayerNorm mean + positions",
              "LayerNorm, attention pooling")


class LinearDual(torch.nn.Module):
    """Bag-of-WordPiece text side (one of :data:`TEXT_MODES`) and a linear map of mean frames."""

    def __init__(self, mode: str, vocab: int, dim: int = 256, feat: int = 512, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.mode = mode
        self.words = torch.nn.Parameter(torch.randn(vocab, dim, generator=gen) * 0.02)
        self.pos = torch.nn.Parameter(torch.randn(64, dim, generator=gen) * 0.02)
        self.video_w = torch.nn.Parameter(torch.randn(feat, dim, generator=gen) / feat ** 0.5)
        self.query = torch.nn.Parameter(torch.zeros(dim))

    def text(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) ids ``[CLS] w.. [SEP] PAD..`` -> (B, dim)."""
        keep = mask.clone()
        keep[:, 0] = False  # CLS
        sep = mask.long().sum(1) - 1
        e = self.words[ids]  # (B, T, dim)
        if self.mode == "bag (sum)":
            keep[torch.arange(len(keep)), sep] = False
            return (e * keep[..., None]).sum(1)
        if self.mode == "LayerNorm mean + positions":
            e = e + self.pos[: e.shape[1]]
        e = F.layer_norm(e, e.shape[-1:])
        if self.mode == "LayerNorm, attention pooling":
            return attention_pool(e, keep, self.query)
        return (e * keep[..., None]).sum(1) / keep.sum(1, keepdim=True)

    def video(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, V, D) frames, (B, V) mask -> (B, dim)."""
        m = mask[..., None].float()
        return ((frames * m).sum(1) / m.sum(1).clamp_min(1)) @ self.video_w


def train_on_stage1_batches(mode: str, data: str, seed: int, steps: int = 300) -> LinearDual:
    """Fit one :class:`LinearDual` on the batches stage 1 draws (sampler seed = ``seed``)."""
    config = load_config(str(ROOT / "nortonkit/configs/synthetic_stage1.yaml"),
                         [f"data.root={data}", f"train.seed={seed}"])
    dataset = _open_split(config, "train", seed).dataset
    model = LinearDual(mode, config.model.vocab_size, seed=seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    step, epoch = 0, 0
    while step < steps:
        dataset.set_epoch(epoch)
        epoch += 1
        for batch in dataset:
            if batch is None:
                continue
            t = F.normalize(model.text(batch.text_ids, batch.text_mask), dim=-1)
            v = F.normalize(model.video(batch.video, batch.video_mask), dim=-1)
            logits = t @ v.T / 0.07  # (B, B)
            target = torch.arange(len(t))
            loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            if step >= steps:
                break
    return model


def score(model: LinearDual, data: str) -> dict[str, float]:
    """Clip R@1 and paragraph DTW R@1 (background removed) on synthetic YouCookII, percent."""
    par = load_youcook_paragraphs(data, max_video_len=16)
    clips = par.clips
    batch = encode_texts(list(clips.captions), load_tokenizer(), max_tokens=30)
    with torch.no_grad():
        text = model.text(batch.input_ids, batch.attention_mask)
        video = model.video(clips.video, clips.video_mask)
    return {"clip_r1": clip_r1(text, video), "paragraph_r1": paragraph_r1(text, video, par.blocks)}


def _cell(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {sd:.1f}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="artifacts/synthetic", help="the default synthetic corpus")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print("| text side (video: linear map of mean frames) | YouCookII clip R@1 | "
          "paragraph DTW R@1 | s per run |\n|---|---:|---:|---:|")
    for mode in TEXT_MODES:
        rows, t0 = [], time.perf_counter()
        for seed in args.seeds:
            rows.append(score(train_on_stage1_batches(mode, args.data, seed), args.data))
        sec = (time.perf_counter() - t0) / len(args.seeds)
        print(f"| {mode} | {_cell([r['clip_r1'] for r in rows])} | "
              f"{_cell([r['paragraph_r1'] for r in rows])} | {sec:.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
