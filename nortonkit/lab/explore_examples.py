"""The alignment explorer's examples: one video cut into clips, its captions, the ground truth.

An :class:`AlignmentExample` holds the frame tokens of ``M`` clips and the word tokens of ``N``
captions of one video, with the ground truth where it is known;
:func:`nortonkit.lab.explore.explore_alignment` aligns it. Examples come from three places:

* :func:`example_from_synthetic`: a video of :func:`nortonkit.synthetic.example.synthetic_example`,
  cut into one clip around each caption's ASR timestamps (as in pre-training), so the
  "originally aligned pairs" that set the bucket value are the diagonal ``(i, i)``;
* :func:`example_from_data_root`: an HTM-Align video of a data root (the synthetic corpus or a
  real copy), cut into a regular grid of clips; each caption's original pair is the clip that
  holds the middle of its timestamps (``AlignmentExample.anchors``);
* :func:`example_from_encoder`: any features and captions, encoded by a trained model.

:func:`explorer_examples` builds the picker's catalogue of (lazily built) examples.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from functools import lru_cache
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..checkpoint import load_any_checkpoint
from ..data.htm_align import load_htm_align
from ..data.layout import DataRoot
from ..data.text import load_tokenizer
from ..encoders import DualEncoder
from ..masking import pad_sequences
from ..synthetic.config import NoiseConfig, SyntheticConfig
from ..synthetic.corpus import load_manifest
from ..synthetic.example import synthetic_example
from ..synthetic.world import build_world
from ..validation import check_choice, check_int_at_least, check_positive, check_tensor

__all__ = [
    "AlignmentExample",
    "example_from_synthetic",
    "example_from_encoder",
    "example_from_data_root",
    "explorer_examples",
    "clip_windows",
    "grid_clips",
]

_CHATTER_SEED = 12345  # the fixed random direction the oracle gives to pure chatter


class AlignmentExample(NamedTuple):
    """One video cut into clips, with its captions.

    Attributes
    ----------
    clip_tokens : shape (M, V, D), frame tokens of each clip (zero-padded).
    clip_mask : shape (M, V), True on valid frames.
    caption_tokens : shape (N, T, D), word tokens of each caption (zero-padded).
    caption_mask : shape (N, T), True on valid words.
    clip_labels : length M, e.g. ``"12-18 s"``.
    caption_labels : length N, the caption texts.
    truth : shape (M, N) bool, ``truth[i, j]`` = clip ``i`` shows what caption ``j`` says;
        a caption with an all-False column has no visual counterpart. ``None`` if unknown.
    title : a short description of the example.
    anchors : shape (N,) int64, the clip each caption was originally paired with (its ASR
        timestamps), ``-1`` for none. ``None`` (default) means the diagonal, clip ``j`` for
        caption ``j``.
    irrelevant : shape (N,) bool, captions with no visual counterpart in the whole video
        (chatter, or a step the video does not show); their ``truth`` columns are all False.
        ``None`` (default) means the captions whose ``truth`` column is all False.
    """

    clip_tokens: Tensor
    clip_mask: Tensor
    caption_tokens: Tensor
    caption_mask: Tensor
    clip_labels: list[str]
    caption_labels: list[str]
    truth: Tensor | None
    title: str
    anchors: Tensor | None = None
    irrelevant: Tensor | None = None


def clip_windows(caption_spans: Tensor, duration: int, min_len: int = 3,
                 max_len: int = 16) -> Tensor:
    """Integer clip windows ``[start, end)`` around each caption's ASR span, shape (N, 2).

    The caption span is rounded outwards, grown symmetrically to at least ``min_len`` seconds,
    cut to ``max_len`` seconds around its centre and clipped to ``[0, duration)``.

    >>> clip_windows(torch.tensor([[2.2, 3.1], [10.0, 40.0]]), duration=30).tolist()
    [[1, 4], [17, 30]]
    """
    check_tensor("caption_spans", caption_spans, ndim=2, shape=(None, 2))
    start = caption_spans[:, 0].floor()
    end = caption_spans[:, 1].ceil().maximum(start + 1)
    centre = (start + end) / 2
    length = (end - start).clamp(min_len, max_len)
    s = (centre - length / 2).floor().clamp(0, max(duration - 1, 0))
    e = (s + length).clamp(max=duration).maximum(s + 1)
    return torch.stack([s, e], 1).long()


def grid_clips(duration: int, start_s: float = 0.0, window_s: float | None = None,
               clip_s: int = 8) -> Tensor:
    """A regular grid of clips ``[start, end)`` in seconds covering a window, shape (M, 2).

    Parameters
    ----------
    duration : seconds of features ``T``.
    start_s : window start (seconds).
    window_s : window length; ``None`` runs to the end of the video.
    clip_s : clip length (the last clip may be shorter).

    Returns
    -------
    Tensor of shape (M, 2), int64.

    Notes
    -----
    HTM-Align scores sentences against a timeline rather than against their own ASR clips
    (Norton App. D); a fixed grid keeps the annotated segments out of the clip boundaries.

    Examples
    --------
    >>> grid_clips(30, clip_s=8).tolist()
    [[0, 8], [8, 16], [16, 24], [24, 30]]
    >>> grid_clips(100, start_s=10, window_s=20, clip_s=8).tolist()
    [[10, 18], [18, 26], [26, 30]]
    """
    check_int_at_least("duration", duration, 1)
    check_int_at_least("clip_s", clip_s, 1)
    if not 0 <= start_s < duration:
        raise ValueError(f"start_s: expected a value in [0, {duration}), got {start_s}")
    if window_s is not None:
        check_positive("window_s", window_s)
    s0 = int(math.floor(start_s))
    end = duration if window_s is None else min(duration, int(math.ceil(start_s + window_s)))
    starts = torch.arange(s0, end, clip_s)
    return torch.stack([starts, (starts + clip_s).clamp(max=end)], 1)


def _frames(features: Tensor, windows: Tensor) -> tuple[Tensor, Tensor]:
    clips = [features[s:e] for s, e in windows.tolist()]
    return pad_sequences(clips)


def _oracle_caption_tokens(caption_features: Tensor) -> list[Tensor]:
    """One token per caption; chatter (zero oracle vector) gets a fixed random direction."""
    gen = torch.Generator().manual_seed(_CHATTER_SEED)
    chatter = torch.randn(caption_features.shape[1], generator=gen)
    caps = caption_features.float().clone()
    caps[caps.norm(dim=1) == 0] = chatter / chatter.norm()
    return [c[None] for c in caps]


def example_from_synthetic(example, word_tokens: list[Tensor] | None = None,
                           max_clip_len: int = 16) -> AlignmentExample:
    """An :class:`AlignmentExample` from :func:`nortonkit.synthetic.example.synthetic_example`.

    Parameters
    ----------
    example : a :class:`nortonkit.synthetic.example.SyntheticExample` with ``N`` captions.
    word_tokens : ``N`` tensors of shape (T_j, D), e.g. from a trained text encoder; default the
        generator's oracle sentence embedding as a single token (chatter, which the oracle maps
        to zero, gets a fixed random direction).
    max_clip_len : longest clip in seconds.

    Returns
    -------
    AlignmentExample
        ``M = N`` clips, one per caption: the per-second features inside each caption's clip
        window (:func:`clip_windows`). ``truth[i, j]`` when clip ``i`` overlaps the true span of
        the step that caption ``j`` describes; ``irrelevant[j]`` when caption ``j`` describes no
        step (``aligned_step_per_caption[j] < 0``).

    Notes
    -----
    The clip-per-caption cut of Norton's pre-training (Sec. 3.1: clips and captions are paired
    by ASR timestamps), so the diagonal holds the "originally aligned pairs" of Eq. 6.

    Examples
    --------
    >>> from nortonkit.synthetic.example import synthetic_example
    >>> ex = example_from_synthetic(synthetic_example(seed=0, n_steps=3))
    >>> ex.clip_tokens.shape[0] == ex.caption_tokens.shape[0] == len(ex.caption_labels)
    True
    """
    feats = example.features.float()
    windows = clip_windows(example.caption_spans, len(feats), max_len=max_clip_len)
    clips, clip_mask = _frames(feats, windows)
    if word_tokens is None:
        word_tokens = _oracle_caption_tokens(example.caption_features)
    cap_tokens, cap_mask = pad_sequences(word_tokens)
    step = example.aligned_step_per_caption
    truth = torch.zeros(len(windows), len(step), dtype=torch.bool)
    for j, sid in enumerate(step.tolist()):
        if sid < 0:
            continue
        s, e = example.step_spans[sid].tolist()
        truth[:, j] = (windows[:, 0] < e) & (windows[:, 1] > s)
    labels = [f"{s}-{e} s" for s, e in windows.tolist()]
    return AlignmentExample(clips, clip_mask, cap_tokens, cap_mask, labels,
                            list(example.captions), truth, "synthetic video",
                            irrelevant=step < 0)


@torch.no_grad()
def example_from_encoder(model, features: np.ndarray | Tensor, caption_spans: Tensor,
                         captions: list[str], tokenizer, truth: Tensor | None = None,
                         title: str = "video", max_clip_len: int = 16,
                         max_text_len: int = 32, windows: Tensor | None = None,
                         anchors: Tensor | None = None,
                         device: str | torch.device = "cpu",
                         irrelevant: Tensor | None = None) -> AlignmentExample:
    """An :class:`AlignmentExample` encoded by a :class:`nortonkit.encoders.DualEncoder`.

    Parameters
    ----------
    model : a DualEncoder (moved to ``device`` and put in eval mode).
    features : shape (T, 512), per-second video features.
    caption_spans : shape (N, 2), ASR seconds of each caption.
    captions : length N, caption texts.
    tokenizer : a bert-base-uncased tokenizer (:func:`nortonkit.data.text.load_tokenizer`).
    truth : shape (M, N) bool, optional.
    windows : shape (M, 2), clip ``[start, end)`` seconds; default one clip per caption
        (:func:`clip_windows`).
    anchors : shape (N,), see :class:`AlignmentExample`.
    device : where to run the encoders; the returned tokens are on the CPU.
    irrelevant : shape (N,) bool, see :class:`AlignmentExample`.

    Returns
    -------
    AlignmentExample
        Tokens are the encoders' last hidden states restricted to the valid frame / word
        positions (CLS excluded), as in Norton's fine-grained similarity (Eq. 5).

    Examples
    --------
    >>> from nortonkit.encoders import DualEncoder, EncoderConfig
    >>> from nortonkit.data.text import load_tokenizer
    >>> _ = torch.manual_seed(0)
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> ex = example_from_encoder(model, torch.randn(20, 512), torch.tensor([[1., 4.], [9., 15.]]),
    ...                           ["whisk the eggs", "fry the onion"], load_tokenizer())
    >>> ex.clip_tokens.shape[0], ex.caption_mask.shape[0], ex.clip_labels
    (2, 2, ['1-4 s', '9-15 s'])
    """
    feats = torch.as_tensor(np.asarray(features), dtype=torch.float32)
    check_tensor("features", feats, ndim=2)
    if windows is None:
        windows = clip_windows(caption_spans, len(feats), max_len=max_clip_len)
    clips, clip_mask = _frames(feats, windows)
    model.to(device).eval()
    video = model.encode_video(clips.to(device), clip_mask.to(device))
    enc = tokenizer(list(captions), padding=True, truncation=True, max_length=max_text_len,
                    return_tensors="pt")
    text = model.encode_text(enc["input_ids"].to(device),
                             enc["attention_mask"].bool().to(device))
    labels = [f"{s}-{e} s" for s, e in windows.tolist()]
    return AlignmentExample(video.tokens.float().cpu(), video.mask.cpu(),
                            text.tokens.float().cpu(), text.mask.cpu(), labels, list(captions),
                            truth, title, anchors, irrelevant)


@lru_cache(maxsize=2)
def _oracle_world(config_json: str):
    """The synthetic world of a corpus manifest's ``config`` (JSON text, so that it is cached)."""
    cfg = json.loads(config_json)
    cfg["noise"] = NoiseConfig(**cfg.get("noise", {}))
    return build_world(SyntheticConfig(**cfg))


