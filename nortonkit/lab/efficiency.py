"""Norton Table 8 efficiency: seconds per training update of each line, and their ratio.

Holds the Table 8 lines (:data:`EFFICIENCY_LINES`: clip-caption contrast, faulty negative
exploitation, video-paragraph contrast, the fine-grained soft-maximum operator, 32 frames) and
:func:`run_efficiency`, which times one update of each on the tiny model and a random batch,
repeated over the given seeds and reported as mean and std
(:func:`nortonkit.lab.finetune.aggregate_seeds`).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from typing import Any

import torch

from ..encoders import DualEncoder
from ..threads import torch_threads
from ..train.config import config_from_dict
from ..train.objective import NortonObjective, train_step
from ..train.schedule import build_optimizer
from ..validation import check_int_at_least
from .finetune import aggregate_seeds

__all__ = ["EFFICIENCY_LINES", "run_efficiency"]

#: Table 8 lines: (approach as printed, preset, loss overrides, frames per clip).
EFFICIENCY_LINES: tuple[tuple[str, str, dict[str, Any], int], ...] = (
    ("Clip-caption Contrast (16f)", "A", {}, 16),
    ("+ Faulty Negative Exploitation", "B", {}, 16),
    ("+ Video-paragraph Contrast (16f×8)", "norton", {"similarity": "mean"}, 16),
    ("+ Fine-grained Soft-maximum Operator (16f×8)", "norton", {}, 16),
    ("Clip-caption Contrast (32f)", "A", {}, 32),
)


def _step_time(preset: str, loss: dict[str, Any], frames: int, videos: int, clips: int,
               repeats: int, seed: int, device: str) -> list[float]:
    """Seconds of each of ``repeats`` updates of one line, after one warm-up update."""
    cfg = config_from_dict({"preset": preset, "loss": loss,
                            "model": {"preset": "tiny", "trainable": "all"},
                            "data": {"videos_per_batch": videos, "clips_per_video": clips,
                                     "max_video_len": frames}})
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    enc = DualEncoder(cfg.model).to(device).train()
    obj = NortonObjective(enc, cfg.loss, clips_per_video=clips)
    opt = build_optimizer(enc, cfg)
    n = videos * clips
    ids = torch.randint(1000, 30000, (n, 32), generator=g)
    ids[:, 0], ids[:, -1] = 101, 102
    batch = (torch.randn(n, frames, 512, generator=g).to(device),
             torch.ones(n, frames, dtype=torch.bool, device=device), ids.to(device),
             torch.ones(n, 32, dtype=torch.bool, device=device))
    times = []
    for i in range(repeats + 1):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        train_step(obj, enc, opt, batch)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i:  # the first step is a warm-up
            times.append(time.perf_counter() - t0)
    return times


def run_efficiency(
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    repeats: int = 5,
    videos_per_batch: int = 8,
    clips_per_video: int = 16,
    lines: Sequence[tuple[str, str, dict[str, Any], int]] = EFFICIENCY_LINES,
    threads: int | None = 1,
) -> list[dict]:
    """Norton Table 8: seconds per training update of each line (tiny model), and the ratio.

    Each line is timed as the median of ``repeats`` updates after one warm-up, on a random
    batch of ``videos_per_batch x clips_per_video`` clips (the time does not depend on the
    values); ``relative_to_line1`` divides by the first line, which the paper also reports
    (minutes per epoch on an A100 are not comparable with seconds per step here). ``threads``
    sets torch's CPU threads while timing (1 by default, like ``tiny_synthetic.yaml``: on a
    small shared CPU more threads make tiny steps slower and noisier); None keeps torch's.
    """
    check_int_at_least("repeats", repeats, 1)
    with torch_threads(threads):
        return _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines)


def _efficiency(device, seeds, repeats, videos_per_batch, clips_per_video, lines) -> list[dict]:
    """The rows of :func:`run_efficiency` (median step time per line and seed, aggregated)."""
    rows = []
    for seed in seeds:
        per_line = []
        for approach, preset, loss, frames in lines:
            t = statistics.median(_step_time(preset, loss, frames, videos_per_batch,
                                             clips_per_video, repeats, seed, device))
            per_line.append((approach, preset, t))
        first = per_line[0][2]
        for approach, preset, t in per_line:
            common = dict(table="T8", setting=f"tiny model, {device}", method=preset,
                          measure=approach, n=repeats, seed=seed)
            rows.append(dict(common, variant="corrected", metric="seconds_per_step", value=t))
            rows.append(dict(common, variant="corrected", metric="relative_to_line1",
                             value=t / first))
    return aggregate_seeds(rows, seeds)
