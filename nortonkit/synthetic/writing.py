"""What every synthetic dataset writer shares: video ids, atomic file writes and progress bars.

Bulk feature files are written without fsync: the manifest, written last, marks a corpus
complete (:func:`nortonkit.synthetic.corpus.generate_corpus`).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_save_npy, atomic_write

ProgressFactory = Callable[..., Iterable[Any]]


def _youtube_id(seed: int, tag: str, i: int) -> str:
    """An 11-character YouTube-like id (URL-safe base64), deterministic in (seed, tag, i)."""
    digest = hashlib.blake2b(f"{seed}:{tag}:{i}".encode(), digest_size=9).digest()
    vid = base64.urlsafe_b64encode(digest).decode()[:11]
    return ("x" + vid[1:]) if vid[0] == "-" else vid  # ids never start with "-" (CLI-safe)


def _unique_ids(seed: int, tag: str, n: int) -> list[str]:
    ids = [_youtube_id(seed, tag, i) for i in range(n)]
    if len(set(ids)) != n:  # pragma: no cover - 2**66 id space
        raise RuntimeError(f"video id collision in {tag}")
    return ids


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Bulk feature write; the manifest written last marks the corpus complete."""
    atomic_save_npy(path, array, fsync=False)


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f)
        f.write("\n")


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]],
               delimiter: str = ",") -> None:
    with atomic_write(path, "w") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


class _JsonObjectWriter:
    """Write one JSON object ``{key: value, ...}`` entry by entry to an open text file."""

    def __init__(self, f: Any):
        self.f = f
        self.first = True
        f.write("{")

    def add(self, key: str, value: Any) -> None:
        self.f.write(("" if self.first else ", ") + json.dumps(key) + ": " + json.dumps(value))
        self.first = False

    def close(self) -> None:
        self.f.write("}\n")


def _progress(progress: bool | ProgressFactory) -> ProgressFactory:
    if callable(progress):
        return progress
    if progress:
        try:
            from tqdm.auto import tqdm  # noqa: PLC0415 -- optional heavy dependency (tqdm)
        except ImportError:  # pragma: no cover - tqdm is a declared dependency
            return lambda it, **kw: it
        return lambda it, **kw: tqdm(it, **kw)
    return lambda it, **kw: it