def _load_model(checkpoint: Any):
    """``checkpoint`` itself if it is a DualEncoder, else the model of that checkpoint path."""
    if isinstance(checkpoint, DualEncoder):
        return checkpoint
    if not isinstance(checkpoint, (str, os.PathLike)):
        raise ValueError(f"checkpoint: expected a path or a DualEncoder, got "
                         f"{type(checkpoint).__name__}")
    return load_any_checkpoint(checkpoint)[0]


def example_from_data_root(
    data_root: Any,
    video_id: str,
    checkpoint: Any = None,
    *,
    start_s: float = 0.0,
    window_s: float | None = 96.0,
    clip_s: int = 8,
    device: str | torch.device = "cpu",
    tokenizer: Any = None,
) -> AlignmentExample:
    """An HTM-Align video of a data root as an :class:`AlignmentExample`.

    Parameters
    ----------
    data_root : path-like or :class:`nortonkit.data.layout.DataRoot`, with
        ``how2-align/htm_align.json`` and ``how2-align/<video_id>.npy`` (real or synthetic).
    video_id : the video.
    checkpoint : a checkpoint directory (:func:`nortonkit.checkpoint.load_checkpoint`) or a
        loaded DualEncoder. ``None`` uses the synthetic world's oracle (raw frame features and
        the oracle caption embedding; synthetic corpora only).
    start_s, window_s : the time window shown (``window_s=None``: to the end of the video);
        captions whose timestamps' middle lies in the window are kept.
    clip_s : clip length of the regular grid (:func:`grid_clips`).
    device : where a checkpoint's encoders run.
    tokenizer : default :func:`nortonkit.data.text.load_tokenizer`.

    Returns
    -------
    AlignmentExample
        ``M`` grid clips x ``N`` captions. ``truth[i, j]``: caption ``j`` is alignable and clip
        ``i`` overlaps its annotated segment. ``anchors[j]``: the clip holding the middle of
        caption ``j``'s ASR timestamps (a synthetic corpus keeps them under
        ``ground_truth/htm_align.json``; a real HTM-Align file stores the annotated segment
        in place of the ASR time for alignable sentences, so there the anchors of those
        sentences follow the annotation).

    Notes
    -----
    Norton App. D (HTM-Align: 80 videos with manually checked sentence alignments).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.synthetic.corpus import ensure_corpus
    >>> root = ensure_corpus(tempfile.mkdtemp(), "smoke")
    >>> vid = sorted(json.loads(root.htm_align_json.read_text()))[0]
    >>> ex = example_from_data_root(root, vid, window_s=48)
    >>> ex.clip_labels[:2], ex.truth.shape[0]
    (['0-8 s', '8-16 s'], 6)
    """
    root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
    videos = load_htm_align(root, on_missing="skip")
    if video_id not in videos.video_ids:
        raise ValueError(f"video_id: expected one of the {len(videos)} HTM-Align videos of "
                         f"{root.htm_align_json} (e.g. {videos.video_ids[:3]}), got {video_id!r}")
    video = videos[videos.video_ids.index(video_id)]
    feats = video.features.float()
    windows = grid_clips(len(feats), start_s, window_s, clip_s)  # (M, 2)
    spans = video.segments.clone()  # (S, 2)
    manifest = load_manifest(root.root)
    gt_path = root.ground_truth / "htm_align.json"
    if manifest is not None and gt_path.is_file():
        asr = json.loads(gt_path.read_text()).get(video_id, {}).get("asr")
        if asr is not None and len(asr) == len(spans):
            spans = torch.tensor(asr, dtype=torch.float32).reshape(-1, 2)
    mid = spans.mean(1)  # (S,)
    lo, hi = int(windows[0, 0]), int(windows[-1, 1])
    keep = ((mid >= lo) & (mid < hi)).nonzero().flatten()
    if len(keep) == 0:
        raise ValueError(f"start_s, window_s: no caption of {video_id!r} has its timestamps in "
                         f"[{lo}, {hi}) s; expected at least one (video is {len(feats)} s)")
    texts = [video.texts[j] for j in keep.tolist()]
    seg = video.segments[keep]  # (N, 2) annotated segments of alignable captions
    truth = video.alignable[keep][None] & (windows[:, :1] < seg[None, :, 1]) & \
        (windows[:, 1:] > seg[None, :, 0])  # (M, N)
    inside = (windows[:, :1] <= mid[keep][None]) & (mid[keep][None] < windows[:, 1:])  # (M, N)
    anchors = torch.where(inside.any(0), inside.float().argmax(0), -1).long()  # (N,)
    irrelevant = ~video.alignable[keep].bool()  # (N,)
    title = f"{video_id} ({lo}-{hi} s)"
    if checkpoint is not None:
        tok = load_tokenizer() if tokenizer is None else tokenizer
        return example_from_encoder(_load_model(checkpoint), feats, spans[keep], texts, tok,
                                    truth=truth, title=title, windows=windows, anchors=anchors,
                                    device=device, irrelevant=irrelevant)
    if manifest is None:
        raise ValueError(
            f"checkpoint: required for {root.root} (no synthetic-corpus manifest there, so no "
            "oracle encoder); pass a checkpoint directory"
        )
    world = _oracle_world(json.dumps(manifest["config"], sort_keys=True))
    caps = torch.from_numpy(np.stack([world.embed_text(t) for t in texts])).float()
    cap_tokens, cap_mask = pad_sequences(_oracle_caption_tokens(caps))
    clips, clip_mask = _frames(feats, windows)
    labels = [f"{s}-{e} s" for s, e in windows.tolist()]
    return AlignmentExample(clips, clip_mask, cap_tokens, cap_mask, labels, texts, truth, title,
                            anchors, irrelevant)


