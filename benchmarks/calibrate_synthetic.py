"""Measure how hard the synthetic corpus is, with baselines that need no trained model.

Usage::

    python benchmarks/calibrate_synthetic.py --data artifacts/synthetic [--size default] [--seed 0]
        [--json artifacts/synthetic_calibration.json]

The corpus is generated first when ``--data`` holds none (idempotent). Every number is computed
from the files on disk, read the way the evaluation protocols read them (official_impl.md §7):

* YouCookII video-paragraph retrieval, background kept (non-overlapping 16 s windows) and
  background removed (annotated segments), Cap. Avg.: per caption the best clip of the candidate
  video, averaged over the paragraph's captions; R@1/5/10 over the validation videos.
* YouCookII clip retrieval (text -> clip), MSR-VTT retrieval (first 32 s), MSR-VTT
  multiple-choice QA (first 16 s), HTM-Align recall (argmax second inside the true segment),
  COIN zero-shot frame accuracy (label threshold = largest off-diagonal label similarity).

Encoders (video side: mean-pooled features, L2-normalised; text side as named):

``untrained``   a fixed random projection of the features vs a bag of random word vectors over
                bert-base-uncased WordPiece ids: what an untrained dual encoder sees (chance).
``ridge_asr``   a linear map from a bag of WordPiece ids to the mean feature of the ASR span,
                fitted by ridge regression on the HowTo100M-like training captions: learning
                from the noisy timestamps, as pre-training does.
``ridge_true``  the same fit on the alignable captions only, with their true step segments
                (the ground truth): what clean supervision would give a linear model.
``oracle``      the world's true step prototype of the described (action, object); no model can
                know the text side better. An upper bound for any text encoder.

The generator's knobs are never tuned for any of these methods; the numbers are reported as
measured (data_recipes/SYNTHETIC.md).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nortonkit.data.layout import DataRoot  # noqa: E402
from nortonkit.data.synthetic import (  # noqa: E402
    SyntheticConfig,
    build_world,
    ensure_corpus,
    load_ground_truth,
    load_manifest,
)
from nortonkit.data.text import load_tokenizer, tokenize  # noqa: E402
from nortonkit.io import safe_pickle_load  # noqa: E402

WINDOW = 16  # background-kept windows (official_impl.md §7.4)


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def recall_at(scores: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Rows are queries, the true column of row i is i (ties count against the query)."""
    true = scores[np.arange(len(scores)), np.arange(len(scores))][:, None]
    rank = (scores >= true).sum(1) - 1  # 0-based rank, pessimistic on ties
    return {f"R@{k}": round(float((rank < k).mean()) * 100, 1) for k in ks}


# ------------------------------------------------------------------------------- encoders


