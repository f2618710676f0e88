"""COIN action segmentation: sliding windows over whole videos with per-second step labels.

Files (``docs/protocols.md`` §7.7)::

    coin/COIN.json    {"database": {vid: {"subset": "training" | "testing",
                       "annotation": [{"segment": [s, e], "id": "<int>", "label": str}, ...]}}}
    coin/coin_feature_fps30_512/<vid>.npy

Label ids are the annotation ``id`` values themselves; id 0 is background ("O"). The label set
is built from the *testing* subset, as in the official code; for the released COIN that gives
778 step labels and ``n_classes = 779``. Here ``n_classes = max id + 1`` is derived from the
data. Videos without a feature file are skipped and counted, as the official meta processor
skips them.
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

from .features import (
    FEATURE_DIM,
    SkipReport,
    feature_path,
    read_json,
    resolve_paths,
    windowed_video,
)

__all__ = ["IGNORE_INDEX", "CoinVideo", "CoinSet", "load_coin", "segment_targets"]

IGNORE_INDEX = -100  # padding positions in window targets (cross-entropy ignore_index)
_SUBSETS = {"train": "training", "training": "training", "valid": "testing",
            "test": "testing", "testing": "testing"}


def segment_targets(
    n_frames: int, starts: Sequence[float], ends: Sequence[float], labels: Sequence[int],
    offset: int = 0,
) -> np.ndarray:
    """Per-second labels of the frames ``[offset, offset + n_frames)``; 0 = background.

    Segment ``k`` labels seconds ``[floor(s_k) - offset, ceil(e_k) - offset)`` clipped to the
    range; later segments overwrite earlier ones.

    Parameters
    ----------
    n_frames : int
        Length of the target.
    starts, ends : sequence of float, length S
        Segment times in seconds.
    labels : sequence of int, length S
        Label ids (>= 1).
    offset : int
        Start second of the window.

    Returns
    -------
    numpy.ndarray, shape (n_frames,)
        int64 labels.

    Notes
    -----
    ``docs/protocols.md`` §7.7 (``COINActionSegmentationAligner``).

    Examples
    --------
    >>> segment_targets(10, [1.5, 4.0], [4.2, 6.0], [3, 7]).tolist()
    [0, 3, 3, 3, 7, 7, 0, 0, 0, 0]
    >>> segment_targets(4, [1.5], [4.2], [3], offset=3).tolist()
    [3, 3, 0, 0]
    """
    out = np.zeros(int(n_frames), dtype=np.int64)
    for s, e, lab in zip(starts, ends, labels):
        if offset < e and s < offset + n_frames:
            a = max(0, math.floor(s) - offset)
            b = min(n_frames, math.ceil(e) - offset)
            out[a:b] = lab
    return out


class CoinVideo(NamedTuple):
    """One COIN video cut into windows.

    Attributes
    ----------
    video_id : str
    windows : Tensor, shape (W, V, D)
        float32 window features, zero-padded to ``V = max_video_len``.
    window_mask : Tensor, shape (W, V)
        bool, True on valid seconds.
    window_starts : Tensor, shape (W,)
        int64 start second of each window.
    targets : Tensor, shape (W, V)
        int64 per-position labels: ``-100`` on padding, 0 on background, else the step id.
    video_targets : Tensor, shape (T,)
        int64 per-second labels of the whole video.
    segments : Tensor, shape (S, 2)
        float32 annotated ``[start, end]`` seconds.
    labels : Tensor, shape (S,)
        int64 step id of each segment.
    """

    video_id: str
    windows: Tensor
    window_mask: Tensor
    window_starts: Tensor
    targets: Tensor
    video_targets: Tensor
    segments: Tensor
    labels: Tensor


@dataclass
class CoinSet(Sequence):
    """COIN videos of one subset, loaded on access (a sequence of :class:`CoinVideo`).

    Attributes
    ----------
    video_ids : list[str]
        Videos of the subset that have features, in JSON order.
    annotations : dict[str, tuple[ndarray, ndarray]]
        Per video ``(segments (S, 2) float32, labels (S,) int64)``.
    label_names : list[str], length n_classes
        ``label_names[i]`` is the step text of id ``i``; ``label_names[0] = "O"``
        (background); ids missing from the testing subset are ``"none"``.
    n_classes : int
        ``max id + 1`` (779 for the released COIN).
    feature_dir : Path
    window, stride, max_video_len, expected_dim : int
    skipped : SkipReport
    """

    video_ids: list[str]
    annotations: dict[str, tuple[np.ndarray, np.ndarray]]
    label_names: list[str]
    n_classes: int
    feature_dir: Path
    window: int
    stride: int
    max_video_len: int
    expected_dim: int
    skipped: SkipReport

    def __len__(self) -> int:
        return len(self.video_ids)

    def __getitem__(self, i: int) -> CoinVideo:  # type: ignore[override]
        if isinstance(i, slice):
            raise TypeError("CoinSet does not support slicing; index one video")
        vid = self.video_ids[i]
        feats, spans, windows, mask = windowed_video(
            self.feature_dir, vid, self.expected_dim, self.window, self.stride, self.max_video_len)
        segs, labels = self.annotations[vid]
        targets = torch.full(mask.shape, IGNORE_INDEX, dtype=torch.int64)
        for w, (s, e) in enumerate(spans.tolist()):
            t = segment_targets(e - s, segs[:, 0], segs[:, 1], labels, offset=s)
            targets[w, : e - s] = torch.from_numpy(t)
        whole = segment_targets(len(feats), segs[:, 0], segs[:, 1], labels)
        return CoinVideo(vid, windows, mask, torch.from_numpy(spans[:, 0].copy()), targets,
                         torch.from_numpy(whole), torch.from_numpy(segs),
                         torch.from_numpy(labels))

    def __iter__(self) -> Iterator[CoinVideo]:
        for i in range(len(self)):
            yield self[i]


def _parse_segments(path: Path, vid: str, rec: dict) -> tuple[np.ndarray, np.ndarray, list[str]]:
    anns = rec.get("annotation")
    if not isinstance(anns, list):
        raise ValueError(f"{path}: database[{vid!r}]['annotation']: expected a list of segments")
    segs, labels, names = [], [], []
    for j, a in enumerate(anns):
        where = f"{path}: database[{vid!r}]['annotation'][{j}]"
        if not isinstance(a, dict):
            raise ValueError(f"{where}: expected a dict with segment, id, label")
        try:
            s, e = (float(x) for x in a.get("segment"))
        except (TypeError, ValueError):
            raise ValueError(f"{where}['segment']: expected [start, end] seconds, "
                             f"got {a.get('segment')!r}") from None
        if not (math.isfinite(s) and math.isfinite(e)) or s < 0 or e < s:
            raise ValueError(f"{where}['segment']: expected 0 <= start <= end, got {[s, e]}")
        sid = str(a.get("id", "")).strip()
        if not sid.isdigit() or int(sid) < 1:
            raise ValueError(f"{where}['id']: expected a step id string >= 1, got {a.get('id')!r}")
        label = a.get("label")
        if not isinstance(label, str) or not label.strip():
            raise ValueError(f"{where}['label']: expected a non-empty step text, got {label!r}")
        segs.append((s, e))
        labels.append(int(sid))
        names.append(label)
    return (np.asarray(segs, dtype=np.float32).reshape(-1, 2),
            np.asarray(labels, dtype=np.int64), names)


def load_coin(
    data_root: Any = None,
    *,
    json_path: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    subset: str = "testing",
    window: int = 32,
    stride: int | None = None,
    max_video_len: int = 32,
    expected_dim: int = FEATURE_DIM,
) -> CoinSet:
    """COIN videos of one subset with window and whole-video targets.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; the keyword paths override its defaults.
    json_path : path-like, optional
        ``COIN.json``.
    feature_dir : path-like, optional
        Folder of ``<vid>.npy``.
    subset : {"training", "testing"}
        Also accepts the official split names ``"train"``, ``"valid"``, ``"test"`` (valid and
        test both map to testing, as in the official yamls).
    window : int
        Window length in seconds (32).
    stride : int, optional
        Window step; default 8 for training and 16 for testing (the official yamls).
    max_video_len : int
        ``V``, windows are zero-padded to this length (32).
    expected_dim : int
        Feature width ``D``.

    Returns
    -------
    CoinSet

    Raises
    ------
    ValueError
        Malformed JSON entries, or a segment id outside the label set built from the testing
        subset (messages name the file, video and field).

    Notes
    -----
    ``docs/protocols.md`` §7.7 (``COINActionSegmentationMetaProcessor``,
    ``COINActionSegmentationAligner``); the metric is frame accuracy over all seconds of all
    test videos (Norton Table 4).

    Examples
    --------
    >>> import tempfile, json
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.coin_features.mkdir(parents=True)
    >>> seg = {"segment": [2.5, 5.2], "id": "2", "label": "pour water"}
    >>> db = {"database": {"v": {"subset": "testing", "annotation": [seg]}}}
    >>> _ = r.coin_json.write_text(json.dumps(db))
    >>> np.save(r.coin_features / "v.npy", np.ones((40, 4), np.float16))
    >>> c = load_coin(r, expected_dim=4)
    >>> c.n_classes, c.label_names, len(c)
    (3, ['O', 'none', 'pour water'], 1)
    >>> v = c[0]
    >>> v.window_starts.tolist(), v.targets[0, :7].tolist(), v.targets[1, -2:].tolist()
    ([0, 16], [0, 0, 2, 2, 2, 2, 0], [-100, -100])
    """
    if subset not in _SUBSETS:
        raise ValueError(f"subset: expected one of {tuple(_SUBSETS)}, got {subset!r}")
    subset = _SUBSETS[subset]
    if stride is None:
        stride = 8 if subset == "training" else 16
    for name, v in (("window", window), ("stride", stride), ("max_video_len", max_video_len)):
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
    if max_video_len < window:
        raise ValueError(f"max_video_len: expected >= window ({window}), got {max_video_len}")
    p = resolve_paths(data_root, json_path=(json_path, "coin_json"),
                      feature_dir=(feature_dir, "coin_features"))
    path = p["json_path"]
    data = read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("database"), dict):
        raise ValueError(f"{path}: expected {{'database': {{video_id: ...}}}}")
    parsed: dict[str, tuple[str, np.ndarray, np.ndarray]] = {}
    id2label: dict[int, str] = {}
    for vid, rec in data["database"].items():
        if not isinstance(rec, dict) or rec.get("subset") not in ("training", "testing"):
            got = rec.get("subset") if isinstance(rec, dict) else type(rec).__name__
            raise ValueError(f"{path}: database[{vid!r}]['subset']: expected 'training' or "
                             f"'testing', got {got!r}")
        segs, labels, names = _parse_segments(path, vid, rec)
        parsed[vid] = (rec["subset"], segs, labels)
        if rec["subset"] == "testing":
            id2label.update(zip(labels.tolist(), names))
    if not id2label:
        raise ValueError(f"{path}: no annotated segment in the testing subset; the label set "
                         "is built from it")
    n_classes = max(id2label) + 1
    label_names = ["O"] + ["none"] * (n_classes - 1)
    for i, name in id2label.items():
        label_names[i] = name
    if not p["feature_dir"].is_dir():
        raise FileNotFoundError(f"{p['feature_dir']}: feature folder not found")
    report = SkipReport(f"coin {subset} videos")
    ids, anns = [], {}
    for vid, (sub, segs, labels) in parsed.items():
        if sub != subset:
            continue
        bad = labels[labels >= n_classes]
        if len(bad):
            raise ValueError(f"{path}: database[{vid!r}]['annotation']: step id {int(bad[0])} "
                             f"is outside the testing label set (n_classes = {n_classes})")
        if not feature_path(p["feature_dir"], vid).is_file():
            report.add(vid, "no feature file")
            continue
        ids.append(vid)
        anns[vid] = (segs, labels)
    report.emit()
    return CoinSet(ids, anns, label_names, n_classes, p["feature_dir"], window, stride,
                   max_video_len, expected_dim, report)
