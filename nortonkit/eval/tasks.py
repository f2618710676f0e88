r"""Zero-shot evaluators of Norton's tables: encoding, sequence scores, retrieval, QA, COIN, HTM.

Each ``eval_*`` function takes a model, a :class:`~nortonkit.data.layout.DataRoot` and plain
keyword options and returns a list of result rows (dicts) with the columns of
:data:`nortonkit.lab.evaluate.COLUMNS`; :func:`nortonkit.lab.evaluate.run_task` adds the labels and
builds the DataFrame. Every number is a percentage (recalls, accuracies) except median ranks,
AUC (percent too) and times.

Variants. ``"corrected"`` rows use nortonkit's measures (:mod:`nortonkit.alignment`) and
pessimistic tie handling (:mod:`nortonkit.metrics`); ``"official-compatible"`` rows reproduce
the released evaluation (:mod:`nortonkit.compat`: padding quirks, the OTAM sign bug, the
background-kept crop; ties broken as the official ``argsort`` does). Cap. Avg. has no quirk:
its two variants differ only in tie handling. The two transport measures, ``"OT (plain)"``
(entropic OT with uniform marginals on the pooled dot products) and ``"OT (Norton bucket)"``
(Norton's transport distance with the alignable prompt bucket, Eq. 6), have no official
counterpart (the released metric prints a placeholder 0 for "OT", ``docs/protocols.md`` §7.3)
and are reported as corrected only.

Encoding follows the official evaluation (``docs/protocols.md`` §3.2-3.3, §7): sentences are cut
to ``max_len - max_video_len - 3`` tokens (:func:`text_token_budget`: 61 with 32-s clips, 77 for
MSR-VTT QA's 16 s); the video CLS is masked out of attention in the background-kept and COIN
paths and attended elsewhere.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .. import compat
from ..alignment import cap_avg, dtw, otam
from ..data.text import encode_texts, load_tokenizer
from ..encoders import DualEncoder
from ..metrics import (
    alignment_recall,
    choice_accuracy,
    frame_accuracy,
    paragraph_recall,
    retrieval_metrics,
    roc_auc,
)
from ..transport import bucket_sinkhorn, bucket_value_from_quantile, sinkhorn
from ..validation import (
    check_choice,
    check_finite,
    check_int_at_least,
    check_mask,
    check_open_unit,
    check_positive,
    check_tensor,
)

__all__ = [
    "MEASURES",
    "VARIANTS",
    "EVAL_MAX_LEN",
    "ParagraphScores",
    "text_token_budget",
    "encode_clips",
    "encode_captions",
    "pad_groups",
    "aligned_bucket_value",
    "paragraph_scores",
    "paragraph_rows",
    "retrieval_rows",
    "eval_youcook_paragraph",
    "eval_youcook_clip",
    "eval_msrvtt_retrieval",
    "qa_scores",
    "eval_msrvtt_qa",
    "coin_predict",
    "coin_zero_shot_logits",
    "eval_coin_zero_shot",
    "htm_align_scores",
    "eval_htm_align",
    "split_validation",
]

#: Video-paragraph measures. "OT (plain)": entropic OT with uniform marginals on the pooled dot
#: products; "OT (Norton bucket)": Norton's transport distance with the prompt bucket (Eq. 6).
MEASURES: tuple[str, ...] = ("Cap. Avg.", "DTW", "OTAM", "OT (plain)", "OT (Norton bucket)")
VARIANTS: tuple[str, ...] = ("corrected", "official-compatible")
#: ``max_len`` of every evaluation yaml (``docs/protocols.md`` §8): text + video token budget.
EVAL_MAX_LEN = 96
_KS = (1, 5, 10)
_RENAMED = {"OT": "OT (plain)"}


def text_token_budget(max_video_len: int = 32, max_len: int = EVAL_MAX_LEN) -> int:
    """Word pieces kept per sentence: ``max_len - max_video_len - 3`` (CLS and two SEPs).

    Parameters
    ----------
    max_video_len : the yaml's ``max_video_len`` (32 for retrieval, COIN and HTM-Align; 16 for
        MSR-VTT QA).
    max_len : the yaml's ``max_len`` (96 in every evaluation yaml).

    Returns
    -------
    int

    Notes
    -----
    ``docs/protocols.md`` §3.2: the aligner truncates text to ``max_len - max_video_len - 3``
    tokens; §7.6: the QA yamls use ``max_video_len: 16``, so QA candidates keep 77 tokens.

    Examples
    --------
    >>> text_token_budget(32), text_token_budget(16)
    (61, 77)
    """
    check_int_at_least("max_video_len", max_video_len, 1)
    check_int_at_least("max_len", max_len, max_video_len + 4)
    return max_len - max_video_len - 3


# ---------------------------------------------------------------------------------------------
# encoding


@torch.no_grad()
def encode_clips(
    model: DualEncoder,
    video: Tensor,
    video_mask: Tensor,
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    cls_attend: bool | None = None,
) -> Tensor:
    """Pooled clip vectors ``(N, H)`` (float32, CPU) of ``video (N, V, D)`` in batches.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> encode_clips(m, torch.randn(3, 4, 512), torch.ones(3, 4, dtype=torch.bool)).shape
    torch.Size([3, 64])
    """
    check_int_at_least("batch_size", batch_size, 1)
    model.eval()
    out = []
    for i in range(0, len(video), batch_size):
        v = video[i : i + batch_size].to(device)
        m = video_mask[i : i + batch_size].to(device)
        out.append(model.encode_video(v, m, cls_attend).pooled.float().cpu())
    if not out:
        return torch.empty(0, model.config.hidden_size)
    return torch.cat(out)


@torch.no_grad()
def encode_captions(
    model: DualEncoder,
    texts: Sequence[str],
    device: str | torch.device = "cpu",
    batch_size: int = 256,
    max_tokens: int = 61,
    tokenizer: Any = None,
) -> Tensor:
    """Pooled caption vectors ``(N, H)`` (float32, CPU), tokenised on the fly.

    ``max_tokens`` word pieces are kept per sentence: 61 by default, the budget of the 32-s
    yamls (:func:`text_token_budget`); MSR-VTT QA passes 77.

    Examples
    --------
    >>> from nortonkit.encoders import EncoderConfig
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> encode_captions(m, ["whisk the eggs", "fry"]).shape
    torch.Size([2, 64])
    """
    check_int_at_least("batch_size", batch_size, 1)
    model.eval()
    tok = tokenizer if tokenizer is not None else load_tokenizer()
    out = []
    for i in range(0, len(texts), batch_size):
        batch = encode_texts(list(texts[i : i + batch_size]), tok, max_tokens)
        out.append(
            model.encode_text(batch.input_ids.to(device), batch.attention_mask.to(device))
            .pooled.float().cpu()
        )
    if not out:
        return torch.empty(0, model.config.hidden_size)
    return torch.cat(out)


def pad_groups(vectors: Tensor, groups: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
    """Gather ``vectors (N, H)`` into one padded row per group: ``(G, L, H)`` and mask ``(G, L)``.

    Examples
    --------
    >>> x, m = pad_groups(torch.arange(6.0).reshape(3, 2), [torch.tensor([2, 0]),
    ...                                                      torch.tensor([1])])
    >>> x[:, :, 0].tolist(), m.tolist()
    ([[4.0, 0.0], [2.0, 0.0]], [[True, True], [True, False]])
    """
    check_tensor("vectors", vectors, ndim=2)
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("groups: expected non-empty index groups")
    lengths = torch.tensor([len(g) for g in groups])
    big = int(lengths.max())
    out = vectors.new_zeros(len(groups), big, vectors.shape[1])
    for i, g in enumerate(groups):
        out[i, : len(g)] = vectors[g]
    mask = torch.arange(big)[None, :] < lengths[:, None]
    return out, mask


# ---------------------------------------------------------------------------------------------
# video-paragraph sequence scores


class ParagraphScores(NamedTuple):
    """Paragraph x video score matrices of :func:`paragraph_scores`.

    Attributes
    ----------
    scores : dict mapping ``(measure, variant)`` to a (G, G) tensor, rows = query paragraphs,
        columns = candidate videos, higher = better; the ground truth is the diagonal.
    max_text_len, max_video_len : the official ``maxT`` / ``maxV`` (``max_len`` twice when the
        background is removed).
    """

    scores: dict[tuple[str, str], Tensor]
    max_text_len: int
    max_video_len: int


def _transport_score(sim: Tensor, rm: Tensor, cm: Tensor,
                     plan_of: Callable[[Tensor], Tensor]) -> Tensor:
    """``<Q, S>`` per pair; pairs are grouped by exact size so each Sinkhorn call is unmasked.

    ``plan_of(block)`` maps the blocks ``(P, r, c)`` of ``P`` same-size pairs to their plans.
    """
    rows, cols = rm.sum(1), cm.sum(1)
    key = rows * (sim.shape[2] + 1) + cols
    out = sim.new_empty(sim.shape[0])
    for k in torch.unique(key).tolist():
        idx = (key == k).nonzero().squeeze(1)
        r, c = divmod(k, sim.shape[2] + 1)
        block = sim[idx, :r, :c]
        out[idx] = (plan_of(block) * block).sum(dim=(1, 2)).to(out.dtype)
    return out


def aligned_bucket_value(aligned: Tensor, quantile: float = 0.3) -> Tensor:
    """The bucket value ``p`` of an evaluation: the ``k``-th *smallest* aligned-pair similarity.

    ``k = int(quantile * N)`` of the ``N`` annotated caption-clip pairs, clamped to ``k >= 1``
    (a set of fewer than ``1 / quantile`` pairs takes the smallest one).

    Parameters
    ----------
    aligned : shape (N,), similarities of the captions with their own (annotated) clip.
    quantile : bottom quantile ``q`` (Norton 0.3).

    Returns
    -------
    Tensor of shape ().

    Notes
    -----
    Norton Sec. 3.2 ("the bottom 30 % similarity of the originally aligned pairs"); the
    official loss takes ``kthvalue(diag, int(0.3 B))`` over a batch (``docs/protocols.md``
    §2.3.7). Here the pairs are those of the whole evaluation set, so ``p`` is one scalar
    shared by every (paragraph, video) pair.

    Examples
    --------
    >>> aligned_bucket_value(torch.tensor([0.9, 0.1, 0.5, 0.3, 0.7]), 0.4)
    tensor(0.3000)
    >>> aligned_bucket_value(torch.tensor([0.9, 0.1]), 0.3)  # int(0.6) = 0: the smallest
    tensor(0.1000)
    """
    check_tensor("aligned", aligned, ndim=1)
    check_open_unit("bucket_quantile", quantile)
    if len(aligned) == 0:
        raise ValueError("aligned: expected at least one aligned caption-clip pair")
    if int(quantile * len(aligned)) == 0:
        return aligned.detach().min()
    return bucket_value_from_quantile(aligned, quantile)


def paragraph_scores(
    text: Tensor,
    text_mask: Tensor,
    video: Tensor,
    video_mask: Tensor,
    background: bool = False,
    preset: str = "norton",
    measures: Sequence[str] = MEASURES,
    ot_eps: float = 0.1,
    ot_iters: int = 50,
    max_elements: int = 1 << 23,
    variants: Sequence[str] = VARIANTS,
    bucket_value: float | Tensor | None = None,
    bucket_quantile: float = 0.3,
    bucket_marginals: str = "superglue",
    bucket_renormalize: bool = True,
) -> ParagraphScores:
    r"""All-pairs video-paragraph scores: every paragraph against every video, every measure.

    For paragraph ``q`` (captions ``t_1..t_r``) and video ``v`` (clips or windows
    ``c_1..c_w``) the block is ``S = T_q C_v^T`` (raw dot products of the pooled vectors,
    official) and

    .. math::
        \mathrm{CapAvg} = \tfrac1r\sum_i \max_j S_{ij},\quad
        \mathrm{DTW} = -\kappa\,\mathrm{dtw}(o - S),\quad
        \mathrm{OTAM} = -\kappa\,(\mathrm{otam}(o - S) + \mathrm{otam}((o - S)^\top)),

        \mathrm{OT\ (plain)} = \langle Q^*, S\rangle,\qquad
        \mathrm{OT\ (Norton\ bucket)} = \langle \bar Q^*, S\rangle

    with the per-setting offset ``o`` and block scaling ``kappa`` of the official metric
    (:data:`nortonkit.compat.SCORING_OFFSETS`; background removed: ``kappa = L^2 / (r w)``); ``Q^*``
    the entropic OT plan with uniform marginals ``1/r``, ``1/w`` (Norton Eq. 2-3, ``eps =
    ot_eps``); ``\bar Q^*`` the plan of ``S`` augmented with the prompt bucket ``p``, bucket
    row and column dropped (Eq. 6, :func:`~nortonkit.transport.bucket_sinkhorn`), as Norton's
    ``D(i, j)`` of Eq. (4). With the background kept, DTW and OTAM first keep the
    ``int(1.3 r)`` windows closest to any caption
    (:func:`nortonkit.compat.official_select_windows`, part of the protocol).

    Parameters
    ----------
    text : shape (G, T, H), each video's caption vectors (its paragraph), zero-padded.
    text_mask : shape (G, T), bool prefix mask of the captions.
    video : shape (G, W, H), each video's clip (or window) vectors.
    video_mask : shape (G, W), bool prefix mask of the clips.
    background : False = Norton Table 1 protocol, True = Table 2 (windows, background kept).
    preset : ``"norton"`` or ``"tempclr"`` distance offsets and scalings.
    measures : subset of :data:`MEASURES`.
    ot_eps, ot_iters : Sinkhorn settings of both transport measures.
    max_elements : similarity entries per chunk of query paragraphs (memory bound).
    variants : subset of :data:`VARIANTS` to compute (the official ones are slower).
    bucket_value : ``p`` of ``"OT (Norton bucket)"``, one scalar for every pair. None: the
        ``bucket_quantile`` bottom quantile of the aligned pairs ``S_qq[i, i]`` (caption ``i``
        and clip ``i`` of the same video, :func:`aligned_bucket_value`); background kept has no
        such pairs, so ``p`` must be given (:func:`eval_youcook_paragraph` pairs each caption
        with the window holding its midpoint).
    bucket_quantile : ``q`` of that default (Norton 0.3).
    bucket_marginals, bucket_renormalize : the bucket's marginals and the rescaling of each kept
        plan to mass ``r``. Default: the official ``D(i, j)`` (SuperGlue marginals, plans
        renormalised, ``docs/protocols.md`` §2.3.9-11, D5-D6); ``"uniform"`` and False give the
        paper family's plan (:mod:`nortonkit.train.presets`).

    Returns
    -------
    ParagraphScores; the ``"official-compatible"`` entries come from
    :mod:`nortonkit.compat`, the ``"corrected"`` ones from :mod:`nortonkit.alignment` and
    :mod:`nortonkit.transport`.

    Notes
    -----
    Norton Sec. 4.1 and Tables 1-2; ``docs/protocols.md`` §7.3-7.4 and §9 items 20-24. The
    batched all-pairs path scores the 436-video YouCookII set within the B3 budget
    (``benchmarks/results/b3_eval.md``).

    Examples
    --------
    >>> t = torch.eye(3)[None].repeat(2, 1, 1); t[1] = t[1].flip(0)  # 2 paragraphs of 3
    >>> m = torch.ones(2, 3, dtype=torch.bool)
    >>> s = paragraph_scores(t, m, t.clone(), m, measures=("DTW",)).scores
    >>> s[("DTW", "corrected")].argmax(dim=1).tolist()  # each paragraph finds its own video
    [0, 1]
    """
    check_tensor("text", text, ndim=3)
    g, t_len, h = text.shape
    check_tensor("video", video, ndim=3, shape=(g, None, h))
    w_len = video.shape[1]
    check_mask("text_mask", text_mask, (g, t_len))
    check_mask("video_mask", video_mask, (g, w_len))
    for m in measures:
        if m in _RENAMED:
            raise ValueError(f"measures: {m!r} is now called {_RENAMED[m]!r} (plain OT on the "
                             f"pooled dot products); Norton's bucketed distance is "
                             f"'OT (Norton bucket)' (known: {MEASURES})")
        check_choice("measures", m, MEASURES)
    for name in variants:
        check_choice("variants", name, VARIANTS)
    corrected, official = "corrected" in variants, "official-compatible" in variants
    check_choice("preset", preset, tuple(compat.SCORING_OFFSETS))
    p = compat.SCORING_OFFSETS[preset]
    check_positive("ot_eps", ot_eps)
    check_int_at_least("ot_iters", ot_iters, 1)
    check_choice("bucket_marginals", bucket_marginals, ("superglue", "uniform"))
    if not isinstance(bucket_renormalize, bool):
        raise ValueError(f"bucket_renormalize: expected a bool, got {bucket_renormalize!r}")
    n_text, n_video = text_mask.sum(1), video_mask.sum(1)
    if bool((n_text == 0).any()) or bool((n_video == 0).any()):
        raise ValueError("text_mask, video_mask: expected at least one caption and one clip "
                         "per video")
    bucket = "OT (Norton bucket)" in measures and corrected
    if bucket and bucket_value is None:
        if background:
            raise ValueError("bucket_value: required with background=True (windows have no "
                             "aligned caption); pass p, e.g. from aligned_bucket_value")
        n = min(t_len, w_len)  # caption i with clip i of the same video
        own = text_mask[:, :n] & video_mask[:, :n]  # (G, n)
        diag = (text[:, :n] * video[:, :n]).sum(-1)  # (G, n)
        bucket_value = aligned_bucket_value(diag[own], bucket_quantile)
    if bucket:
        bucket_value = torch.as_tensor(bucket_value, dtype=text.dtype).reshape(())
        check_finite("bucket_value", bucket_value)
    max_t, max_v = int(n_text.max()), int(n_video.max())
    if not background:
        max_t = max_v = max(max_t, max_v)
    out: dict[tuple[str, str], list[Tensor]] = {}
    # one product of the valid rows (no padding), then every block is gathered from it
    flat = text[text_mask] @ video[video_mask].T  # (sum r, sum w)
    flat = F.pad(flat, (0, 1, 0, 1))  # index -1 (the padding) reads a zero
    t_idx = torch.full((g, t_len), -1, dtype=torch.long)
    t_idx[text_mask] = torch.arange(int(n_text.sum()))
    v_idx = torch.full((g, w_len), -1, dtype=torch.long)
    v_idx[video_mask] = torch.arange(int(n_video.sum()))
    chunk = max(1, max_elements // max(1, g * t_len * w_len))

    def plain_plan(block: Tensor) -> Tensor:
        return sinkhorn(block, eps=ot_eps, n_iters=ot_iters).plan

    def bucket_plan(block: Tensor) -> Tensor:
        return bucket_sinkhorn(block, bucket_value, eps=ot_eps, n_iters=ot_iters,
                               marginals=bucket_marginals,
                               renormalize=bucket_renormalize).plan

    for q0 in range(0, g, chunk):
        q1 = min(g, q0 + chunk)
        qc = q1 - q0
        sim = flat[t_idx[q0:q1, None, :, None], v_idx[None, :, None, :]]  # (Qc, G, T, W)
        sim = sim.reshape(qc * g, t_len, w_len)
        rm = text_mask[q0:q1].repeat_interleave(g, dim=0)  # (Qc*G, T): captions of q
        cm = video_mask.repeat(qc, 1)  # (Qc*G, W): clips of v
        r = rm.sum(1).double()
        res: dict[tuple[str, str], Tensor] = {}
        if "Cap. Avg." in measures:
            s = cap_avg(sim.transpose(1, 2), row_mask=cm, col_mask=rm)
            for name in variants:  # no quirk: the variants differ only in tie handling
                res[("Cap. Avg.", name)] = s
        if "OT (plain)" in measures and corrected:
            res[("OT (plain)", "corrected")] = _transport_score(sim, rm, cm, plain_plan)
        if bucket:
            res[("OT (Norton bucket)", "corrected")] = _transport_score(sim, rm, cm, bucket_plan)
        if "DTW" in measures and official:
            res[("DTW", "official-compatible")] = (
                compat.official_bg_dtw_score(sim, max_t, max_v, rm, cm, preset) if background
                else compat.official_dtw_score(sim, max_v, rm, cm, preset))
        if "DTW" in measures and corrected:
            if background:
                sel = compat.official_select_windows(p.bg_dtw_offset - sim, rm, cm)
                c = sel.col_mask.sum(1).double()
                kappa = (max_t * max_v / (r * c)).to(sim.dtype)
                res[("DTW", "corrected")] = -dtw(sel.distance, rm, sel.col_mask).cost * kappa
            else:
                kappa = (max_v**2 / (r * cm.sum(1).double())).to(sim.dtype)
                res[("DTW", "corrected")] = -dtw(p.dtw_offset - sim, rm, cm).cost * kappa
        if "OTAM" in measures and official:
            res[("OTAM", "official-compatible")] = (
                compat.official_bg_otam_score(sim, max_t, max_v, rm, cm, preset) if background
                else compat.official_otam_score(sim, max_v, rm, cm, preset))
        if "OTAM" in measures and corrected:
            if background:
                sel = compat.official_select_windows(p.bg_otam_offset - sim, rm, cm)
                c = sel.col_mask.sum(1).double()
                if p.bg_otam_scale == "max":
                    kappa = max(max_t, max_v) / torch.maximum(r, c)
                else:
                    kappa = max_t * max_v / (r * c)
                d, ck = sel.distance, sel.col_mask
            else:
                kappa = max_v**2 / (r * cm.sum(1).double())
                d, ck = p.otam_offset - sim, cm
            both = otam(d, rm, ck).cost + otam(d.transpose(1, 2), ck, rm).cost
            res[("OTAM", "corrected")] = -both * kappa.to(sim.dtype)
        for key, val in res.items():
            out.setdefault(key, []).append(val.reshape(qc, g))
    scores = {k: torch.cat(v) for k, v in out.items()}
    return ParagraphScores(scores, max_t, max_v)


def _check_scores(name: str, s: Tensor) -> Tensor:
    if not bool(torch.isfinite(s).all()):
        raise FloatingPointError(f"{name}: non-finite paragraph scores (model outputs overflow?)")
    return s


def paragraph_rows(ps: ParagraphScores, measure_names: dict[str, str] | None = None) -> list[dict]:
    """Result rows (R@1/5/10 and, for corrected rows, MR) of :class:`ParagraphScores`.

    Corrected rows rank with ``ties="pessimistic"``; official-compatible rows with the
    official ``recall(mat, gts)`` (:func:`nortonkit.metrics.paragraph_recall`).

    Examples
    --------
    >>> ps = ParagraphScores({("DTW", "corrected"): torch.eye(2)}, 2, 2)
    >>> [(r["metric"], r["value"]) for r in paragraph_rows(ps)]
    [('R@1', 100.0), ('R@5', 100.0), ('R@10', 100.0), ('MR', 1.0)]
    """
    rows = []
    for (measure, variant), s in ps.scores.items():
        s = _check_scores(f"{measure} ({variant})", s)
        name = (measure_names or {}).get(measure, measure)
        n = s.shape[0]
        if variant == "corrected":
            m = retrieval_metrics(s, _KS, ties="pessimistic")
            vals = {f"R@{k}": 100 * v for k, v in m.recall.items()}
            vals["MR"] = m.median_rank
        else:
            vals = {f"R@{k}": 100 * v for k, v in paragraph_recall(s, ks=_KS).items()}
        for metric, value in vals.items():
            rows.append(dict(measure=name, variant=variant, metric=metric, value=value, n=n))
    return rows


def retrieval_rows(scores: Tensor, measure: str = "clip") -> list[dict]:
    """R@1/5/10 and MR of a text x video matrix, in both tie conventions.

    Examples
    --------
    >>> rows = retrieval_rows(torch.ones(2, 2))  # a constant model: every score tied
    >>> [(r["variant"], r["metric"], r["value"]) for r in rows if r["metric"] == "R@1"]
    [('corrected', 'R@1', 0.0), ('official-compatible', 'R@1', 50.0)]
    """
    rows = []
    for variant, ties in (("corrected", "pessimistic"), ("official-compatible", "official")):
        m = retrieval_metrics(scores, _KS, ties=ties)
        vals = {f"R@{k}": 100 * v for k, v in m.recall.items()}
        vals["MR"] = m.median_rank
        for metric, value in vals.items():
            rows.append(dict(measure=measure, variant=variant, metric=metric, value=value,
                             n=scores.shape[0]))
    return rows


# ---------------------------------------------------------------------------------------------
# T1-T3: YouCookII


def eval_youcook_paragraph(
    model: DualEncoder,
    root: Any,
    device: str = "cpu",
    settings: Sequence[str] = ("bg_removed", "bg_kept"),
    preset: str = "norton",
    measures: Sequence[str] = MEASURES,
    ot_eps: float = 0.1,
    ot_iters: int = 50,
    batch_size: int = 256,
    window: int = 16,
    bucket_quantile: float = 0.3,
) -> list[dict]:
    """Norton Tables 1 (``bg_removed``) and 2 (``bg_kept``): video-paragraph retrieval.

    Background removed: the clips and captions of each video, chronological (blocks built from
    per-video index lists, whatever the pickle order). Background kept: 16-s windows of the
    whole video (video CLS masked, as the released BG model); corrected rows order each
    paragraph's captions by time, official-compatible rows keep the pickle-record order the
    released metric uses (the same on the released pickle, which is chronological).

    The bucket value ``p`` of ``"OT (Norton bucket)"`` is the ``bucket_quantile`` bottom
    quantile of the aligned caption-clip similarities of the whole set
    (:func:`aligned_bucket_value`): each caption with its annotated clip (background removed)
    or with the window holding its annotated midpoint (background kept).

    Examples
    --------
    >>> from nortonkit.synthetic.corpus import ensure_corpus
    >>> from nortonkit.encoders import EncoderConfig
    >>> import tempfile
    >>> root = ensure_corpus(tempfile.mkdtemp(), "smoke")
    >>> _ = torch.manual_seed(0)
    >>> m = DualEncoder(EncoderConfig(preset="tiny")).eval()
    >>> rows = eval_youcook_paragraph(m, root, settings=("bg_removed",), measures=("DTW",))
    >>> sorted({(r["table"], r["measure"], r["variant"]) for r in rows})[0]
    ('T1', 'DTW', 'corrected')
    """
    from ..data.youcook import load_youcook_full_videos, load_youcook_paragraphs

    for s in settings:
        check_choice("settings", s, ("bg_removed", "bg_kept"))
    dim = model.config.video_feature_dim
    rows: list[dict] = []
    if "bg_removed" in settings:
        par = load_youcook_paragraphs(root, expected_dim=dim)
        if not par.contiguous:
            warnings.warn(
                "youcook: the clips of some video are not contiguous in the pickle; the "
                "official metric would slice the wrong clips (docs/protocols.md §9 item 24). "
                "Both variants here use explicit per-video blocks.", stacklevel=2)
        clips = encode_clips(model, par.clips.video, par.clips.video_mask, device, batch_size)
        caps = encode_captions(model, par.clips.captions, device, batch_size)
        t, tm = pad_groups(caps, par.blocks)
        v, vm = pad_groups(clips, par.blocks)
        ps = paragraph_scores(t, tm, v, vm, False, preset, measures, ot_eps, ot_iters,
                              bucket_quantile=bucket_quantile)
        for r in paragraph_rows(ps):
            rows.append(dict(r, table="T1", setting="zero-shot, background removed"))
    if "bg_kept" in settings:
        full = load_youcook_full_videos(root, expected_dim=dim, window=window, stride=window)
        win_vecs, cap_texts, win_groups, cap_groups, time_groups = [], [], [], [], []
        held = []  # per caption: the (global) index of the window holding its midpoint
        n_win = n_cap = 0
        for item in full:
            vec = encode_clips(model, item.windows, item.window_mask, device, batch_size,
                               cls_attend=False)  # the BG path masks the video CLS
            mid = item.caption_spans.mean(1)[:, None]  # (C, 1)
            inside = (item.window_spans[:, 0] <= mid) & (mid < item.window_spans[:, 1])
            w = torch.where(inside.any(1), inside.int().argmax(1), len(vec) - 1)
            held.append(n_win + w)
            win_vecs.append(vec)
            win_groups.append(torch.arange(n_win, n_win + len(vec)))
            idx = torch.arange(n_cap, n_cap + len(item.captions))
            cap_groups.append(idx)  # pickle-record order (official)
            order = torch.argsort(item.caption_spans[:, 0], stable=True)
            time_groups.append(idx[order])  # chronological (corrected)
            cap_texts.extend(item.captions)
            n_win += len(vec)
            n_cap += len(item.captions)
        caps = encode_captions(model, cap_texts, device, batch_size)
        windows = torch.cat(win_vecs)
        p = None
        if "OT (Norton bucket)" in measures:
            aligned = (caps * windows[torch.cat(held)]).sum(-1)  # (C,) caption . its window
            p = aligned_bucket_value(aligned, bucket_quantile)
        v, vm = pad_groups(windows, win_groups)
        t, tm = pad_groups(caps, time_groups)
        ps = paragraph_scores(t, tm, v, vm, True, preset, measures, ot_eps, ot_iters,
                              bucket_value=p)
        if any(not torch.equal(a, b) for a, b in zip(cap_groups, time_groups)):
            # the official metric aligns captions in pickle order; the corrected one in time
            t, tm = pad_groups(caps, cap_groups)
            official = paragraph_scores(t, tm, v, vm, True, preset, measures, ot_eps, ot_iters,
                                        variants=("official-compatible",))
            for key in ps.scores:
                if key[1] == "official-compatible":
                    ps.scores[key] = official.scores[key]
        for r in paragraph_rows(ps):
            rows.append(dict(r, table="T2", setting="zero-shot, background kept"))
    return rows


def _clip_scores(model: DualEncoder, clips: Any, device: str, batch_size: int) -> Tensor:
    video = encode_clips(model, clips.video, clips.video_mask, device, batch_size)
    text = encode_captions(model, clips.captions, device, batch_size)
    return text @ video.T  # (N, N): rows = captions, columns = clips


def eval_youcook_clip(model: DualEncoder, root: Any, device: str = "cpu",
                      batch_size: int = 256) -> list[dict]:
    """Norton Table 3: YouCookII clip-caption (text-to-video) retrieval, zero-shot."""
    from ..data.youcook import load_youcook_clips

    clips = load_youcook_clips(root, expected_dim=model.config.video_feature_dim)
    rows = retrieval_rows(_clip_scores(model, clips, device, batch_size))
    return [dict(r, table="T3", setting="zero-shot") for r in rows]


def eval_msrvtt_retrieval(model: DualEncoder, root: Any, device: str = "cpu",
                          batch_size: int = 256, setting: str = "zero-shot") -> list[dict]:
    """Norton Table 5: MSR-VTT text-to-video retrieval on the 1k-A test set."""
    from ..data.msrvtt import load_msrvtt_test

    clips = load_msrvtt_test(root, expected_dim=model.config.video_feature_dim)
    rows = retrieval_rows(_clip_scores(model, clips, device, batch_size))
    return [dict(r, table="T5", setting=setting) for r in rows]


def qa_scores(model: DualEncoder, qa: Any, device: str = "cpu", batch_size: int = 256,
              max_tokens: int = 77, tokenizer: Any = None) -> Tensor:
    r"""Question x candidate dot products ``(Q, A)`` of a :class:`~nortonkit.data.msrvtt.QASet`.

    .. math:: s_{qa} = \langle \bar v_q, \bar t_{qa} \rangle

    Parameters
    ----------
    model : the dual encoder.
    qa : the questions: video ``(Q, V, D)`` and ``A`` candidate sentences per question.
    device, batch_size : where and how many sentences or videos per forward pass.
    max_tokens : word pieces kept per candidate: 77, the QA yamls' ``96 - 16 - 3``
        (:func:`text_token_budget`).
    tokenizer : optional tokenizer (default :func:`~nortonkit.data.text.load_tokenizer`).

    Returns
    -------
    Tensor of shape (Q, A).

    Notes
    -----
    ``docs/protocols.md`` §7.6 (``MSRVTTQAAligner`` builds each candidate with the ``DSAligner``
    of ``max_len 96`` / ``max_video_len 16``, so 80 caption positions and 77 tokens) and §3.2.
    """
    video = encode_clips(model, qa.video, qa.video_mask, device, batch_size)  # (Q, H)
    n_cand = len(qa.candidates[0])
    flat = [c for cands in qa.candidates for c in cands]
    text = encode_captions(model, flat, device, batch_size, max_tokens, tokenizer)
    text = text.reshape(len(qa.candidates), n_cand, -1)  # (Q, A, H)
    return torch.einsum("qh,qah->qa", video, text)


def eval_msrvtt_qa(model: DualEncoder, root: Any, device: str = "cpu", batch_size: int = 256,
                   max_video_len: int = 16, setting: str = "zero-shot",
                   max_tokens: int | None = None) -> list[dict]:
    """Norton Table 6: MSR-VTT multiple-choice QA accuracy (first 16 s of video).

    ``max_tokens`` None: :func:`text_token_budget` of ``max_video_len``, i.e. 77 tokens per
    candidate with the official 16 s (``docs/protocols.md`` §7.6).
    """
    from ..data.msrvtt import load_msrvtt_qa

    if max_tokens is None:
        max_tokens = text_token_budget(max_video_len)
    qa = load_msrvtt_qa(root, max_video_len=max_video_len,
                        expected_dim=model.config.video_feature_dim)
    s = qa_scores(model, qa, device, batch_size, max_tokens)
    conventions = (("corrected", "pessimistic"), ("official-compatible", "official"))
    return [dict(table="T6", setting=setting, measure="QA", variant=variant, metric="accuracy",
                 value=100 * choice_accuracy(s, qa.answers, ties=ties), n=len(qa.answers))
            for variant, ties in conventions]


# ---------------------------------------------------------------------------------------------
# T4: COIN


def _average_windows(per_window: Tensor, starts: Tensor, mask: Tensor, n_frames: int) -> Tensor:
    """Average ``(W, V, C)`` window outputs into per-second ``(n_frames, C)`` (overlaps mean)."""
    total = per_window.new_zeros(n_frames, per_window.shape[-1])
    count = per_window.new_zeros(n_frames)
    for w in range(per_window.shape[0]):
        n = int(mask[w].sum())
        s = int(starts[w])
        total[s : s + n] += per_window[w, :n]
        count[s : s + n] += 1
    return total / count.clamp(min=1)[:, None]


@torch.no_grad()
def coin_predict(model: DualEncoder, video: Any, device: str = "cpu") -> Tensor:
    """Per-second predictions ``(T,)`` of the COIN head, logits averaged over windows."""
    model.eval()
    logits = model.frame_logits(video.windows.to(device), video.window_mask.to(device),
                                cls_attend=False).float().cpu()  # (W, V, C)
    return _average_windows(logits, video.window_starts, video.window_mask,
                            len(video.video_targets)).argmax(dim=1)


@torch.no_grad()
def coin_zero_shot_logits(model: DualEncoder, video: Any, labels: Tensor, device: str = "cpu",
                          cls_attend: bool = False) -> Tensor:
    r"""Per-second label scores ``(T, L)`` of one COIN video, frame tokens against label texts.

    .. math:: z_{s\ell} = \operatorname{mean}_{w \ni s}\, \langle h^{(w)}_{s}, \bar t_\ell \rangle

    with ``h^{(w)}`` the video encoder's frame outputs (positions ``1..V``) of window ``w``.

    Parameters
    ----------
    model : the dual encoder.
    video : a :class:`~nortonkit.data.coin.CoinVideo`: windows ``(W, V, D)``, mask ``(W, V)``,
        window starts ``(W,)`` and whole-video targets ``(T,)``.
    labels : shape (L, H), pooled label-text vectors (labels ``1..L``).
    device : torch device of the encoder.
    cls_attend : whether the video CLS takes part in attention. False (default): the official
        zero-shot path, whose ``COINActionSegmentationAligner`` feeds dummy caps with
        ``cmasks[:, 0] = 0`` to ``forward_video``; True: the pretraining / DSAligner layout.

    Returns
    -------
    Tensor of shape (T, L), float32, averaged over overlapping windows.

    Notes
    -----
    ``docs/protocols.md`` §3.3 (the COIN path masks the video CLS), §7.7 (``COINZSPredictor``)
    and §9 item 25 (``video_cls_attend``).
    """
    model.eval()
    tokens = model.encode_video(video.windows.to(device), video.window_mask.to(device),
                                cls_attend=cls_attend).tokens[:, 1:-1].float().cpu()
    per_window = tokens @ labels.T  # (W, V, L)
    return _average_windows(per_window, video.window_starts, video.window_mask,
                            len(video.video_targets))


@torch.no_grad()
def eval_coin_zero_shot(model: DualEncoder, root: Any, device: str = "cpu",
                        batch_size: int = 256, cls_attend: bool = False) -> list[dict]:
    """COIN zero-shot segmentation (``COINZSPredictor``): frame tokens against label texts.

    A second is labelled ``argmax + 1`` when its best label score exceeds the largest
    off-diagonal label-label dot product (``lbd``), otherwise background (0). The video
    encoder runs without CLS attention (``cls_attend=False``), as the official zero-shot path
    does (:func:`coin_zero_shot_logits`).
    """
    from ..data.coin import load_coin

    coin = load_coin(root, subset="testing", expected_dim=model.config.video_feature_dim)
    if len(coin) == 0:
        raise ValueError(f"coin: no testing video with features under {coin.feature_dir}")
    labels = encode_captions(model, coin.label_names[1:], device, batch_size)  # (L, H)
    gram = labels @ labels.T
    lbd = gram.masked_fill(torch.eye(len(labels), dtype=torch.bool), -math.inf).max()
    preds, targets = [], []
    for video in coin:
        logits = coin_zero_shot_logits(model, video, labels, device, cls_attend)  # (T, L)
        best, arg = logits.max(dim=1)
        preds.append(torch.where(best > lbd, arg + 1, torch.zeros_like(arg)))
        targets.append(video.video_targets)
    acc = frame_accuracy(preds, targets)
    n = int(sum(len(t) for t in targets))
    return [dict(table="T4", setting="zero-shot", measure="frame accuracy", variant=v,
                 metric="frame_accuracy", value=100 * acc, n=n)
            for v in VARIANTS]


# ---------------------------------------------------------------------------------------------
# T9: HTM-Align


@torch.no_grad()
def htm_align_scores(model: DualEncoder, video: Any, device: str = "cpu",
                     tokenizer: Any = None) -> Tensor:
    r"""Sentence x second cosine scores ``(S, T)`` of one HTM-Align video, window-averaged.

    .. math:: s_{it} = \frac{1}{n_{it}} \sum_{w:\, i \in A_w,\, t \in w}
              \cos\big(\bar t_i, h^{(w)}_{t - s_w}\big)

    Each window is encoded as the official script pads it
    (:func:`~nortonkit.data.htm_align.pad_windows`: zero features up to ``max_video_len`` = 32,
    mask False on the padding, CLS attended, so the SEP sits at position 33 for every window);
    frame tokens (positions ``1..V``) of the real seconds and the pooled sentences are
    L2-normalised; each window adds the cosines of its active sentences ``A_w`` and frames; the
    sum is divided by the coverage count ``n_it``; uncovered entries get ``-6e4``.

    Parameters
    ----------
    model : the dual encoder.
    video : an :class:`~nortonkit.data.htm_align.HTMAlignVideo`: padded ``windows`` of shape
        (W, V, D), ``window_mask`` (W, V), ``window_spans`` and ``text_ranges`` (W, 2).
    device : torch device of the encoder.
    tokenizer : optional tokenizer (default :func:`~nortonkit.data.text.load_tokenizer`).

    Returns
    -------
    Tensor of shape (S, T), float32.

    Notes
    -----
    ``docs/protocols.md`` §7.8 (``N:eval_zeroshot_align.py``: ``get_text_visual_sim`` pads
    each window to ``model.max_video_len``, ``sim.masked_fill_(sim == 0, -6e4)``).
    """
    model.eval()
    spans = video.window_spans.tolist()
    frames = model.encode_video(video.windows.to(device),
                                video.window_mask.to(device)).tokens[:, 1:-1]
    frames = F.normalize(frames.float().cpu(), dim=-1)  # (W, V, H)
    text = F.normalize(encode_captions(model, video.texts, device, tokenizer=tokenizer), dim=-1)
    n_text, n_frames = len(video.texts), len(video.features)
    total = torch.zeros(n_text, n_frames)
    count = torch.zeros(n_text, n_frames)
    for w, ((s, e), (r0, r1)) in enumerate(zip(spans, video.text_ranges.tolist())):
        total[r0:r1, s:e] += text[r0:r1] @ frames[w, : e - s].T
        count[r0:r1, s:e] += 1
    return torch.where(count > 0, total / count.clamp(min=1), torch.tensor(-6e4))


def eval_htm_align(model: DualEncoder, root: Any, device: str = "cpu") -> list[dict]:
    """Norton Table 9: HTM-Align alignment recall (micro-average) and ROC AUC."""
    from ..data.htm_align import load_htm_align

    data = load_htm_align(root, expected_dim=model.config.video_feature_dim)
    tok = load_tokenizer()
    hits = total = 0
    auc_scores, auc_labels = [], []
    for video in data:
        s = htm_align_scores(model, video, device, tokenizer=tok)
        r = alignment_recall(s[None], video.segments[None], text_mask=video.alignable[None])
        hits, total = hits + r.hits, total + r.n
        auc_scores.append(s.max(dim=1).values)
        auc_labels.append(video.alignable)
    rows = [dict(metric="recall", value=100 * hits / total if total else float("nan"), n=total)]
    labels = torch.cat(auc_labels)
    if bool(labels.any()) and bool((~labels).any()):
        rows.append(dict(metric="AUC", value=100 * roc_auc(torch.cat(auc_scores), labels),
                         n=len(labels)))
    return [dict(r, table="T9", setting="zero-shot", measure="alignment", variant=v)
            for r in rows for v in VARIANTS]


def split_validation(ids: Sequence[str], fraction: float, seed: int) -> tuple[list, list]:
    """Seeded split of training ids into (train, validation); validation gets >= 1 id.

    Examples
    --------
    >>> tr, va = split_validation([f"v{i}" for i in range(10)], 0.2, seed=0)
    >>> len(tr), len(va), sorted(set(tr) | set(va)) == sorted(f"v{i}" for i in range(10))
    (8, 2, True)
    """
    ids = list(ids)
    if len(ids) < 2:
        raise ValueError(f"training set: expected at least 2 items to carve a validation split, "
                         f"got {len(ids)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {fraction!r}")
    perm = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    val = sorted(perm[:n_val].tolist())
    train = sorted(perm[n_val:].tolist())
    return [ids[i] for i in train], [ids[i] for i in val]