class Encoders:
    def __init__(self, root: DataRoot, seed: int, config: SyntheticConfig):
        self.tok = load_tokenizer()
        self.world = build_world(config)
        rng = np.random.default_rng(12345)
        self.dim = config.dim
        self.proj = _unit(rng.standard_normal((config.dim, 256)).T).T  # (D, 256)
        self.word_vecs: dict[int, np.ndarray] = {}
        self.word_rng = np.random.default_rng(54321)
        self.ridge = {name: self._fit_ridge(root, name) for name in ("ridge_asr", "ridge_true")}

    # bag of WordPiece ids
    def _bow(self, texts: list[str], vocab: dict[int, int]) -> np.ndarray:
        out = np.zeros((len(texts), len(vocab) + 1))
        for i, ids in enumerate(tokenize(texts, self.tok)):
            for t in ids:
                out[i, vocab.get(t, len(vocab))] += 1
        out[:, -1] = 1.0  # bias
        return out

    def _fit_ridge(self, root: DataRoot, name: str) -> tuple[dict[int, int], np.ndarray]:
        from nortonkit.data.howto100m import ShardedFeatures

        captions = json.loads(root.how2_captions_json.read_text())
        gt = load_ground_truth(root.root, "how2")
        feats = ShardedFeatures(root.how2_feature_shards, "train")
        texts, targets = [], []
        for vid in feats:
            x = np.asarray(feats[vid], np.float32)
            cap, g = captions[vid], gt[vid]["sentences"]
            for j, text in enumerate(cap["text"]):
                if name == "ridge_asr":
                    s, e = int(np.floor(cap["start"][j])), int(np.ceil(cap["end"][j]))
                else:
                    if g["step"][j] < 0:
                        continue
                    s, e = g["segment"][j]
                e = max(e, s + 1)
                texts.append(text)
                targets.append(x[s:e].mean(0))
        vocab: dict[int, int] = {}
        for ids in tokenize(texts, self.tok):
            for t in ids:
                vocab.setdefault(t, len(vocab))
        X, Y = self._bow(texts, vocab), np.stack(targets)
        lam = 1.0
        W = np.linalg.solve(X.T @ X + lam * np.eye(X.shape[1]), X.T @ Y)
        return vocab, W

    def text(self, method: str, texts: list[str]) -> np.ndarray:
        if method == "oracle":
            return _unit(np.stack([self.world.embed_text(t) for t in texts]))
        if method == "untrained":
            rows = []
            for ids in tokenize(texts, self.tok):
                vs = []
                for t in ids:
                    if t not in self.word_vecs:
                        self.word_vecs[t] = self.word_rng.standard_normal(256)
                    vs.append(self.word_vecs[t])
                rows.append(np.mean(vs, 0) if vs else np.zeros(256))
            return _unit(np.stack(rows))
        vocab, W = self.ridge[method]
        return _unit(self._bow(texts, vocab) @ W)

    def video(self, method: str, clips: list[np.ndarray]) -> np.ndarray:
        pooled = _unit(np.stack([np.asarray(c, np.float64).mean(0) for c in clips]))
        return _unit(pooled @ self.proj) if method == "untrained" else pooled

    def frames(self, method: str, x: np.ndarray) -> np.ndarray:
        x = _unit(np.asarray(x, np.float64))
        return _unit(x @ self.proj) if method == "untrained" else x


METHODS = ("untrained", "ridge_asr", "ridge_true", "oracle")


# ------------------------------------------------------------------------------- tasks


def sequence_scores(text: dict, clips: dict, vids: list[str], select: bool) -> dict:
    """DTW and OTAM scores (higher = better) of every (paragraph, video) pair.

    Cost ``1 - cosine`` (TempCLR's offset); blocks are scaled as the official metrics do
    (DTW by ``1 / (rows * cols)``, OTAM by ``1 / max(rows, cols)`` with background kept and
    ``1 / (rows * cols)`` without); with background kept only the ``int(1.3 * n_captions)``
    windows closest to some caption are kept, in time order (official_impl.md §7.3-7.4). The
    recurrences are the corrected ones of :mod:`nortonkit.alignment`; OTAM adds both
    orientations as the official metric does.
    """
    import torch

    from nortonkit.alignment import dtw, otam

    blocks, rows, cols = [], [], []
    for q in vids:
        for v in vids:
            d = 1.0 - text[q] @ clips[v].T  # (captions, clips)
            if select:
                keep = max(1, int(1.3 * len(d)))
                d = d[:, np.sort(np.argsort(d.min(0), kind="stable")[:keep])]
            blocks.append(d)
            rows.append(d.shape[0])
            cols.append(d.shape[1])
    M, N = max(rows), max(cols)
    cost = torch.zeros(len(blocks), M, N, dtype=torch.float64)
    for b, d in enumerate(blocks):
        cost[b, : d.shape[0], : d.shape[1]] = torch.from_numpy(d)
    r = torch.tensor(rows)
    c = torch.tensor(cols)
    row_mask = torch.arange(M)[None] < r[:, None]
    col_mask = torch.arange(N)[None] < c[:, None]
    prod = (r * c).double()
    d_cost = dtw(cost, row_mask, col_mask).cost / prod
    o_cost = (otam(cost, row_mask, col_mask).cost
              + otam(cost.transpose(1, 2), col_mask, row_mask).cost)
    o_cost = o_cost / (torch.maximum(r, c).double() if select else prod)
    n = len(vids)
    return {"dtw": -d_cost.reshape(n, n).numpy(), "otam": -o_cost.reshape(n, n).numpy()}


