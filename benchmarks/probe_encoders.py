"""Which side of a dual encoder loses the step: a nearest-class-mean probe on the synthetic corpus.

Usage::

    python benchmarks/probe_encoders.py --data artifacts/synthetic RUN/checkpoint_last ...

The synthetic YouCookII-like clips carry their true step (ground truth). For each checkpoint the
pooled clip vectors (video side) and caption vectors (text side) are probed: the class means of
the steps are taken on the even-numbered videos, and every clip of the odd-numbered videos whose
step occurs there is assigned to the nearest mean (cosine, after centring). References without
training: the mean-pooled frame features, a fixed random 256-d projection of them, and a bag of
WordPiece ids; and the linear InfoNCE dual encoder of ``nortonkit.lab.baselines`` (300 updates on
the
same ASR pairs), whose video side is a learned 256-d projection of the same mean. Accuracy in
percent; chance is about 1 / (number of steps). A side far below its reference has learned
features that do not name the step, whatever the retrieval numbers say.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nortonkit.checkpoint import load_checkpoint  # noqa: E402
from nortonkit.data.layout import DataRoot  # noqa: E402
from nortonkit.data.text import encode_texts, load_tokenizer  # noqa: E402
from nortonkit.data.youcook import load_youcook_paragraphs  # noqa: E402
from nortonkit.lab.baselines import Encoders  # noqa: E402
from nortonkit.lab.robustness import encode_clips  # noqa: E402
from nortonkit.synthetic.config import SyntheticConfig  # noqa: E402
from nortonkit.synthetic.ground_truth import load_ground_truth  # noqa: E402


def ncm_accuracy(x: torch.Tensor, labels: torch.Tensor, test: torch.Tensor) -> float:
    """Nearest-class-mean accuracy (%) of rows ``test`` with class means of rows ``~test``.

    ``x`` (N, H) is centred and L2-normalised; test rows whose class has no training row are
    left out.

    >>> x = torch.tensor([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
    >>> ncm_accuracy(x, torch.tensor([0, 0, 1, 1]), torch.tensor([False, True, False, True]))
    100.0
    """
    x = F.normalize(x.float() - x.float().mean(0), dim=-1)
    train = ~test
    classes = labels[train].unique()
    means = F.normalize(torch.stack([x[train][labels[train] == k].mean(0) for k in classes]),
                        dim=-1)  # (C, H)
    known = torch.isin(labels[test], classes)
    pred = classes[(x[test][known] @ means.T).argmax(1)]
    return round(100.0 * float((pred == labels[test][known]).float().mean()), 1)


def probe(data: str, checkpoints: list[str], size: str = "default"
          ) -> list[tuple[str, str, float]]:
    """``(encoder, side, accuracy)`` rows: the references, then each checkpoint's two sides."""
    par = load_youcook_paragraphs(data, max_video_len=16)
    clips = par.clips
    truth = load_ground_truth(data, "youcook")
    labels, test = [], []
    for i, (vid, block) in enumerate(zip(par.video_ids, par.blocks)):
        steps = [s[0] for s in truth[vid]["steps"]]
        if len(steps) != len(block):
            raise ValueError(f"{vid}: expected one annotated step per clip, got {len(steps)} "
                             f"steps for {len(block)} clips")
        labels += steps
        test += [i % 2 == 1] * len(block)
    labels, test = torch.tensor(labels), torch.tensor(test)
    m = clips.video_mask[..., None].float()
    feats = (clips.video.float() * m).sum(1) / m.sum(1).clamp_min(1)  # (N, D)
    gen = torch.Generator().manual_seed(0)
    batch = encode_texts(list(clips.captions), load_tokenizer(), max_tokens=30)
    bow = torch.zeros(len(labels), int(batch.input_ids.max()) + 1)
    bow.scatter_add_(1, batch.input_ids, batch.attention_mask.float())
    bow[:, [0, 101, 102]] = 0  # PAD, CLS, SEP
    rows = [("mean frame features", "video", ncm_accuracy(feats, labels, test)),
            ("random 256-d projection of them", "video",
             ncm_accuracy(feats @ torch.randn(feats.shape[1], 256, generator=gen), labels, test)),
            ("bag of WordPiece ids", "text", ncm_accuracy(bow, labels, test))]
    linear = Encoders(DataRoot(data), 0, SyntheticConfig.preset(size, seed=0)).infonce
    rows += [("linear InfoNCE (baselines)", "video",
              ncm_accuracy(torch.from_numpy(linear.video(feats.double().numpy())), labels, test)),
             ("linear InfoNCE (baselines)", "text",
              ncm_accuracy(torch.from_numpy(linear.text(list(clips.captions))), labels, test))]
    for path in checkpoints:
        model = load_checkpoint(path).model.eval()
        with torch.no_grad():
            video = encode_clips(model, clips.video, clips.video_mask)
            text = model.encode_text(batch.input_ids, batch.attention_mask).pooled
        name = Path(path).resolve().parent.name
        rows += [(name, "video", ncm_accuracy(video, labels, test)),
                 (name, "text", ncm_accuracy(text, labels, test))]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoints", nargs="*", help="checkpoint folders (nortonkit runs)")
    ap.add_argument("--data", default="artifacts/synthetic", help="a synthetic data root")
    ap.add_argument("--size", default="default", help="its size (the world of the baselines)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    rows = probe(args.data, args.checkpoints, args.size)
    print("| encoder | side | step accuracy, nearest class mean (%) |\n|---|---|---:|")
    for name, side, acc in rows:
        print(f"| {name} | {side} | {acc:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
