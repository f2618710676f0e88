r"""Baselines that need no trained transformer: how hard the synthetic corpus is.

Every number a trained dual encoder gets on the synthetic corpus is read against these five
encoders, fitted and scored on the same files (the video side is the mean-pooled, L2-normalised
features of a clip unless said otherwise):

``untrained``       a fixed random projection of the features vs a bag of random word vectors
                    over bert-base-uncased WordPiece ids: what an untrained dual encoder sees.
``ridge_asr``       a linear map from a bag of WordPiece ids to the mean feature of the caption's
                    ASR span, fitted by ridge regression on the HowTo100M-like training captions:
                    learning from the noisy timestamps, as pre-training does.
``ridge_true``      the same fit on the alignable captions only, with their true step segments
                    (the ground truth): what clean supervision gives a linear model.
``oracle``          the world's true step prototype of the described (action, object); no model
                    can know the text side better.
``linear_infonce``  a linear dual encoder (bag of WordPiece ids -> 256-d, span-mean features
                    -> 256-d) trained with the symmetric InfoNCE of Eq. 8 (cosine, tau = 0.07)
                    on the same ASR pairs, batch 128, Adam: the contrastive objective of
                    pre-training with the simplest encoders.

:func:`youcook_baselines` gives the two numbers the kit's summary compares a trained model
with: synthetic YouCookII clip R@1 and paragraph DTW R@1 (background removed), in percent.
Nothing here is tuned on the evaluation sets.
"""

from __future__ import annotations

import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from ..alignment import dtw, otam
from ..data.howto100m import ShardedFeatures
from ..data.layout import DataRoot
from ..data.text import load_tokenizer, tokenize
from ..io import load_npy, safe_pickle_load
from ..synthetic.config import SyntheticConfig
from ..synthetic.ground_truth import load_ground_truth
from ..synthetic.world import build_world
from ..validation import check_int_at_least, check_positive

__all__ = ["METHODS", "WINDOW", "Encoders", "recall_at", "sequence_scores", "youcook",
           "youcook_baselines", "train_linear_infonce"]

WINDOW = 16  # background-kept windows (docs/protocols.md)
METHODS = ("untrained", "ridge_asr", "ridge_true", "oracle", "linear_infonce")


def _unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float64)
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def recall_at(scores: np.ndarray, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Rows are queries, the true column of row i is i (ties count against the query)."""
    true = scores[np.arange(len(scores)), np.arange(len(scores))][:, None]
    rank = (scores >= true).sum(1) - 1  # 0-based rank, pessimistic on ties
    return {f"R@{k}": round(float((rank < k).mean()) * 100, 1) for k in ks}


class Encoders:
    """The text, clip and frame encoders of :data:`METHODS`, fitted on ``root``'s training split.

    Parameters
    ----------
    root : the corpus.
    seed : seed of the linear InfoNCE model's initialisation and batches.
    config : the corpus's :class:`~nortonkit.synthetic.config.SyntheticConfig` (its world gives
        the oracle).
    infonce_steps : updates of the linear InfoNCE model (batch 128).
    """

    def __init__(self, root: DataRoot, seed: int, config: SyntheticConfig,
                 infonce_steps: int = 300):
        self.tok = load_tokenizer()
        self.world = build_world(config)
        rng = np.random.default_rng(12345)
        self.dim = config.dim
        self.proj = _unit(rng.standard_normal((config.dim, 256)).T).T  # (D, 256)
        self.word_vecs: dict[int, np.ndarray] = {}
        self.word_rng = np.random.default_rng(54321)
        self.pairs = {name: self._pairs(root, name) for name in ("ridge_asr", "ridge_true")}
        self.ridge = {name: self._fit_ridge(*self.pairs[name]) for name in self.pairs}
        self.infonce = train_linear_infonce(*self.pairs["ridge_asr"], self.tok, seed=seed,
                                            steps=infonce_steps)

    # bag of WordPiece ids
    def _bow(self, texts: list[str], vocab: dict[int, int]) -> np.ndarray:
        out = np.zeros((len(texts), len(vocab) + 1))
        for i, ids in enumerate(tokenize(texts, self.tok)):
            for t in ids:
                out[i, vocab.get(t, len(vocab))] += 1
        out[:, -1] = 1.0  # bias
        return out

    def _pairs(self, root: DataRoot, name: str) -> tuple[list[str], np.ndarray]:
        """(captions, mean feature of their ASR span or true segment) of the training split."""
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
        return texts, np.stack(targets)

    def _fit_ridge(self, texts: list[str], targets: np.ndarray
                   ) -> tuple[dict[int, int], np.ndarray]:
        vocab: dict[int, int] = {}
        for ids in tokenize(texts, self.tok):
            for t in ids:
                vocab.setdefault(t, len(vocab))
        X, Y = self._bow(texts, vocab), targets
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
        if method == "linear_infonce":
            return self.infonce.text(texts)
        vocab, W = self.ridge[method]
        return _unit(self._bow(texts, vocab) @ W)

    def video(self, method: str, clips: list[np.ndarray]) -> np.ndarray:
        pooled = _unit(np.stack([np.asarray(c, np.float64).mean(0) for c in clips]))
        if method == "linear_infonce":
            return self.infonce.video(pooled)
        return _unit(pooled @ self.proj) if method == "untrained" else pooled

    def frames(self, method: str, x: np.ndarray) -> np.ndarray:
        x = _unit(np.asarray(x, np.float64))
        if method == "linear_infonce":
            return self.infonce.video(x)
        return _unit(x @ self.proj) if method == "untrained" else x




class LinearInfoNCE:
    """A trained linear dual encoder (see :func:`train_linear_infonce`)."""

    def __init__(self, vocab: dict[int, int], text_w: np.ndarray, video_w: np.ndarray, tok):
        self.vocab, self.text_w, self.video_w, self.tok = vocab, text_w, video_w, tok

    def text(self, texts: list[str]) -> np.ndarray:
        """shape (N, 256), L2-normalised: the mean of the caption's word vectors, projected."""
        out = np.zeros((len(texts), self.text_w.shape[1]))
        unk = len(self.vocab)
        for i, ids in enumerate(tokenize(texts, self.tok)):
            rows = [self.vocab.get(t, unk) for t in ids] or [unk]
            out[i] = self.text_w[rows].sum(0)
        return _unit(out)

    def video(self, x: np.ndarray) -> np.ndarray:
        """shape (..., 256), L2-normalised: ``x`` (..., D) projected."""
        return _unit(np.asarray(x, np.float64) @ self.video_w)