def youcook(root: DataRoot, enc: Encoders) -> dict[str, dict[str, dict[str, float]]]:
    anno = json.loads(root.youcook_annotations.read_text())["database"]
    records = safe_pickle_load(root.youcook_val_pkl)
    vids = list(dict.fromkeys(r["video_id"] for r in records))
    feats = {v: np.load(root.youcook_features / f"{v}.npy") for v in vids}
    sents = {v: [a["sentence"] for a in anno[v]["annotations"]] for v in vids}
    segs = {v: [a["segment"] for a in anno[v]["annotations"]] for v in vids}
    out: dict[str, dict[str, dict[str, float]]] = {}
    for m in METHODS:
        res: dict[str, dict[str, float]] = {}
        text = {v: enc.text(m, sents[v]) for v in vids}
        clips_bg = {v: enc.video(m, [feats[v][s: s + WINDOW]
                                     for s in range(0, len(feats[v]), WINDOW)]) for v in vids}
        clips_nobg = {v: enc.video(m, [feats[v][s:max(e, s + 1)] for s, e in segs[v]])
                      for v in vids}
        for name, clips in (("paragraph_bg_kept_capavg", clips_bg),
                            ("paragraph_bg_removed_capavg", clips_nobg)):
            scores = np.array([[(text[q] @ clips[v].T).max(1).mean() for v in vids]
                               for q in vids])
            res[name] = recall_at(scores)
        for bg, clips in (("kept", clips_bg), ("removed", clips_nobg)):
            for measure, scores in sequence_scores(text, clips, vids, bg == "kept").items():
                res[f"paragraph_bg_{bg}_{measure}"] = recall_at(scores)
        all_text = np.concatenate([text[v] for v in vids])
        all_clip = np.concatenate([clips_nobg[v] for v in vids])
        res["clip_retrieval"] = recall_at(all_text @ all_clip.T)
        out[m] = res
    return out


def msrvtt(root: DataRoot, enc: Encoders) -> dict[str, dict[str, dict[str, float]]]:
    import csv

    with open(root.msrvtt_test_csv, newline="") as f:
        rows = list(csv.DictReader(f))
    with open(root.msrvtt_qa_csv, newline="") as f:
        qa = list(csv.DictReader(f, delimiter="\t"))
    feats = {r["video_id"]: np.load(root.msrvtt_features / f"{r['video_id']}.npy") for r in rows}
    out = {}
    for m in METHODS:
        t = enc.text(m, [r["sentence"] for r in rows])
        v = enc.video(m, [feats[r["video_id"]][:32] for r in rows])
        res = {"retrieval": recall_at(t @ v.T)}
        correct = 0
        for q in qa:
            vid = q["vid_key"].replace("msr", "video")
            cand = enc.text(m, [q[f"a{i}"] for i in range(1, 6)])
            vv = enc.video(m, [feats[vid][:16]])[0]
            correct += int(np.argmax(cand @ vv) == int(q["answer"]))
        res["qa"] = {"accuracy": round(100 * correct / len(qa), 1)}
        out[m] = res
    return out


def htm_align(root: DataRoot, enc: Encoders) -> dict[str, dict[str, dict[str, float]]]:
    anno = json.loads(root.htm_align_json.read_text())
    out = {}
    for m in METHODS:
        hits = total = 0
        for vid, rows in anno.items():
            x = enc.frames(m, np.load(root.htm_align_features / f"{vid}.npy"))
            texts = [r[3] for r in rows if r[0] == 1]
            if not texts:
                continue
            best = (enc.text(m, texts) @ x.T).argmax(1)
            for b, r in zip(best, (r for r in rows if r[0] == 1)):
                hits += int(np.floor(r[1]) <= b <= np.ceil(r[2]))
                total += 1
        out[m] = {"alignment": {"recall": round(100 * hits / max(total, 1), 1)}}
    return out


