"""MSR-VTT: text-to-video retrieval (JSFUSION 1k-A test, 9k/7k training) and multiple-choice QA.

Files (``docs/protocols.md`` §7.5-7.6)::

    msrvtt/MSRVTT_JSFUSION_test.csv        key,vid_key,video_id,sentence (video_id, sentence used)
    msrvtt/MSRVTT_train.9k.csv, .7k.csv    video_id
    msrvtt/MSRVTT_data.json                {"sentences": [{"video_id", "caption"}, ...], ...}
    msrvtt/MSR_MC_test.csv                 tab-separated: vid_key (msrNNNN), a1..a5, answer
    msrvtt/msrvtt_feature_fps30_512/<video_id>.npy

The official pipeline does not filter MSR-VTT videos, so a missing feature file is an error by
default (``on_missing="skip"`` skips and counts instead).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from torch import Tensor

from .features import (
    FEATURE_DIM,
    ClipSet,
    SkipReport,
    feature_path,
    load_feature,
    pad_clips,
    read_json,
    read_table,
    resolve_paths,
)
from .layout import DataRoot

__all__ = [
    "load_msrvtt_test",
    "read_msrvtt_captions",
    "MSRVTTTrainItem",
    "MSRVTTTrainDataset",
    "collate_msrvtt",
    "QASet",
    "load_msrvtt_qa",
]

OnMissing = Literal["raise", "skip"]


def _check_on_missing(on_missing: object) -> None:
    if on_missing not in ("raise", "skip"):
        raise ValueError(f"on_missing: expected one of ('raise', 'skip'), got {on_missing!r}")


def _field(path: Path, line: int, rec: dict[str, str], col: str) -> str:
    v = rec[col].strip()
    if not v:
        raise ValueError(f"{path}: line {line}: empty {col!r}")
    return v


def _load_first(
    feature_dir: Path, vid: str, max_video_len: int, dim: int, on_missing: str, report: SkipReport
) -> np.ndarray | None:
    path = feature_path(feature_dir, vid)
    if not path.is_file():
        if on_missing == "raise":
            raise FileNotFoundError(f"{path}: feature file not found (video {vid!r})")
        report.add(vid, "no feature file")
        return None
    return load_feature(path, dim)[:max_video_len]


def load_msrvtt_test(
    data_root: Any = None,
    *,
    csv: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    max_video_len: int = 32,
    expected_dim: int = FEATURE_DIM,
    on_missing: OnMissing = "raise",
) -> ClipSet:
    """The MSR-VTT 1k-A (JSFUSION) test set: one sentence and the first seconds of its video.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; ``csv`` and ``feature_dir`` override its defaults.
    csv : path-like, optional
        ``MSRVTT_JSFUSION_test.csv`` (columns ``video_id`` and ``sentence`` are used).
    feature_dir : path-like, optional
        Folder of ``<video_id>.npy``.
    max_video_len : int
        ``V``, seconds kept from the start of each video (32).
    expected_dim : int
        Feature width ``D``.
    on_missing : {"raise", "skip"}
        What to do with a video without a feature file.

    Returns
    -------
    ClipSet
        ``video (N, V, D)``, ``video_mask``, ``video_ids``, ``keys`` (the csv ``key`` when
        present), ``captions``, ``spans (N, 2)`` = ``[0, min(T, V))``.

    Notes
    -----
    ``docs/protocols.md`` §7.5 (``DSAligner``: the first 32 s; 1,000 rows in the real file).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.msrvtt_features.mkdir(parents=True)
    >>> _ = r.msrvtt_test_csv.write_text("key,vid_key,video_id,sentence\\n"
    ...                                   "ret0,msr7,video7,a man cooks\\n")
    >>> np.save(r.msrvtt_features / "video7.npy", np.ones((40, 4), np.float16))
    >>> t = load_msrvtt_test(r, expected_dim=4)
    >>> t.video.shape, t.captions, t.spans.tolist()
    (torch.Size([1, 32, 4]), ['a man cooks'], [[0, 32]])
    """
    _check_on_missing(on_missing)
    p = resolve_paths(data_root, csv=(csv, "msrvtt_test_csv"),
                      feature_dir=(feature_dir, "msrvtt_features"))
    rows = read_table(p["csv"], ["video_id", "sentence"])
    report = SkipReport(f"msrvtt test videos of {p['csv'].name}")
    clips, vids, keys, caps = [], [], [], []
    for line, rec in enumerate(rows, start=2):
        vid = _field(p["csv"], line, rec, "video_id")
        sent = _field(p["csv"], line, rec, "sentence")
        feats = _load_first(p["feature_dir"], vid, max_video_len, expected_dim, on_missing, report)
        if feats is None:
            continue
        clips.append(feats)
        vids.append(vid)
        keys.append(rec["key"].strip() if rec.get("key", "").strip() else vid)
        caps.append(sent)
    if not clips:
        raise ValueError(f"{p['csv']}: no usable rows; {report.summary()}")
    video, mask = pad_clips(clips, max_video_len)
    report.emit()
    spans = torch.stack([torch.zeros(len(clips), dtype=torch.int64), mask.sum(1)], 1)
    return ClipSet(video, mask, vids, keys, caps, spans, report)


def read_msrvtt_captions(data_json: str | os.PathLike) -> dict[str, list[str]]:
    """``{video_id: [caption, ...]}`` from ``MSRVTT_data.json["sentences"]``.

    Notes
    -----
    ``docs/protocols.md`` §7.5 (``MSRVTTTextProcessor``).

    Examples
    --------
    >>> import tempfile, json
    >>> p = Path(tempfile.mkdtemp()) / "d.json"
    >>> _ = p.write_text(json.dumps({"sentences": [{"video_id": "video1", "caption": "x"}]}))
    >>> read_msrvtt_captions(p)
    {'video1': ['x']}
    """
    data_json = Path(data_json)
    data = read_json(data_json)
    if not isinstance(data, dict) or not isinstance(data.get("sentences"), list):
        raise ValueError(f"{data_json}: expected {{'sentences': [{{video_id, caption}}, ...]}}")
    out: dict[str, list[str]] = {}
    for i, s in enumerate(data["sentences"]):
        if not isinstance(s, dict) or not isinstance(s.get("video_id"), str) \
                or not isinstance(s.get("caption"), str) or not s["caption"].strip():
            raise ValueError(f"{data_json}: sentences[{i}]: expected {{'video_id': str, "
                             f"'caption': non-empty str}}, got {s!r:.80}")
        out.setdefault(s["video_id"], []).append(s["caption"])
    return out


class MSRVTTTrainItem(NamedTuple):
    """One fine-tuning example.

    Attributes
    ----------
    video : Tensor, shape (V, D)
        float32, zero-padded first seconds of the video.
    video_mask : Tensor, shape (V,)
        bool.
    caption : str
        A random caption of the video (seeded).
    video_id : str
    """

    video: Tensor
    video_mask: Tensor
    caption: str
    video_id: str


class MSRVTTTrainDataset(torch.utils.data.Dataset):
    """MSR-VTT fine-tuning set: the 9k (or 7k) training videos, ``dup`` times, random captions.

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; the keyword paths override its defaults.
    train_csv : path-like, optional
        ``MSRVTT_train.{size}.csv`` (column ``video_id``).
    size : {"9k", "7k"}
        Which training list (retrieval: 9k; QA fine-tuning: 7k).
    data_json : path-like, optional
        ``MSRVTT_data.json``.
    feature_dir : path-like, optional
        Folder of ``<video_id>.npy``.
    dup : int
        Repetitions of the list per epoch (20).
    seed : int
        Caption choice is seeded by ``(seed, epoch, index)``.
    max_video_len : int
        Seconds kept from the start of each video (32).
    expected_dim : int
        Feature width ``D``.
    on_missing : {"raise", "skip"}
        Videos without a feature file or without captions.

    Notes
    -----
    ``docs/protocols.md`` §7.5 (``MSRVTTMetaProcessor``, ``MSRVTTTextProcessor``: a random
    caption per item from ``MSRVTT_data.json``; ``dup: 20``).

    Examples
    --------
    >>> import tempfile, json
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.msrvtt_features.mkdir(parents=True)
    >>> _ = r.msrvtt_train_csv("9k").write_text("video_id\\nvideo1\\n")
    >>> sents = [{"video_id": "video1", "caption": c} for c in ["a", "b", "c"]]
    >>> _ = r.msrvtt_data_json.write_text(json.dumps({"sentences": sents}))
    >>> np.save(r.msrvtt_features / "video1.npy", np.ones((5, 4), np.float16))
    >>> ds = MSRVTTTrainDataset(r, dup=2, expected_dim=4)
    >>> len(ds), ds[0].video.shape, ds[0].caption in "abc"
    (2, torch.Size([32, 4]), True)
    """

    def __init__(
        self,
        data_root: Any = None,
        *,
        train_csv: str | os.PathLike | None = None,
        size: str = "9k",
        data_json: str | os.PathLike | None = None,
        feature_dir: str | os.PathLike | None = None,
        dup: int = 20,
        seed: int = 0,
        max_video_len: int = 32,
        expected_dim: int = FEATURE_DIM,
        on_missing: OnMissing = "raise",
    ):
        _check_on_missing(on_missing)
        if isinstance(dup, bool) or not isinstance(dup, int) or dup < 1:
            raise ValueError(f"dup: expected an integer >= 1, got {dup!r}")
        if train_csv is None and data_root is not None:

            root = data_root if isinstance(data_root, DataRoot) else DataRoot(data_root)
            train_csv = root.msrvtt_train_csv(size)
        p = resolve_paths(data_root, train_csv=(train_csv, "msrvtt_test_csv"),
                          data_json=(data_json, "msrvtt_data_json"),
                          feature_dir=(feature_dir, "msrvtt_features"))
        rows = read_table(p["train_csv"], ["video_id"])
        captions = read_msrvtt_captions(p["data_json"])
        self.skipped = SkipReport(f"msrvtt training videos of {p['train_csv'].name}")
        self.video_ids: list[str] = []
        for line, rec in enumerate(rows, start=2):
            vid = _field(p["train_csv"], line, rec, "video_id")
            if vid not in captions:
                if on_missing == "raise":
                    raise ValueError(f"{p['data_json']}: no caption for training video {vid!r} "
                                     f"(listed in {p['train_csv']}, line {line})")
                self.skipped.add(vid, "no captions")
                continue
            if not feature_path(p["feature_dir"], vid).is_file():
                if on_missing == "raise":
                    raise FileNotFoundError(
                        f"{feature_path(p['feature_dir'], vid)}: feature file not found "
                        f"(training video {vid!r})")
                self.skipped.add(vid, "no feature file")
                continue
            self.video_ids.append(vid)
        if not self.video_ids:
            raise ValueError(f"{p['train_csv']}: no usable training video; "
                             f"{self.skipped.summary()}")
        self.skipped.emit()
        self.captions = {v: captions[v] for v in self.video_ids}
        self.feature_dir, self.dup, self.seed = p["feature_dir"], dup, seed
        self.max_video_len, self.expected_dim, self.epoch = max_video_len, expected_dim, 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch (changes the caption choice)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.video_ids) * self.dup

    def __getitem__(self, index: int) -> MSRVTTTrainItem:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index: expected in [0, {len(self)}), got {index}")
        index %= len(self)
        vid = self.video_ids[index % len(self.video_ids)]
        rng = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, index])
        caps = self.captions[vid]
        feats = load_feature(feature_path(self.feature_dir, vid), self.expected_dim)
        video, mask = pad_clips([feats[: self.max_video_len]], self.max_video_len)
        return MSRVTTTrainItem(video[0], mask[0], caps[int(rng.integers(len(caps)))], vid)


def collate_msrvtt(items: Sequence[MSRVTTTrainItem]) -> ClipSet:
    """Stack :class:`MSRVTTTrainItem` s into a :class:`ClipSet` (a DataLoader ``collate_fn``).

    >>> it = MSRVTTTrainItem(torch.zeros(2, 3), torch.tensor([True, False]), "x", "video1")
    >>> b = collate_msrvtt([it, it])
    >>> b.video.shape, b.spans.tolist()
    (torch.Size([2, 2, 3]), [[0, 1], [0, 1]])
    """
    if not items:
        raise ValueError("items: expected at least one item")
    mask = torch.stack([i.video_mask for i in items])
    spans = torch.stack([torch.zeros(len(items), dtype=torch.int64), mask.sum(1)], 1)
    vids = [i.video_id for i in items]
    return ClipSet(torch.stack([i.video for i in items]), mask, vids, list(vids),
                   [i.caption for i in items], spans, SkipReport("msrvtt batch"))


class QASet(NamedTuple):
    """MSR-VTT multiple-choice questions.

    Attributes
    ----------
    video : Tensor, shape (Q, V, D)
        float32 first seconds of each question's video, zero-padded.
    video_mask : Tensor, shape (Q, V)
        bool.
    video_ids : list[str], length Q
        ``videoNNNN`` (from ``vid_key`` ``msrNNNN``).
    candidates : list of list of str, shape (Q, A)
        Candidate sentences ``a1..aA`` (A = 5 in the real file).
    answers : Tensor, shape (Q,)
        int64 0-based index of the correct candidate.
    skipped : SkipReport
    """

    video: Tensor
    video_mask: Tensor
    video_ids: list[str]
    candidates: list[list[str]]
    answers: Tensor
    skipped: SkipReport


def load_msrvtt_qa(
    data_root: Any = None,
    *,
    csv: str | os.PathLike | None = None,
    feature_dir: str | os.PathLike | None = None,
    max_video_len: int = 16,
    expected_dim: int = FEATURE_DIM,
    on_missing: OnMissing = "raise",
) -> QASet:
    """The MSR-VTT multiple-choice test (``MSR_MC_test.csv``, tab-separated).

    Parameters
    ----------
    data_root : DataRoot or path-like, optional
        Data root; ``csv`` and ``feature_dir`` override its defaults.
    csv : path-like, optional
        Columns ``vid_key``, ``a1``.. ``aA`` (consecutive), ``answer`` (0-based).
    feature_dir : path-like, optional
        Folder of ``<video_id>.npy``.
    max_video_len : int
        Seconds kept from the start of the video: **16** in Norton's QA yamls (VideoCLIP used
        32); configurable.
    expected_dim : int
        Feature width ``D``.
    on_missing : {"raise", "skip"}
        Questions whose video has no feature file.

    Returns
    -------
    QASet

    Notes
    -----
    ``docs/protocols.md`` §7.6 and §9 item 26 (``MSRVTTQAMetaProcessor``: ``vid_key``
    ``msrNNNN`` -> ``videoNNNN``; accuracy of the argmax over candidates).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.layout import DataRoot
    >>> r = DataRoot(tempfile.mkdtemp()); r.msrvtt_features.mkdir(parents=True)
    >>> _ = r.msrvtt_qa_csv.write_text("vid_key\\ta1\\ta2\\tanswer\\nmsr7\\tyes\\tno\\t1\\n")
    >>> np.save(r.msrvtt_features / "video7.npy", np.ones((40, 4), np.float16))
    >>> q = load_msrvtt_qa(r, expected_dim=4)
    >>> q.video.shape, q.video_ids, q.candidates, q.answers.tolist()
    (torch.Size([1, 16, 4]), ['video7'], [['yes', 'no']], [1])
    """
    _check_on_missing(on_missing)
    p = resolve_paths(data_root, csv=(csv, "msrvtt_qa_csv"),
                      feature_dir=(feature_dir, "msrvtt_features"))
    rows = read_table(p["csv"], ["vid_key", "a1", "a2", "answer"], sep="\t")
    n_cand = 2
    while rows and f"a{n_cand + 1}" in rows[0]:
        n_cand += 1
    report = SkipReport(f"msrvtt QA questions of {p['csv'].name}")
    clips, vids, cands, answers = [], [], [], []
    for line, rec in enumerate(rows, start=2):
        key = _field(p["csv"], line, rec, "vid_key")
        m = re.fullmatch(r"msr(\w+)", key)
        if m is None:
            raise ValueError(f"{p['csv']}: line {line}: 'vid_key' expected 'msrNNNN', got {key!r}")
        vid = f"video{m.group(1)}"
        options = [_field(p["csv"], line, rec, f"a{j}") for j in range(1, n_cand + 1)]
        ans = rec["answer"].strip()
        if not ans.isdigit() or int(ans) >= n_cand:
            raise ValueError(f"{p['csv']}: line {line}: 'answer' expected a 0-based index in "
                             f"[0, {n_cand}), got {ans!r}")
        feats = _load_first(p["feature_dir"], vid, max_video_len, expected_dim, on_missing, report)
        if feats is None:
            continue
        clips.append(feats)
        vids.append(vid)
        cands.append(options)
        answers.append(int(ans))
    if not clips:
        raise ValueError(f"{p['csv']}: no usable question; {report.summary()}")
    video, mask = pad_clips(clips, max_video_len)
    report.emit()
    return QASet(video, mask, vids, cands, torch.as_tensor(answers, dtype=torch.int64), report)
