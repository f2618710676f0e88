"""YouCookII evaluation sets: clips, video paragraphs without and with background.

Files (``docs/protocols.md`` §7.2-7.4)::

    youcook/youcookii_annotations_trainval.json   {"database": {vid: {"annotations":
                                                  [{"segment": [s, e], "sentence": str}, ...]}}}
    youcook/youcook_val.pkl                        list of {"id": "<vid>_<clip_idx>", "caption"}
    youcook/youcook_validation_feature_fps30_512/<vid>.npy

Records whose video has no feature file are skipped and counted (the official meta processor
filters them the same way). Every other problem raises an error naming the file and field.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..io import safe_pickle_load
from .features import (
    FEATURE_DIM,
    ClipSet,
    SkipReport,
    feature_path,
    load_feature,
    pad_clips,
    read_json,
    resolve_paths,
    windowed_video,
)

__all__ = [
    "YoucookRecord",
    "read_youcook_records",
    "load_youcook_clips",
    "YoucookParagraphs",
    "load_youcook_paragraphs",
    "YoucookFullVideo",
    "YoucookFullVideos",
    "load_youcook_full_videos",
]


class YoucookRecord(NamedTuple):
    """One clip record of ``youcook_val.pkl`` resolved against the annotations.

    Attributes
    ----------
    key : str
        ``"<video_id>_<clip_idx>"``.
    video_id : str
    clip_idx : int
        Index into the video's annotation list.
    segment : tuple[float, float]
        Annotated ``[start, end]`` seconds.
    caption : str
        Annotation sentence (``use_annotation_text``) or the pickle's caption.
    """

    key: str
    video_id: str
    clip_idx: int
    segment: tuple[float, float]
    caption: str


def _paths(data_root: Any, val_pkl: Any, annotations: Any, feature_dir: Any) -> dict[str, Path]:
    return resolve_paths(
        data_root,
        val_pkl=(val_pkl, "youcook_val_pkl"),
        annotations=(annotations, "youcook_annotations"),
        feature_dir=(feature_dir, "youcook_features"),
    )


def read_youcook_records(
    val_pkl: str | os.PathLike,
    annotations: str | os.PathLike,
    feature_dir: str | os.PathLike,
    use_annotation_text: bool = True,
) -> tuple[list[YoucookRecord], SkipReport]:
    """Resolve ``youcook_val.pkl`` records, keeping those whose video has a feature file.

    Parameters
    ----------
    val_pkl, annotations, feature_dir : path-like
        The three YouCookII inputs (see the module docstring).
    use_annotation_text : bool
        Use the annotation ``sentence`` (Norton's setting) instead of the pickle's
        stop-word-stripped ``caption``.

    Returns
    -------
    records : list of YoucookRecord
        In pickle order.
    skipped : SkipReport
        Records of videos without features (not yet emitted).

    Notes
    -----
    ``docs/protocols.md`` §7.2: ``id`` is split at its last ``_``; the clip index points into
    ``database[vid]["annotations"]``.

    Examples
    --------
    >>> import tempfile, json, pickle
    >>> d = Path(tempfile.mkdtemp()); (d / "f").mkdir()
    >>> ann = {"database": {"my_vid": {"annotations": [{"segment": [1, 4], "sentence": "x"}]}}}
    >>> _ = (d / "a.json").write_text(json.dumps(ann))
    >>> _ = (d / "v.pkl").write_bytes(pickle.dumps([{"id": "my_vid_0"}, {"id": "gone_0"}]))
    >>> np.save(d / "f" / "my_vid.npy", np.ones((5, 4), np.float16))
    >>> recs, skipped = read_youcook_records(d / "v.pkl", d / "a.json", d / "f")
    >>> [(r.video_id, r.clip_idx, r.segment, r.caption) for r in recs], dict(skipped.counts)
    ([('my_vid', 0, (1.0, 4.0), 'x')], {'no feature file': 1})
    """
    val_pkl, annotations, feature_dir = Path(val_pkl), Path(annotations), Path(feature_dir)
    recs = safe_pickle_load(val_pkl)
    if not isinstance(recs, list):
        raise ValueError(f"{val_pkl}: expected a list of dicts, got {type(recs).__name__}")
    db = read_json(annotations)
    if not isinstance(db, dict) or not isinstance(db.get("database"), dict):
        raise ValueError(f"{annotations}: expected {{'database': {{video_id: ...}}}}")
    db = db["database"]
    if not feature_dir.is_dir():
        raise FileNotFoundError(f"{feature_dir}: feature folder not found")
    have = {p.stem for p in feature_dir.glob("*.npy")}
    report = SkipReport(f"youcook records of {val_pkl.name}")
    out: list[YoucookRecord] = []
    seen: set[str] = set()
    for i, rec in enumerate(recs):
        where = f"{val_pkl}: record {i}"
        if not isinstance(rec, dict) or not isinstance(rec.get("id"), str):
            raise ValueError(f"{where}: expected a dict with a string 'id'")
        key = rec["id"]
        vid, _, idx = key.rpartition("_")
        if not vid or not idx.isdigit():
            raise ValueError(f"{where}['id']: expected '<video_id>_<clip_idx>', got {key!r}")
        if key in seen:
            raise ValueError(f"{where}['id']: duplicate id {key!r}")
        seen.add(key)
        if vid not in have:
            report.add(vid, "no feature file")
            continue
        anns = db.get(vid, {}).get("annotations") if isinstance(db.get(vid), dict) else None
        if not isinstance(anns, list) or int(idx) >= len(anns):
            raise ValueError(
                f"{annotations}: database[{vid!r}]['annotations'][{int(idx)}] missing "
                f"(needed by {val_pkl.name} id {key!r})"
            )
        ann = anns[int(idx)]
        awhere = f"{annotations}: database[{vid!r}]['annotations'][{int(idx)}]"
        seg = ann.get("segment") if isinstance(ann, dict) else None
        try:
            s, e = (float(x) for x in seg)
        except (TypeError, ValueError):
            raise ValueError(
                f"{awhere}['segment']: expected [start, end] seconds, got {seg!r}"
            ) from None
        if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e <= s:
            raise ValueError(f"{awhere}['segment']: expected 0 <= start < end, got {seg!r}")
        if use_annotation_text:
            cap, cwhere = ann.get("sentence"), f"{awhere}['sentence']"
        else:
            cap, cwhere = rec.get("caption"), f"{where}['caption']"
        if not isinstance(cap, str) or not cap.strip():
            raise ValueError(f"{cwhere}: expected a non-empty caption string, got {cap!r}")
        out.append(YoucookRecord(key, vid, int(idx), (s, e), cap))
    return out, report


def _clip_frames(
    feats: np.ndarray, seg: tuple[float, float], path: Path, key: str, annotations: Path
) -> tuple:
    start, end = math.floor(seg[0]), math.ceil(seg[1])
    if start >= len(feats):
        raise ValueError(
            f"{path}: segment {list(seg)} of {key!r} (in {annotations}) starts at or after the "
            f"end of the features (T = {len(feats)} s); the feature file looks truncated or "
            "the annotation is wrong"
        )
    return start, min(end, len(feats))


def load_youcook_clips(
    data_root: Any = None,
    *,
    val_pkl: str | os.PathLike | None = None,
    annotations: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    use_annotation_text: bool = True,
    max_video_len: int = 32,
    expected_dim: int = FEATURE_DIM,
) -> ClipSet:
    """The YouCookII clip-retrieval set: one annotated segment and its sentence per item.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; the keyword paths below override its defaults.
    val_pkl, annotations, feature_dir : path-like, optional
        ``youcook_val.pkl``, ``youcookii_annotations_trainval.json``, the feature folder.
    use_annotation_text : bool
        Caption = annotation sentence (Norton) rather than the pickle's caption.
    max_video_len : int
        ``V``: the first seconds of each segment kept (32).
    expected_dim : int
        Feature width ``D``.

    Returns
    -------
    ClipSet
        ``video (N, V, D)``, ``video_mask (N, V)``, per-clip ``video_ids``, ``keys``,
        ``captions``, ``spans (N, 2)`` = ``[floor(start), min(ceil(end), T))`` seconds.

    Raises
    ------
    ValueError
        Malformed records/annotations, corrupt features, or a segment that starts after the
        end of its feature file (messages name the file and field).

    Notes
    -----
    ``docs/protocols.md`` §7.2 (``YoucookMetaProcessor``, ``YoucookVideoProcessor``,
    ``DSAligner``): ``feat[start:end]`` then the first 32 s; the paper's test set has 436
    videos and 3,350 pairs (Norton §4.1).

    Examples
    --------
    >>> import tempfile, json, pickle
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.youcook_features.mkdir(parents=True)
    >>> ann = {"database": {"v1": {"annotations": [{"segment": [2, 6], "sentence": "dice"}]}}}
    >>> _ = r.youcook_annotations.write_text(json.dumps(ann))
    >>> _ = r.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "v1_0", "caption": "dice"}]))
    >>> np.save(r.youcook_features / "v1.npy", np.ones((10, 4), np.float16))
    >>> c = load_youcook_clips(r, expected_dim=4, max_video_len=8)
    >>> c.video.shape, c.video_mask.sum().item(), c.captions, c.spans.tolist()
    (torch.Size([1, 8, 4]), 4, ['dice'], [[2, 6]])
    """
    p = _paths(data_root, val_pkl, annotations, feature_dir)
    records, report = read_youcook_records(
        p["val_pkl"], p["annotations"], p["feature_dir"], use_annotation_text
    )
    if not records:
        raise ValueError(f"{p['val_pkl']}: no record has features in {p['feature_dir']}; "
                         f"{report.summary()}")
    cache: dict[str, np.ndarray] = {}
    clips, spans = [], []
    for r in records:
        path = feature_path(p["feature_dir"], r.video_id)
        if r.video_id not in cache:
            cache = {r.video_id: load_feature(path, expected_dim)}  # records are grouped
        feats = cache[r.video_id]
        s, e = _clip_frames(feats, r.segment, path, r.key, p["annotations"])
        clips.append(feats[s:e])
        spans.append((s, e))
    video, mask = pad_clips(clips, max_video_len)
    report.emit()
    return ClipSet(
        video=video, video_mask=mask, video_ids=[r.video_id for r in records],
        keys=[r.key for r in records], captions=[r.caption for r in records],
        spans=torch.as_tensor(spans, dtype=torch.int64).reshape(-1, 2), skipped=report,
    )


class YoucookParagraphs(NamedTuple):
    """Video-paragraph retrieval, background removed: each video's annotated clips in order.

    Attributes
    ----------
    clips : ClipSet
        All clips (as :func:`load_youcook_clips`), in pickle order.
    video_ids : list[str], length G
        Videos (first-appearance order).
    blocks : list of Tensor, length G
        int64 indices into ``clips`` of each video's clips, sorted by annotation index
        (chronological). A paragraph's captions and a video's clips share these indices.
    contiguous : bool
        Whether every block is an ascending run of consecutive indices, as the official
        metric silently assumes (``video_inds[0]:video_inds[-1]+1`` slices).
    """

    clips: ClipSet
    video_ids: list[str]
    blocks: list[Tensor]
    contiguous: bool


def load_youcook_paragraphs(data_root: Any = None, **kwargs: Any) -> YoucookParagraphs:
    """YouCookII video-paragraph sets with background removed (clips = annotated segments).

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root.
    **kwargs :
        Passed to :func:`load_youcook_clips`.

    Returns
    -------
    YoucookParagraphs

    Notes
    -----
    ``docs/protocols.md`` §7.3 and §9 item 24: the blocks are built explicitly from per-video
    index lists rather than assumed contiguous in loader order.

    Examples
    --------
    >>> import tempfile, json, pickle
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.youcook_features.mkdir(parents=True)
    >>> seg = lambda s, e, t: {"segment": [s, e], "sentence": t}
    >>> ann = {"database": {"a": {"annotations": [seg(0, 3, "x"), seg(4, 8, "y")]},
    ...                     "b": {"annotations": [seg(1, 5, "z")]}}}
    >>> _ = r.youcook_annotations.write_text(json.dumps(ann))
    >>> recs = [{"id": i} for i in ["a_1", "b_0", "a_0"]]
    >>> _ = r.youcook_val_pkl.write_bytes(pickle.dumps(recs))
    >>> for v in "ab": np.save(r.youcook_features / f"{v}.npy", np.ones((10, 4), np.float16))
    >>> p = load_youcook_paragraphs(r, expected_dim=4)
    >>> p.video_ids, [b.tolist() for b in p.blocks], p.contiguous
    (['a', 'b'], [[2, 0], [1]], False)
    """
    clips = load_youcook_clips(data_root, **kwargs)
    order: dict[str, list[int]] = {}
    for i, vid in enumerate(clips.video_ids):
        order.setdefault(vid, []).append(i)
    blocks = []
    for idx in order.values():
        idx.sort(key=lambda i: int(clips.keys[i].rpartition("_")[2]))
        blocks.append(torch.as_tensor(idx, dtype=torch.int64))
    contiguous = all(
        bool((b == torch.arange(int(b[0]), int(b[0]) + len(b))).all()) for b in blocks
    )
    return YoucookParagraphs(clips, list(order), blocks, contiguous)


class YoucookFullVideo(NamedTuple):
    """One YouCookII video with background kept.

    Attributes
    ----------
    video_id : str
    windows : Tensor, shape (W, V, D)
        float32 features of consecutive windows, zero-padded to ``V = max_video_len``.
    window_mask : Tensor, shape (W, V)
        bool, True on valid seconds.
    window_spans : Tensor, shape (W, 2)
        int64 ``[start, end)`` seconds of each window.
    captions : list[str], length C
        The video's captions in pickle-record order.
    caption_spans : Tensor, shape (C, 2)
        float32 annotated ``[start, end]`` seconds of each caption.
    """

    video_id: str
    windows: Tensor
    window_mask: Tensor
    window_spans: Tensor
    captions: list[str]
    caption_spans: Tensor


@dataclass
class YoucookFullVideos(Sequence):
    """Lazily loaded :class:`YoucookFullVideo` items (features are read on access).

    Attributes
    ----------
    video_ids : list[str]
        Videos with features, in first-appearance order of the pickle.
    records : dict[str, list[YoucookRecord]]
        Each video's records in pickle order.
    feature_dir : Path
    window, stride, max_video_len, expected_dim : int
    skipped : SkipReport
    """

    video_ids: list[str]
    records: dict[str, list[YoucookRecord]]
    feature_dir: Path
    window: int
    stride: int
    max_video_len: int
    expected_dim: int
    skipped: SkipReport

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> YoucookFullVideo:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("YoucookFullVideos does not support slicing; index one video")
        vid = self.video_ids[i]
        _, spans, windows, mask = windowed_video(
            self.feature_dir, vid, self.expected_dim, self.window, self.stride, self.max_video_len)
        recs = self.records[vid]
        return YoucookFullVideo(
            video_id=vid, windows=windows, window_mask=mask,
            window_spans=torch.from_numpy(spans),
            captions=[r.caption for r in recs],
            caption_spans=torch.tensor([r.segment for r in recs], dtype=torch.float32),
        )

    def __iter__(self) -> Iterator[YoucookFullVideo]:
        for i in range(len(self)):
            yield self[i]

    @property
    def text_lengths(self) -> list[int]:
        """Captions per video (the official ``text_lengths``)."""
        return [len(self.records[v]) for v in self.video_ids]


def load_youcook_full_videos(
    data_root: Any = None,
    *,
    val_pkl: str | os.PathLike | None = None,
    annotations: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    use_annotation_text: bool = True,
    window: int = 16,
    stride: int = 16,
    max_video_len: int = 32,
    expected_dim: int = FEATURE_DIM,
) -> YoucookFullVideos:
    """YouCookII video-paragraph sets with background kept: whole videos in fixed windows.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; the keyword paths override it.
    val_pkl, annotations, feature_dir : path-like, optional
        As in :func:`load_youcook_clips`.
    use_annotation_text : bool
        Caption = annotation sentence.
    window, stride : int
        Window length and step in seconds (16 / 16: non-overlapping windows from 0, the last
        one partial).
    max_video_len : int
        ``V``, windows are zero-padded to this length (32, as the official yaml).
    expected_dim : int
        Feature width ``D``.

    Returns
    -------
    YoucookFullVideos
        A sequence of :class:`YoucookFullVideo`, loaded on access.

    Notes
    -----
    ``docs/protocols.md`` §7.4 (``YoucookFullVideoBGMetaProcessor``,
    ``YoucookFullVideoBGAligner``). The official order of videos is ``list(set(...))``
    (arbitrary); here it is the first appearance in the pickle. Recall does not depend on it.

    Examples
    --------
    >>> import tempfile, json, pickle
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.youcook_features.mkdir(parents=True)
    >>> ann = {"database": {"v": {"annotations": [{"segment": [3, 9], "sentence": "fry"}]}}}
    >>> _ = r.youcook_annotations.write_text(json.dumps(ann))
    >>> _ = r.youcook_val_pkl.write_bytes(pickle.dumps([{"id": "v_0"}]))
    >>> np.save(r.youcook_features / "v.npy", np.ones((40, 4), np.float16))
    >>> v = load_youcook_full_videos(r, expected_dim=4)[0]
    >>> v.windows.shape, v.window_spans.tolist(), v.captions
    (torch.Size([3, 32, 4]), [[0, 16], [16, 32], [32, 40]], ['fry'])
    """
    for name, v in (("window", window), ("stride", stride), ("max_video_len", max_video_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if max_video_len < window:
        raise ValueError(f"max_video_len: expected >= window ({window}), got {max_video_len}")
    p = _paths(data_root, val_pkl, annotations, feature_dir)
    records, report = read_youcook_records(
        p["val_pkl"], p["annotations"], p["feature_dir"], use_annotation_text
    )
    by_video: dict[str, list[YoucookRecord]] = {}
    for r in records:
        by_video.setdefault(r.video_id, []).append(r)
    report.emit()
    return YoucookFullVideos(list(by_video), by_video, p["feature_dir"], window, stride,
                             max_video_len, expected_dim, report)