def train_linear_infonce(texts: list[str], targets: np.ndarray, tok, seed: int = 0,
                         steps: int = 300, batch_size: int = 128, dim: int = 256,
                         lr: float = 1e-2, temperature: float = 0.07) -> LinearInfoNCE:
    r"""Fit a linear dual encoder with the symmetric InfoNCE of Eq. 8 on (caption, clip) pairs.

    Parameters
    ----------
    texts : N captions.
    targets : shape (N, D), the mean feature of each caption's clip (its ASR span).
    tok : the WordPiece tokenizer.
    seed : initialisation and batch order.
    steps, batch_size, lr : Adam updates on random batches of ``batch_size`` pairs.
    dim : width of the joint space.
    temperature : fixed tau of the cosine logits.

    Returns
    -------
    LinearInfoNCE
        text: bag of WordPiece ids (sum of one vector per id, unseen ids share one) -> ``dim``;
        video: a linear map D -> ``dim``.

    Notes
    -----
    Norton Eq. 8 with beta = 0 (VideoCLIP's loss): ``L = -1/B sum_i [log softmax_j(s_ij /
    tau)_i + log softmax_j(s_ji / tau)_i]`` with ``s`` the cosine of the projected pair.

    Examples
    --------
    >>> from nortonkit.data.text import load_tokenizer
    >>> rng = np.random.default_rng(0)
    >>> m = train_linear_infonce(["cut onion", "fry egg"] * 8, rng.standard_normal((16, 4)),
    ...                          load_tokenizer(), steps=3, batch_size=4, dim=8)
    >>> m.text(["cut egg"]).shape, m.video(np.ones((2, 4))).shape
    ((1, 8), (2, 8))
    """
    check_int_at_least("steps", steps, 1)
    check_int_at_least("batch_size", batch_size, 2)
    check_positive("lr", lr)
    targets = np.asarray(targets, np.float32)
    if targets.ndim != 2 or len(targets) != len(texts):
        raise ValueError(f"targets: expected shape (N, D) with N = len(texts) = {len(texts)}, "
                         f"got {targets.shape}")
    vocab: dict[int, int] = {}
    ids = tokenize(texts, tok)
    for row in ids:
        for t in row:
            vocab.setdefault(t, len(vocab))
    flat = [[vocab[t] for t in row] or [len(vocab)] for row in ids]
    gen = torch.Generator().manual_seed(seed)
    text_w = torch.nn.Parameter(torch.randn(len(vocab) + 1, dim, generator=gen) * 0.02)
    video_w = torch.nn.Parameter(torch.randn(targets.shape[1], dim, generator=gen)
                                 / targets.shape[1] ** 0.5)
    opt = torch.optim.Adam([text_w, video_w], lr=lr)
    feats = torch.from_numpy(targets)
    bag = torch.nn.functional.embedding_bag
    for _ in range(steps):
        idx = torch.randperm(len(texts), generator=gen)[:batch_size]
        offsets = torch.tensor([0] + [len(flat[i]) for i in idx.tolist()]).cumsum(0)[:-1]
        words = torch.tensor([w for i in idx.tolist() for w in flat[i]])
        t = F.normalize(bag(words, text_w, offsets, mode="sum"), dim=-1)  # (B, dim)
        v = F.normalize(feats[idx] @ video_w, dim=-1)  # (B, dim)
        logits = t @ v.T / temperature  # (B, B)
        target = torch.arange(len(idx))
        loss = F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return LinearInfoNCE(vocab, text_w.detach().double().numpy(),
                         video_w.detach().double().numpy(), tok)


