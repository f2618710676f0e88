"""Learning on the synthetic corpus: the old recipe against stage 1, step by step.

Usage::

    python benchmarks/learning_curves.py --train   # train every recipe (about 35 min, 1 core)
    python benchmarks/learning_curves.py           # plot and tabulate runs already trained
    python benchmarks/learning_curves.py --rescore # score them again (evaluation changed)

Each recipe is ``nortonkit/configs/tiny_synthetic.yaml`` with overrides, one change after the
other, ending at ``nortonkit/configs/synthetic_stage1.yaml``, then the levers tried on top of
stage 1 (:data:`STAGE1_VARIANTS`); every run is 300 updates (600 for the smaller batches),
training seed 0, one thread, scored on the default corpus (seed 0). The figure goes to
``data_recipes/figures/learning_curves.png`` and the table (final validation loss, synthetic
YouCookII clip R@1 and paragraph DTW R@1, background removed) is printed as markdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nortonkit.checkpoint import load_checkpoint  # noqa: E402
from nortonkit.lab.robustness import evaluate_encoder  # noqa: E402
from nortonkit.synthetic.config import SyntheticConfig  # noqa: E402
from nortonkit.synthetic.corpus import generate_corpus  # noqa: E402
from nortonkit.train.config import load_config  # noqa: E402
from nortonkit.train.loop import fit  # noqa: E402

_64x2 = ["retrieval.mode=off", "loss.seq_len=2", "train.epochs=1000",
         "data.videos_per_batch=64", "data.clips_per_video=2"]
_W = ["model.hidden_size=128", "model.intermediate_size=256", "optim.lr=1e-3",
      "optim.warmup_updates=50"]
_MINILM = ["model.preset=minilm", "model.hidden_size=384", "model.intermediate_size=1536",
           "model.num_heads=12", "model.text_layers=1", "model.video_layers=1"]
#: name -> overrides of tiny_synthetic.yaml.
RECIPES: dict[str, list[str]] = {
    "old default (Norton loss, 8x16, hard negatives, h64)": [],
    "VideoCLIP loss, h128, lr 1e-3, 8x16 random": ["preset=videoclip", *_W,
                                                   "retrieval.mode=off"],
    "+ 64 videos x 2 clips, no dropout": ["preset=videoclip", *_W, "model.dropout=0.0",
                                          *_64x2],
}
#: The stage-1 recipe and levers tried on it: name -> overrides of synthetic_stage1.yaml
#: (SCALED: the corpus of --scale videos instead of the default one). The levers were tried
#: with BERT's position embeddings and mean pooling, before stage 1 changed both.
SCALED = "{scaled}"
_MEAN = ["model.pooling=mean"]
_ABS = ["model.positions=absolute", *_MEAN]
STAGE1_VARIANTS: dict[str, list[str]] = {
    "+ h256, 1 + 1 layers (BERT's positions)": _ABS,
    "h256, 32 videos x 2 clips, 600 updates": [
        *_ABS, "data.videos_per_batch=32", "train.max_steps=600", "optim.total_num_update=600",
        "optim.warmup_updates=100"],
    "h256, one ASR sentence per clip (no merging)": [
        *_ABS, "data.min_text_len=1", "data.max_text_len=1"],
    "h256, MiniLM's first layer on both sides (h384)": [*_ABS, *_MINILM],
    "h256, 8000-video corpus (each video seen about 5x)": [
        *_ABS, f"data.root={SCALED}", "data.synthetic=null"],
    "h256, no position embeddings (mean pooling)": _MEAN,
    "stage 1: h256, no positions, attention pooling": [],
}


def _dir(out: Path, name: str) -> Path:
    return out / "".join(c if c.isalnum() else "_" for c in name)[:48]


def _recipes() -> dict[str, tuple[str, list[str]]]:
    """name -> (yaml under nortonkit/configs, overrides) of every run, in table order."""
    out = {name: ("tiny_synthetic.yaml", over) for name, over in RECIPES.items()}
    return out | {name: ("synthetic_stage1.yaml", over)
                  for name, over in STAGE1_VARIANTS.items()}


def train(out: Path, data: str, scale: int, only: str | None = None) -> None:
    """Train every recipe (or those whose name contains ``only``) into ``out``."""
    recipes = {k: v for k, v in _recipes().items() if only is None or only in k}
    scaled = out / f"corpus_{scale}"
    if any(SCALED in o for _, over in recipes.values() for o in over):
        generate_corpus(scaled, SyntheticConfig.preset("default", seed=0, scale=scale),
                        progress=False)
    for name, (yaml, over) in recipes.items():
        run = _dir(out, name)
        common = [f"train.out_dir={run}", f"data.root={data}", "train.progress=false",
                  "train.resume=false", "train.tensorboard=false", "train.val_every=25",
                  "train.seed=0"]
        over = [o.replace(SCALED, str(scaled)) for o in over]
        t0 = time.perf_counter()
        fit(load_config(str(ROOT / "nortonkit" / "configs" / yaml), common + over))
        train_s = round(time.perf_counter() - t0, 1)
        (run / "scores.json").write_text(json.dumps(dict(train_s=train_s)))
        rescore(run, data)


def rescore(run: Path, data: str) -> None:
    """Score ``run``'s last checkpoint again (evaluation only), keeping its training time."""
    path = run / "scores.json"
    train_s = json.loads(path.read_text())["train_s"]
    scores = evaluate_encoder(load_checkpoint(run / "checkpoint_last").model, data)
    path.write_text(json.dumps(dict(scores, train_s=train_s)))


