"""Norton Table 7 ablations: train each loss preset from scratch, then evaluate zero-shot.

Holds :func:`run_ablations`: each (preset, seed) trains the tiny model on the synthetic
HowTo100M-like corpus with ``nortonkit/configs/tiny_synthetic.yaml`` (:data:`CONFIG_DIR`) for a
fixed number of updates and evaluates the checkpoint of the last update
(``checkpoint_last``), never the best of several on the test set (``docs/protocols.md`` §9
items 18-19), on YouCookII clip retrieval and video-paragraph DTW; every run is repeated over
the given seeds and reported as mean and std (:func:`nortonkit.lab.finetune.aggregate_seeds`).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..checkpoint import load_checkpoint
from ..eval.clip import eval_youcook_clip
from ..eval.paragraph import eval_youcook_paragraph
from ..train.config import load_config
from ..train.loop import fit
from ..train.presets import LOSS_PRESETS
from ..validation import check_int_at_least
from .finetune import aggregate_seeds

__all__ = ["run_ablations"]

CONFIG_DIR = Path(__file__).resolve().parents[1] / "configs"

_T7_MEASURES = {"bg_removed": "DTW, background removed", "bg_kept": "DTW, background kept"}


def _fit(overrides: list[str]) -> Any:
    """Train with ``tiny_synthetic.yaml`` and ``overrides``; the ``fit`` result."""
    return fit(load_config(CONFIG_DIR / "tiny_synthetic.yaml", overrides))  # restores threads


def run_ablations(
    root: Any,
    device: str = "cpu",
    seeds: Sequence[int] = (0,),
    out_dir: str | Path | None = None,
    presets: Sequence[str] = tuple("ABCDEFGHIJ"),
    steps: int = 20,
    videos_per_batch: int = 8,
    smoke: bool = False,
    overrides: Sequence[str] = (),
) -> tuple[list[dict], list[dict]]:
    """Norton Table 7: train each preset (tiny model, synthetic HowTo100M-like corpus), evaluate.

    Each (preset, seed) trains from scratch with ``nortonkit/configs/tiny_synthetic.yaml`` for
    ``steps`` updates, then ``checkpoint_last`` is evaluated on YouCookII clip retrieval (R@1,
    R@5) and video-paragraph DTW with the background removed and kept (R@1, R@5).

    Returns
    -------
    (rows, runs): result rows (mean/std over seeds; ``method`` = preset letter) and one dict per
    run with its directory, steps and training time.
    """
    for p in presets:
        if p not in LOSS_PRESETS:
            raise ValueError(f"presets: unknown preset {p!r} (known: {', '.join(LOSS_PRESETS)})")
    check_int_at_least("steps", steps, 1)
    base = Path(out_dir) / "ablations" if out_dir is not None else Path(
        tempfile.mkdtemp(prefix="nortonkit-ablations-"))
    rows, runs = [], []
    for preset in presets:
        for seed in seeds:
            run_dir = base / preset / f"seed{seed}"
            ov = [f"preset={preset}", f"data.root={root.root}", "data.synthetic=null",
                  f"train.out_dir={run_dir}", f"train.seed={seed}", f"train.max_steps={steps}",
                  "train.progress=false", "train.tensorboard=false", f"train.device={device}",
                  f"optim.total_num_update={steps}", f"data.videos_per_batch={videos_per_batch}",
                  f"optim.warmup_updates={steps // 10}", "train.epochs=1000",
                  f"train.val_every={steps}", f"train.save_every={steps}",
                  f"train.log_every={max(1, steps // 5)}"]
            if smoke:
                ov += ["retrieval.mode=off", "data.val_videos=2"]
            t0 = time.perf_counter()
            result = _fit(ov + list(overrides))
            seconds = time.perf_counter() - t0
            if result.last_checkpoint is None:
                raise RuntimeError(f"ablation {preset}: training wrote no checkpoint in {run_dir}")
            model = load_checkpoint(result.last_checkpoint).model.to(device)
            runs.append(dict(preset=preset, seed=seed, steps=result.step, seconds=seconds,
                             checkpoint=str(result.last_checkpoint)))
            found = eval_youcook_clip(model, root, device)
            found = [r for r in found if r["metric"] in ("R@1", "R@5")]
            par = eval_youcook_paragraph(model, root, device, measures=("DTW",))
            for r in par:
                if r["metric"] in ("R@1", "R@5"):
                    kind = "bg_removed" if r["table"] == "T1" else "bg_kept"
                    found.append(dict(r, measure=_T7_MEASURES[kind]))
            for r in found:
                rows.append(dict(r, table="T7", method=preset, seed=seed,
                                 setting=f"zero-shot after {result.step} updates"))
    return aggregate_seeds(rows, seeds), runs
