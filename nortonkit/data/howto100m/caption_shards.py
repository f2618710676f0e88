"""HowTo100M caption shards: pre-tokenised captions that follow the feature shards.

Files (``docs/protocols.md`` §5.2)::

    caps_shard/<prefix>{split}_{s}.startends_{starts,data}.npy   float32 (sum n_caps, 2)
    caps_shard/<prefix>{split}_{s}.caps_ids_{starts,data}.npy    int32 (sum n_caps, 32), pad -1

Caption shard ``s`` holds the videos of feature shard ``s`` in the same order
(:func:`write_caption_shards`); :class:`ShardedCaptions` reads them memory-mapped.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ...io import atomic_save_npy
from ..features import SkipReport
from ..layout import CAPTION_PREFIX
from ..text import CAPTION_CHARS, CAPTION_TOKENS, pretokenize
from .feature_shards import ShardedFeatures, _load_meta
from .shard_files import (
    ShardIndex,
    ShardWriteResult,
    _check_split,
    _load_starts,
    _open_data,
    _remove_stale,
)

__all__ = ["write_caption_shards", "ShardedCaptions"]


def _caption_paths(directory: Path, prefix: str, split: str, s: int) -> dict[str, Path]:
    base = f"{prefix}{split}_{s}."
    return {f"{k}_{p}": directory / f"{base}{k}_{p}.npy"
            for k in ("startends", "caps_ids") for p in ("starts", "data")}


def _parse_caption_entry(source: str, vid: str, rec: Any) -> tuple[np.ndarray, list[str]]:
    where = f"{source}[{vid!r}]"
    if isinstance(rec, str):  # the official pickle stores each value as a JSON string
        try:
            rec = json.loads(rec)
        except json.JSONDecodeError as e:
            raise ValueError(f"{where}: not valid JSON: {e}") from None
    if not isinstance(rec, Mapping) or not {"start", "end", "text"} <= set(rec):
        got = sorted(rec) if isinstance(rec, Mapping) else type(rec).__name__
        raise ValueError(f"{where}: expected a dict with keys start, end, text; got {got}")
    lens = {k: len(rec[k]) if isinstance(rec[k], (list, tuple)) else None
            for k in ("start", "end", "text")}
    if None in lens.values() or len(set(lens.values())) != 1:
        raise ValueError(f"{where}: expected lists start, end, text of equal length, got {lens}")
    try:
        se = np.asarray([rec["start"], rec["end"]], dtype=np.float64).T.reshape(-1, 2)
    except (TypeError, ValueError):
        raise ValueError(f"{where}['start'/'end']: expected numbers (seconds)") from None
    if not np.isfinite(se).all() or (se < 0).any():
        bad = "start" if (~np.isfinite(se[:, 0]) | (se[:, 0] < 0)).any() else "end"
        raise ValueError(f"{where}[{bad!r}]: expected finite times >= 0 seconds")
    texts = rec["text"]
    for j, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{where}['text'][{j}]: expected a string, got {type(t).__name__}")
    return se.astype(np.float32), list(texts)


def _write_caption_shard(
    captions: Mapping[str, Any], video_ids: list[str], tokenizer: Any, paths: dict[str, Path],
    source: str, report: SkipReport, max_chars: int, max_tokens: int,
) -> int:
    """Pre-tokenise the captions of one shard's videos and write its four files.

    Videos without captions get zero captions and are added to ``report``. Returns the number
    of captions written.
    """
    spans, texts, counts = [], [], []
    for vid in video_ids:
        if vid not in captions:
            report.add(vid, "no captions")
            counts.append(0)
            continue
        se, tx = _parse_caption_entry(source, vid, captions[vid])
        if not tx:
            report.add(vid, "no captions")
        spans.append(se)
        texts.extend(tx)
        counts.append(len(tx))
    ids = pretokenize(texts, tokenizer, max_chars=max_chars, max_tokens=max_tokens)
    se_all = np.concatenate(spans) if spans else np.zeros((0, 2), np.float32)
    starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    atomic_save_npy(paths["startends_data"], se_all.astype(np.float32))
    atomic_save_npy(paths["caps_ids_data"], ids)
    atomic_save_npy(paths["startends_starts"], starts)
    atomic_save_npy(paths["caps_ids_starts"], starts)
    return len(texts)


def write_caption_shards(
    captions: Mapping[str, Any],
    tokenizer: Any,
    meta: str | os.PathLike | Mapping | ShardedFeatures,
    out_dir: str | os.PathLike,
    split: str,
    *,
    prefix: str = CAPTION_PREFIX,
    max_chars: int = CAPTION_CHARS,
    max_tokens: int = CAPTION_TOKENS,
    source: str = "captions",
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> ShardWriteResult:
    """Pre-tokenise sentencified captions into shards that follow the feature shards.

    Parameters
    ----------
    captions : mapping
        ``{video_id: {"start": [s..], "end": [e..], "text": [str..]}}`` (the layout of
        ``sentencified_htm_1200k.json``; a value may also be that dict as a JSON string).
    tokenizer : tokenizer
        From :func:`nortonkit.data.text.load_tokenizer`.
    meta : path-like, mapping or ShardedFeatures
        The feature shards' ``{shard_idx: [video_id, ...]}``; caption shard ``s`` holds the
        videos of feature shard ``s`` in the same order.
    out_dir : path-like
        The ``caps_shard`` folder.
    split : str
        Split name.
    prefix : str
        File-name prefix (``sentencified_htm_1200k.bert-base-uncased.``).
    max_chars, max_tokens : int
        Pre-tokenisation cut (96 characters, 32 tokens).
    source : str
        Name of the caption source used in error messages (e.g. the json path).
    progress : callable, optional
        Wraps the shard iterable (e.g. ``tqdm``).

    Returns
    -------
    ShardWriteResult
        ``n_rows`` counts captions; videos without captions are written with zero captions,
        counted in ``skipped`` and reported once.

    Notes
    -----
    ``docs/protocols.md`` §5.2: ``startends`` float32 ``(sum n_caps, 2)`` and ``caps_ids``
    int32 ``(sum n_caps, 32)`` padded with -1, each with int64 ``_starts`` offsets. Strings
    are cut to 96 *characters* before tokenisation.

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = tempfile.mkdtemp()
    >>> caps = {"a": {"start": [0.0, 4.0], "end": [3.0, 9.0], "text": ["crack eggs", "whisk"]}}
    >>> res = write_caption_shards(caps, load_tokenizer(), {0: ["a"]}, d, "val")
    >>> ShardedCaptions(d, "val", {0: ["a"]})["a"]["cap"]
    [[8579, 6763], [1059, 24158, 2243]]
    """
    split = _check_split(split)
    meta_d, _ = _load_meta(meta)
    if not isinstance(captions, Mapping):
        raise ValueError(f"{source}: expected a dict {{video_id: {{start, end, text}}}}, got "
                         f"{type(captions).__name__}")
    out_dir = Path(out_dir)
    report = SkipReport(f"{split} captions from {source}")
    n_rows = 0
    shards = sorted(meta_d)
    for s in progress(shards) if progress is not None else shards:
        n_rows += _write_caption_shard(captions, meta_d[s], tokenizer,
                                       _caption_paths(out_dir, prefix, split, s), source, report,
                                       max_chars, max_tokens)
    if shards == list(range(len(shards))):
        pattern = rf"{re.escape(prefix)}{re.escape(split)}_(\d+)\.(startends|caps_ids)_\w+\.npy"
        _remove_stale(out_dir, pattern, len(shards))
    report.emit()
    n_videos = sum(len(v) for v in meta_d.values())
    return ShardWriteResult(n_videos, len(shards), n_rows, meta_d, report)


class ShardedCaptions(ShardIndex):
    """Pre-tokenised caption shards: ``captions[video_id] -> {"start", "end", "cap"}``.

    Parameters
    ----------
    directory : path-like
        The ``caps_shard`` folder.
    split : str
        Split name.
    meta : path-like, mapping or ShardedFeatures
        The feature shards' meta (caption shards carry no index of their own).
    prefix : str
        File-name prefix.

    Returns
    -------
    Each item is ``{"start": ndarray (n,) float32, "end": ndarray (n,) float32,
    "cap": list of n token-id lists}`` with the ``-1`` padding stripped, as the official
    ``ShardedTextProcessor`` returns.

    Notes
    -----
    ``docs/protocols.md`` §5.2. Caption times may fall after the end of the video features
    (ASR timing); the sampler clamps, as the official aligner does.

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.data.text import load_tokenizer
    >>> d = tempfile.mkdtemp()
    >>> caps = {"a": {"start": [1.0], "end": [2.5], "text": ["whisk"]}}
    >>> _ = write_caption_shards(caps, load_tokenizer(), {0: ["a"]}, d, "val")
    >>> c = ShardedCaptions(d, "val", {0: ["a"]})["a"]
    >>> c["start"].tolist(), c["end"].tolist(), c["cap"]
    ([1.0], [2.5], [[1059, 24158, 2243]])
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        split: str,
        meta: str | os.PathLike | Mapping | ShardedFeatures,
        prefix: str = CAPTION_PREFIX,
    ):
        self.directory, self.split, self.prefix = Path(directory), _check_split(split), prefix
        self.meta, self.meta_source = _load_meta(meta)
        self._index: dict[str, tuple[int, int]] = {}
        self._starts: dict[int, np.ndarray] = {}
        self._data: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for s, ids in self.meta.items():
            paths = _caption_paths(self.directory, prefix, split, s)
            st = _load_starts(paths["startends_starts"], len(ids))
            ct = _load_starts(paths["caps_ids_starts"], len(ids))
            if not np.array_equal(st, ct):
                raise ValueError(f"{paths['caps_ids_starts']}: offsets differ from "
                                 f"{paths['startends_starts'].name}")
            self._open(s, st)
            self._starts[s] = st
            for i, vid in enumerate(ids):
                self._index[vid] = (s, i)

    def _open(self, s: int, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        paths = _caption_paths(self.directory, self.prefix, self.split, s)
        rows = int(starts[-1])
        se = _open_data(paths["startends_data"], rows, 2, (np.float32, np.float64),
                        paths["startends_starts"])
        ids = _open_data(paths["caps_ids_data"], rows, None, (np.int32, np.int64, np.int16),
                         paths["caps_ids_starts"])
        return se, ids

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_data"] = {}
        return state

    def __getitem__(self, video_id: str) -> dict[str, Any]:
        if video_id not in self._index:
            raise KeyError(f"{video_id!r}: not in the caption shards' meta ({self.meta_source})")
        s, i = self._index[video_id]
        if s not in self._data:
            self._data[s] = self._open(s, self._starts[s])
        se, ids = self._data[s]
        a, b = self._starts[s][i], self._starts[s][i + 1]
        span = np.asarray(se[a:b], dtype=np.float32)
        if not np.isfinite(span).all():
            path = _caption_paths(self.directory, self.prefix, self.split, s)["startends_data"]
            raise ValueError(f"{path}: NaN/inf caption times for video {video_id!r}")
        rows = np.asarray(ids[a:b])
        return {"start": span[:, 0].copy(), "end": span[:, 1].copy(),
                "cap": [r[r >= 0].tolist() for r in rows]}