# The in-memory synthetic videos of the picker: (name, n_steps, NoiseConfig overrides).
_SYNTHETIC_KINDS = (
    ("clean narration", 4, dict(irrelevant_rate=0.0, async_rate=0.0, extra_sentence_rate=0.0,
                                unnarrated_rate=0.0)),
    ("HTM-Align-like noise", 6, {}),
    ("asynchronous narration", 6, dict(irrelevant_rate=0.0, async_rate=1.0, unnarrated_rate=0.0)),
    ("mostly irrelevant speech", 5, dict(irrelevant_rate=0.8, unnarrated_rate=0.0)),
)


def explorer_examples(
    data_root: Any = None,
    checkpoint: Any = None,
    dataset: str = "synthetic",
    smoke: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    max_videos: int | None = None,
) -> dict[str, Callable[[], AlignmentExample]]:
    """The explorer's picker: example name -> function that builds it (on first selection).

    Parameters
    ----------
    data_root : ``None`` for in-memory synthetic videos (:func:`example_from_synthetic`);
        otherwise a data root whose HTM-Align videos are listed (:func:`example_from_data_root`).
    checkpoint : checkpoint directory; with ``data_root`` it encodes the videos (required for
        real data). The in-memory synthetic videos always use the oracle embedding.
    dataset : ``"synthetic"``, or ``"real"`` / ``"htm_align"`` (the HTM-Align videos of
        ``data_root``, which is then required). ``"real"`` is what ``make reproduce`` passes
        to every notebook.
    smoke : keep two examples only (papermill smoke runs).
    seed : seed of the synthetic videos.
    device : where a checkpoint's encoders run.
    max_videos : list at most this many data-root videos.

    Returns
    -------
    dict of str to callable
        Ordered; each callable returns an :class:`AlignmentExample`. A checkpoint is loaded
        once, when the first example that needs it is built.

    Notes
    -----
    The synthetic videos span Norton's noise kinds (Sec. 1): clean narration, HTM-Align-like
    noise, asynchronous narration and mostly irrelevant speech.

    Examples
    --------
    >>> catalog = explorer_examples(smoke=True)
    >>> list(catalog)
    ['synthetic 0: clean narration', 'synthetic 0: HTM-Align-like noise']
    >>> catalog['synthetic 0: clean narration']().title
    'synthetic 0: clean narration'
    """
    check_choice("dataset", dataset, ("synthetic", "real", "htm_align"))
    if max_videos is not None:
        check_int_at_least("max_videos", max_videos, 1)
    if data_root is None:
        if dataset != "synthetic":
            raise ValueError(f"data_root: dataset={dataset!r} needs a data root with "
                             "how2-align/htm_align.json, got None")
        if checkpoint is not None:
            raise ValueError("checkpoint: the in-memory synthetic videos use the oracle "
                             "embedding; pass data_root to encode a corpus with a checkpoint")
        kinds = _SYNTHETIC_KINDS[:2] if smoke else _SYNTHETIC_KINDS
        return {f"synthetic {seed}: {name}": _synthetic_builder(seed, name, n_steps, noise)
                for name, n_steps, noise in kinds}

    ids = load_htm_align(data_root, on_missing="skip").video_ids
    limit = 2 if smoke else max_videos
    ids = ids[:limit] if limit is not None else ids
    model: list[Any] = []

    def build(vid: str) -> AlignmentExample:
        if checkpoint is not None and not model:
            model.append(_load_model(checkpoint))
        return example_from_data_root(data_root, vid, model[0] if model else None,
                                      device=device)

    return {f"htm-align {vid}": (lambda vid=vid: build(vid)) for vid in ids}


def _synthetic_builder(seed: int, name: str, n_steps: int,
                       noise: dict[str, float]) -> Callable[[], AlignmentExample]:
    def build() -> AlignmentExample:
        ex = example_from_synthetic(synthetic_example(seed=seed, n_steps=n_steps,
                                                      noise=NoiseConfig(**noise)))
        return ex._replace(title=f"synthetic {seed}: {name}")

    return build
