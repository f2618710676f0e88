r"""YouCookII video-paragraph retrieval (Norton Tables 1-2): every paragraph against every video.

Each video's captions form a paragraph and its clips (background removed, Table 1) or 16-s
windows (background kept, Table 2) a sequence; every paragraph is scored against every video
with each sequence measure of :data:`MEASURES` (:func:`paragraph_scores`) and the videos of
each paragraph are ranked: R@1/5/10 and, for corrected rows, the median rank
(:func:`paragraph_rows`, ``docs/protocols.md`` §7.3-7.4).

Variants. ``"corrected"`` rows use nortonkit's measures (:mod:`nortonkit.alignment`) and
pessimistic tie handling (:mod:`nortonkit.metrics`); ``"official-compatible"`` rows reproduce
the released evaluation (:mod:`nortonkit.compat`: padding quirks, the OTAM sign bug, the
background-kept crop; ties broken as the official ``argsort`` does). Cap. Avg. has no quirk:
its two variants differ only in tie handling. The two transport measures, ``"OT (plain)"``
(entropic OT with uniform marginals on the pooled dot products, Norton Eq. 2-3) and
``"OT (Norton bucket)"`` (Norton's transport distance with the alignable prompt bucket, Eq. 6),
have no official counterpart (the released metric prints a placeholder 0 for "OT",
``docs/protocols.md`` §7.3) and are reported as corrected only.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from .. import compat
from ..alignment import cap_avg, dtw, otam
from ..data.youcook import load_youcook_full_videos, load_youcook_paragraphs
from ..encoders import DualEncoder
from ..metrics import paragraph_recall, retrieval_metrics
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
from .common import RECALL_KS, VARIANTS, encode_captions, encode_clips, pad_groups

__all__ = [
    "MEASURES",
    "ParagraphScores",
    "aligned_bucket_value",
    "paragraph_scores",
    "paragraph_rows",
    "eval_youcook_paragraph",
]

#: Video-paragraph measures. "OT (plain)": entropic OT with uniform marginals on the pooled dot
#: products; "OT (Norton bucket)": Norton's transport distance with the prompt bucket (Eq. 6).
MEASURES: tuple[str, ...] = ("Cap. Avg.", "DTW", "OTAM", "OT (plain)", "OT (Norton bucket)")
_RENAMED = {"OT": "OT (plain)"}


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


def _check_paragraph_inputs(
    text: Tensor,
    text_mask: Tensor,
    video: Tensor,
    video_mask: Tensor,
    preset: str,
    measures: Sequence[str],
    variants: Sequence[str],
    ot_eps: float,
    ot_iters: int,
    bucket_marginals: str,
    bucket_renormalize: bool,
) -> None:
    """Validate the arguments of :func:`paragraph_scores` (shapes, masks, names, settings)."""
    check_tensor("text", text, ndim=3)
    g, t_len, h = text.shape
    check_tensor("video", video, ndim=3, shape=(g, None, h))
    check_mask("text_mask", text_mask, (g, t_len))
    check_mask("video_mask", video_mask, (g, video.shape[1]))
    for m in measures:
        if m in _RENAMED:
            raise ValueError(f"measures: {m!r} is now called {_RENAMED[m]!r} (plain OT on the "
                             f"pooled dot products); Norton's bucketed distance is "
                             f"'OT (Norton bucket)' (known: {MEASURES})")
        check_choice("measures", m, MEASURES)
    for name in variants:
        check_choice("variants", name, VARIANTS)
    check_choice("preset", preset, tuple(compat.SCORING_OFFSETS))
    check_positive("ot_eps", ot_eps)
    check_int_at_least("ot_iters", ot_iters, 1)
    check_choice("bucket_marginals", bucket_marginals, ("superglue", "uniform"))
    if not isinstance(bucket_renormalize, bool):
        raise ValueError(f"bucket_renormalize: expected a bool, got {bucket_renormalize!r}")
    if bool((text_mask.sum(1) == 0).any()) or bool((video_mask.sum(1) == 0).any()):
        raise ValueError("text_mask, video_mask: expected at least one caption and one clip "
                         "per video")


def _own_clip_bucket_value(text: Tensor, text_mask: Tensor, video: Tensor, video_mask: Tensor,
                           quantile: float) -> Tensor:
    """:func:`aligned_bucket_value` of the pairs ``S_qq[i, i]``: caption i with clip i of video q.

    ``text (G, T, H)``, ``video (G, W, H)`` and their masks as in :func:`paragraph_scores`.
    """
    n = min(text.shape[1], video.shape[1])  # caption i with clip i of the same video
    own = text_mask[:, :n] & video_mask[:, :n]  # (G, n)
    diag = (text[:, :n] * video[:, :n]).sum(-1)  # (G, n)
    return aligned_bucket_value(diag[own], quantile)


def _plain_plan(block: Tensor, eps: float, n_iters: int) -> Tensor:
    """Entropic OT plans ``(P, r, c)`` of same-size blocks, uniform marginals (Eq. 2-3)."""
    return sinkhorn(block, eps=eps, n_iters=n_iters).plan


def _bucket_plan(block: Tensor, value: Tensor, eps: float, n_iters: int, marginals: str,
                 renormalize: bool) -> Tensor:
    """Plans ``(P, r, c)`` of same-size blocks with the prompt bucket ``value`` (Eq. 6)."""
    return bucket_sinkhorn(block, value, eps=eps, n_iters=n_iters, marginals=marginals,
                           renormalize=renormalize).plan


def _pair_blocks(text: Tensor, text_mask: Tensor, video: Tensor, video_mask: Tensor,
                 max_elements: int) -> Iterator[tuple[int, Tensor, Tensor, Tensor]]:
    """Similarity blocks of every (paragraph, video) pair, one chunk of query paragraphs at a time.

    One product of the valid rows (no padding) is computed, then every block is gathered from it.

    Yields
    ------
    (Qc, sim, rm, cm): ``Qc`` query paragraphs; ``sim`` of shape (Qc*G, T, W), the block of
    query ``q`` against video ``v`` at row ``q * G + v`` (zero on padding); ``rm`` (Qc*G, T)
    the captions of ``q``; ``cm`` (Qc*G, W) the clips of ``v``.
    """
    g, t_len, w_len = text.shape[0], text.shape[1], video.shape[1]
    n_text, n_video = text_mask.sum(1), video_mask.sum(1)
    flat = text[text_mask] @ video[video_mask].T  # (sum r, sum w)
    flat = F.pad(flat, (0, 1, 0, 1))  # index -1 (the padding) reads a zero
    t_idx = torch.full((g, t_len), -1, dtype=torch.long)
    t_idx[text_mask] = torch.arange(int(n_text.sum()))
    v_idx = torch.full((g, w_len), -1, dtype=torch.long)
    v_idx[video_mask] = torch.arange(int(n_video.sum()))
    chunk = max(1, max_elements // max(1, g * t_len * w_len))
    for q0 in range(0, g, chunk):
        q1 = min(g, q0 + chunk)
        qc = q1 - q0
        sim = flat[t_idx[q0:q1, None, :, None], v_idx[None, :, None, :]]  # (Qc, G, T, W)
        sim = sim.reshape(qc * g, t_len, w_len)
        rm = text_mask[q0:q1].repeat_interleave(g, dim=0)  # (Qc*G, T): captions of q
        cm = video_mask.repeat(qc, 1)  # (Qc*G, W): clips of v
        yield qc, sim, rm, cm


class _Scoring(NamedTuple):
    """What every block of one :func:`paragraph_scores` call is scored with.

    ``max_t`` / ``max_v``: the official ``maxT`` / ``maxV``; ``bucket_plan`` None: no
    ``("OT (Norton bucket)", "corrected")`` score.
    """

    measures: Sequence[str]
    variants: Sequence[str]
    background: bool
    preset: str
    max_t: int
    max_v: int
    plain_plan: Callable[[Tensor], Tensor]
    bucket_plan: Callable[[Tensor], Tensor] | None


def _distance_blocks(sim: Tensor, rm: Tensor, cm: Tensor, sc: _Scoring, offset: float,
                     bg_offset: float, bg_scale: str = "product") -> tuple[Tensor, Tensor, Tensor]:
    """``(o - S, column mask, kappa (P,))`` of blocks ``sim (P, T, W)`` for the corrected
    scorers; background kept: the windows the official code keeps, scaled by ``bg_scale``
    (``"product"``: ``maxT maxV / (rows cols)``; ``"max"``:
    ``max(maxT, maxV) / max(rows, cols)``)."""
    r = rm.sum(1).double()
    if not sc.background:
        kappa = sc.max_v**2 / (r * cm.sum(1).double())
        return offset - sim, cm, kappa.to(sim.dtype)
    sel = compat.official_select_windows(bg_offset - sim, rm, cm)
    c = sel.col_mask.sum(1).double()
    if bg_scale == "max":
        kappa = max(sc.max_t, sc.max_v) / torch.maximum(r, c)
    else:
        kappa = sc.max_t * sc.max_v / (r * c)
    return sel.distance, sel.col_mask, kappa.to(sim.dtype)


def _corrected_dtw(sim: Tensor, rm: Tensor, cm: Tensor, sc: _Scoring) -> Tensor:
    """``-kappa dtw(o - S)`` of blocks ``sim (P, T, W)``; background kept: on the kept windows."""
    p = compat.SCORING_OFFSETS[sc.preset]
    d, ck, kappa = _distance_blocks(sim, rm, cm, sc, p.dtw_offset, p.bg_dtw_offset)
    return -dtw(d, rm, ck).cost * kappa


def _corrected_otam(sim: Tensor, rm: Tensor, cm: Tensor, sc: _Scoring) -> Tensor:
    """``-kappa (otam(o - S) + otam((o - S)^T))`` of blocks ``sim (P, T, W)``."""
    p = compat.SCORING_OFFSETS[sc.preset]
    d, ck, kappa = _distance_blocks(sim, rm, cm, sc, p.otam_offset, p.bg_otam_offset,
                                    p.bg_otam_scale)
    both = otam(d, rm, ck).cost + otam(d.transpose(1, 2), ck, rm).cost
    return -both * kappa


def _block_scores(sim: Tensor, rm: Tensor, cm: Tensor,
                  sc: _Scoring) -> dict[tuple[str, str], Tensor]:
    """Every requested ``(measure, variant)`` score ``(P,)`` of blocks ``sim (P, T, W)``."""
    corrected, official = "corrected" in sc.variants, "official-compatible" in sc.variants
    res: dict[tuple[str, str], Tensor] = {}
    if "Cap. Avg." in sc.measures:
        s = cap_avg(sim.transpose(1, 2), row_mask=cm, col_mask=rm)
        for name in sc.variants:  # no quirk: the variants differ only in tie handling
            res[("Cap. Avg.", name)] = s
    if "OT (plain)" in sc.measures and corrected:
        res[("OT (plain)", "corrected")] = _transport_score(sim, rm, cm, sc.plain_plan)
    if sc.bucket_plan is not None:
        res[("OT (Norton bucket)", "corrected")] = _transport_score(sim, rm, cm, sc.bucket_plan)
    if "DTW" in sc.measures and official:
        res[("DTW", "official-compatible")] = (
            compat.official_bg_dtw_score(sim, sc.max_t, sc.max_v, rm, cm, sc.preset)
            if sc.background else compat.official_dtw_score(sim, sc.max_v, rm, cm, sc.preset))
    if "DTW" in sc.measures and corrected:
        res[("DTW", "corrected")] = _corrected_dtw(sim, rm, cm, sc)
    if "OTAM" in sc.measures and official:
        res[("OTAM", "official-compatible")] = (
            compat.official_bg_otam_score(sim, sc.max_t, sc.max_v, rm, cm, sc.preset)
            if sc.background else compat.official_otam_score(sim, sc.max_v, rm, cm, sc.preset))
    if "OTAM" in sc.measures and corrected:
        res[("OTAM", "corrected")] = _corrected_otam(sim, rm, cm, sc)
    return res


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
    _check_paragraph_inputs(text, text_mask, video, video_mask, preset, measures, variants,
                            ot_eps, ot_iters, bucket_marginals, bucket_renormalize)
    bucket_plan = None
    if "OT (Norton bucket)" in measures and "corrected" in variants:
        if bucket_value is None:
            if background:
                raise ValueError("bucket_value: required with background=True (windows have no "
                                 "aligned caption); pass p, e.g. from aligned_bucket_value")
            bucket_value = _own_clip_bucket_value(text, text_mask, video, video_mask,
                                                  bucket_quantile)
        bucket_value = torch.as_tensor(bucket_value, dtype=text.dtype).reshape(())
        check_finite("bucket_value", bucket_value)
        bucket_plan = partial(_bucket_plan, value=bucket_value, eps=ot_eps, n_iters=ot_iters,
                              marginals=bucket_marginals, renormalize=bucket_renormalize)
    max_t, max_v = int(text_mask.sum(1).max()), int(video_mask.sum(1).max())
    if not background:
        max_t = max_v = max(max_t, max_v)
    scoring = _Scoring(measures, variants, background, preset, max_t, max_v,
                       partial(_plain_plan, eps=ot_eps, n_iters=ot_iters), bucket_plan)
    g = text.shape[0]
    out: dict[tuple[str, str], list[Tensor]] = {}
    for qc, sim, rm, cm in _pair_blocks(text, text_mask, video, video_mask, max_elements):
        for key, val in _block_scores(sim, rm, cm, scoring).items():
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
            m = retrieval_metrics(s, RECALL_KS, ties="pessimistic")
            vals = {f"R@{k}": 100 * v for k, v in m.recall.items()}
            vals["MR"] = m.median_rank
        else:
            vals = {f"R@{k}": 100 * v for k, v in paragraph_recall(s, ks=RECALL_KS).items()}
        for metric, value in vals.items():
            rows.append(dict(measure=name, variant=variant, metric=metric, value=value, n=n))
    return rows


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
    for s in settings:
        check_choice("settings", s, ("bg_removed", "bg_kept"))
    dim = model.config.video_feature_dim
    scoring = dict(preset=preset, measures=measures, ot_eps=ot_eps, ot_iters=ot_iters,
                   batch_size=batch_size, bucket_quantile=bucket_quantile)
    rows: list[dict] = []
    if "bg_removed" in settings:
        par = load_youcook_paragraphs(root, expected_dim=dim)
        ps = _background_removed_scores(model, par, device, **scoring)
        for r in paragraph_rows(ps):
            rows.append(dict(r, table="T1", setting="zero-shot, background removed"))
    if "bg_kept" in settings:
        full = load_youcook_full_videos(root, expected_dim=dim, window=window, stride=window)
        ps = _background_kept_scores(model, full, device, **scoring)
        for r in paragraph_rows(ps):
            rows.append(dict(r, table="T2", setting="zero-shot, background kept"))
    return rows


def _background_removed_scores(model: DualEncoder, par: Any, device: str, preset: str,
                               measures: Sequence[str], ot_eps: float, ot_iters: int,
                               batch_size: int, bucket_quantile: float) -> ParagraphScores:
    """Table 1 scores: the annotated clips and captions of each video, chronological.

    ``par`` is a :class:`~nortonkit.data.youcook.YoucookParagraphs`: the blocks are built from
    its per-video index lists, whatever the pickle order.
    """
    if not par.contiguous:
        warnings.warn(
            "youcook: the clips of some video are not contiguous in the pickle; the "
            "official metric would slice the wrong clips (docs/protocols.md §9 item 24). "
            "Both variants here use explicit per-video blocks.", stacklevel=3)
    clips = encode_clips(model, par.clips.video, par.clips.video_mask, device, batch_size)
    caps = encode_captions(model, par.clips.captions, device, batch_size)
    t, tm = pad_groups(caps, par.blocks)
    v, vm = pad_groups(clips, par.blocks)
    return paragraph_scores(t, tm, v, vm, False, preset, measures, ot_eps, ot_iters,
                            bucket_quantile=bucket_quantile)


class _Windows(NamedTuple):
    """The encoded windows of the background-kept videos and the index groups of their captions.

    Attributes
    ----------
    vectors : per video, its pooled window vectors (W_v, H).
    groups : per video, the global indices of its windows.
    held : per video, the global index of the window holding each caption's midpoint (C_v,).
    captions : every caption text, video after video, in pickle-record order.
    record_groups : per video, the global indices of its captions in pickle-record order
        (official).
    time_groups : the same indices in chronological order (corrected).
    """

    vectors: list[Tensor]
    groups: list[Tensor]
    held: list[Tensor]
    captions: list[str]
    record_groups: list[Tensor]
    time_groups: list[Tensor]


def _encode_windows(model: DualEncoder, full: Any, device: str, batch_size: int) -> _Windows:
    """Encode the 16-s windows of every full video (video CLS masked, as the released BG path)."""
    win = _Windows([], [], [], [], [], [])
    n_win = n_cap = 0
    for item in full:
        vec = encode_clips(model, item.windows, item.window_mask, device, batch_size,
                           cls_attend=False)  # the BG path masks the video CLS
        mid = item.caption_spans.mean(1)[:, None]  # (C, 1)
        inside = (item.window_spans[:, 0] <= mid) & (mid < item.window_spans[:, 1])
        w = torch.where(inside.any(1), inside.int().argmax(1), len(vec) - 1)
        win.held.append(n_win + w)
        win.vectors.append(vec)
        win.groups.append(torch.arange(n_win, n_win + len(vec)))
        idx = torch.arange(n_cap, n_cap + len(item.captions))
        win.record_groups.append(idx)  # pickle-record order (official)
        order = torch.argsort(item.caption_spans[:, 0], stable=True)
        win.time_groups.append(idx[order])  # chronological (corrected)
        win.captions.extend(item.captions)
        n_win += len(vec)
        n_cap += len(item.captions)
    return win


def _background_kept_scores(model: DualEncoder, full: Any, device: str, preset: str,
                            measures: Sequence[str], ot_eps: float, ot_iters: int,
                            batch_size: int, bucket_quantile: float) -> ParagraphScores:
    """Table 2 scores: windows of the whole videos against each paragraph.

    Corrected rows order each paragraph's captions by time; official-compatible rows keep the
    pickle-record order the released metric uses. The bucket value pairs each caption with the
    window holding its annotated midpoint.
    """
    win = _encode_windows(model, full, device, batch_size)
    caps = encode_captions(model, win.captions, device, batch_size)
    windows = torch.cat(win.vectors)
    p = None
    if "OT (Norton bucket)" in measures:
        aligned = (caps * windows[torch.cat(win.held)]).sum(-1)  # (C,) caption . its window
        p = aligned_bucket_value(aligned, bucket_quantile)
    v, vm = pad_groups(windows, win.groups)
    t, tm = pad_groups(caps, win.time_groups)
    ps = paragraph_scores(t, tm, v, vm, True, preset, measures, ot_eps, ot_iters,
                          bucket_value=p)
    if any(not torch.equal(a, b) for a, b in zip(win.record_groups, win.time_groups)):
        # the official metric aligns captions in pickle order; the corrected one in time
        t, tm = pad_groups(caps, win.record_groups)
        official = paragraph_scores(t, tm, v, vm, True, preset, measures, ot_eps, ot_iters,
                                    variants=("official-compatible",))
        for key in ps.scores:
            if key[1] == "official-compatible":
                ps.scores[key] = official.scores[key]
    return ps