def sequence_scores(text: dict, clips: dict, vids: list[str], select: bool,
                    with_otam: bool = True) -> dict:
    """DTW and OTAM scores (higher = better) of every (paragraph, video) pair.

    ``with_otam=False`` returns the DTW scores alone (``{"dtw": ...}``).

    Cost ``1 - cosine`` (TempCLR's offset); blocks are scaled as the official metrics do
    (DTW by ``1 / (rows * cols)``, OTAM by ``1 / max(rows, cols)`` with background kept and
    ``1 / (rows * cols)`` without); with background kept only the ``int(1.3 * n_captions)``
    windows closest to some caption are kept, in time order (docs/protocols.md). The
    recurrences are the corrected ones of :mod:`nortonkit.alignment`; OTAM adds both
    orientations as the official metric does.
    """
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
    n = len(vids)
    if not with_otam:
        return {"dtw": -d_cost.reshape(n, n).numpy()}
    o_cost = (otam(cost, row_mask, col_mask).cost
              + otam(cost.transpose(1, 2), col_mask, row_mask).cost)
    o_cost = o_cost / (torch.maximum(r, c).double() if select else prod)
    return {"dtw": -d_cost.reshape(n, n).numpy(), "otam": -o_cost.reshape(n, n).numpy()}


def youcook(root: DataRoot, enc: Encoders) -> dict[str, dict[str, dict[str, float]]]:
    """YouCookII paragraph retrieval (Cap. Avg., DTW, OTAM; background kept / removed) and clip
    retrieval (text -> clip over the annotated segments) of every method, R@1/5/10 in percent."""
    anno = json.loads(root.youcook_annotations.read_text())["database"]
    records = safe_pickle_load(root.youcook_val_pkl)
    vids = list(dict.fromkeys(r["video_id"] for r in records))
    feats = {v: load_npy(root.youcook_features / f"{v}.npy") for v in vids}
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


def youcook_baselines(root: DataRoot | str | os.PathLike, size: str = "default", seed: int = 0,
                      infonce_steps: int = 300) -> dict[str, dict[str, float]]:
    """``{"youcook_clip_r1" | "youcook_paragraph_dtw_r1": {method: percent}}`` for the summary.

    >>> import tempfile
    >>> from nortonkit.synthetic.corpus import ensure_corpus
    >>> root = ensure_corpus(tempfile.mkdtemp(), "smoke")
    >>> out = youcook_baselines(root, "smoke", infonce_steps=5)
    >>> sorted(out), sorted(out["youcook_clip_r1"]) == sorted(METHODS)
    (['youcook_clip_r1', 'youcook_paragraph_dtw_r1'], True)
    """
    root = root if isinstance(root, DataRoot) else DataRoot(root)
    enc = Encoders(root, seed, SyntheticConfig.preset(size, seed=seed), infonce_steps)
    res = youcook(root, enc)
    return {"youcook_clip_r1": {m: res[m]["clip_retrieval"]["R@1"] for m in METHODS},
            "youcook_paragraph_dtw_r1": {m: res[m]["paragraph_bg_removed_dtw"]["R@1"]
                                         for m in METHODS}}