def coin(root: DataRoot, enc: Encoders) -> dict[str, dict[str, dict[str, float]]]:
    db = json.loads(root.coin_json.read_text())["database"]
    test = {v: d for v, d in db.items() if d["subset"] == "testing"}
    labels = {}
    for d in test.values():
        for a in d["annotation"]:
            labels[int(a["id"])] = a["label"]
    ids = sorted(labels)
    out = {}
    for m in METHODS:
        L = enc.text(m, [labels[i] for i in ids])
        ll = L @ L.T
        np.fill_diagonal(ll, -np.inf)
        lbd = ll.max()
        correct = total = 0
        for vid, d in test.items():
            x = enc.frames(m, np.load(root.coin_features / f"{vid}.npy"))
            target = np.zeros(len(x), int)
            for a in d["annotation"]:
                target[int(np.floor(a["segment"][0])): int(np.ceil(a["segment"][1]))] = int(a["id"])
            s = x @ L.T
            pred = np.where(s.max(1) > lbd, np.asarray(ids)[s.argmax(1)], 0)
            correct += int((pred == target).sum())
            total += len(x)
        out[m] = {"segmentation_zero_shot": {"frame_acc": round(100 * correct / total, 1)}}
    # supervised stand-in for the fine-tuned protocol: nearest class mean of training seconds
    feats = {v: np.load(root.coin_features / f"{v}.npy") for v in db}

    def targets(d: dict, n: int) -> np.ndarray:
        t = np.zeros(n, int)
        for a in d["annotation"]:
            t[int(np.floor(a["segment"][0])): int(np.ceil(a["segment"][1]))] = int(a["id"])
        return t

    for m in ("untrained", "oracle"):  # raw features vs a random projection of them
        xs, ts = [], []
        for v, d in db.items():
            if d["subset"] == "training":
                xs.append(enc.frames(m, feats[v]))
                ts.append(targets(d, len(feats[v])))
        x, t = np.concatenate(xs), np.concatenate(ts)
        classes = np.unique(t)
        means = _unit(np.stack([x[t == c].mean(0) for c in classes]))
        correct = total = 0
        for v, d in test.items():
            pred = classes[(enc.frames(m, feats[v]) @ means.T).argmax(1)]
            correct += int((pred == targets(d, len(pred))).sum())
            total += len(pred)
        key = "features" if m == "oracle" else "untrained"
        acc = round(100 * correct / total, 1)
        out.setdefault(key, {})["nearest_class_mean"] = {"frame_acc": acc}
    return out


def chance(root: DataRoot) -> dict[str, float]:
    records = safe_pickle_load(root.youcook_val_pkl)
    n_vid = len({r["video_id"] for r in records})
    with open(root.msrvtt_test_csv) as f:
        n_vtt = sum(1 for _ in f) - 1
    return {"paragraph_R@1": round(100 / n_vid, 2),
            "youcook_clip_R@1": round(100 / len(records), 2),
            "msrvtt_R@1": round(100 / n_vtt, 2), "qa_accuracy": 20.0}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="artifacts/synthetic",
                    help="corpus folder (generated if absent)")
    ap.add_argument("--size", default="default", choices=("default", "smoke"))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", default=None, help="write the results here as JSON")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    root = ensure_corpus(args.data, args.size, seed=args.seed, progress=True)
    manifest = load_manifest(root.root)
    cfg = SyntheticConfig.preset(args.size, seed=args.seed)
    enc = Encoders(root, args.seed, cfg)
    results: dict = {"config": {"size": args.size, "seed": args.seed},
                     "counts": manifest["counts"], "chance": chance(root)}
    for name, fn in (("youcook", youcook), ("msrvtt", msrvtt), ("htm_align", htm_align),
                     ("coin", coin)):
        results[name] = fn(root, enc)
    results["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(results, indent=1))
    if args.json:
        from nortonkit.io import atomic_write

        with atomic_write(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return results


if __name__ == "__main__":
    main()
