"""Measure how hard the synthetic corpus is, with baselines that need no trained model.

Usage::

    python benchmarks/calibrate_synthetic.py --data artifacts/synthetic [--size default] [--seed 0]
        [--json artifacts/synthetic_calibration.json]

The corpus is generated first when ``--data`` holds none (idempotent). Every number is computed
from the files on disk, read the way the evaluation protocols read them (docs/protocols.md §7):

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
from nortonkit.io import safe_pickle_load  # noqa: E402
from nortonkit.lab.baselines import METHODS, Encoders, _unit, recall_at, youcook  # noqa: E402
from nortonkit.synthetic.config import SyntheticConfig  # noqa: E402
from nortonkit.synthetic.corpus import ensure_corpus, load_manifest  # noqa: E402

WINDOW = 16  # background-kept windows (docs/protocols.md §7.4)


# ------------------------------------------------------------------------------- tasks


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