def plot(out: Path, figure: Path) -> str:
    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    rows = []
    for name in _recipes():
        run = _dir(out, name)
        val = pd.read_csv(run / "val_log.csv")
        a.plot(val["step"], val["val_loss"], marker="o", ms=2, label=name)
        b.plot(val["step"], 100 * val["val_clip_r1"], marker="o", ms=2, label=name)
        s = json.loads((run / "scores.json").read_text())
        rows.append(f"| {name} | {val['val_loss'].iloc[-1]:.2f} | {s['clip_r1']:.1f} | "
                    f"{s['paragraph_r1']:.1f} | {s['train_s']:.0f} |")
    a.axhline(9.70, ls=":", color="grey", label="chance (2 ln 128)")
    a.set(xlabel="update", ylabel="validation loss (128 pairs)")
    b.axhline(100 / 128, ls=":", color="grey")
    b.set(xlabel="update", ylabel="validation in-batch clip R@1 (%)")
    a.legend(fontsize=7)
    fig.suptitle("synthetic corpus (default, seed 0), training seed 0, 300 updates "
                 "(600 for the 32 x 2 variant)", fontsize=9)
    figure.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(figure, dpi=110)
    head = ("| recipe | final val loss | YouCookII clip R@1 | paragraph DTW R@1 (bg removed) "
            "| train s |\n|---|---:|---:|---:|---:|")
    return head + "\n" + "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", action="store_true", help="train every recipe first")
    ap.add_argument("--rescore", action="store_true",
                    help="score the trained runs again (after a change of the evaluation)")
    ap.add_argument("--runs", default="artifacts/learning_curves", help="run folders")
    ap.add_argument("--data", default="artifacts/synthetic", help="the default corpus")
    ap.add_argument("--scale", type=int, default=8000,
                    help="videos of the larger corpus of the last variant")
    ap.add_argument("--only", default=None,
                    help="with --train: only the recipes whose name contains this text")
    ap.add_argument("--figure", default="data_recipes/figures/learning_curves.png")
    args = ap.parse_args(argv)
    if args.train:
        train(Path(args.runs), args.data, args.scale, args.only)
    elif args.rescore:
        for name in _recipes():
            rescore(_dir(Path(args.runs), name), args.data)
    print(plot(Path(args.runs), Path(args.figure)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
