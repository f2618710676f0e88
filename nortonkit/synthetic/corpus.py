"""A synthetic noisy instructional-video corpus, written in the released file formats.

The corpus stands in for HowTo100M (pre-training), YouCookII, MSR-VTT (retrieval and
multiple-choice QA), COIN and HTM-Align when the real data is absent (CI, notebooks, tests,
scaling runs). Every file is written in exactly the layout of :mod:`nortonkit.data.layout`, so the
readers cannot tell it from a real copy, and the true alignments are saved next to it under
``DataRoot.ground_truth``.

This module holds the entry points: :func:`generate_corpus`, :func:`ensure_corpus`, the manifest
(:func:`load_manifest`) and :class:`CorpusMismatchError`. The parts of the generator live beside
it in :mod:`nortonkit.synthetic` (``config``, ``world``, ``video``, ``narration``, the writers and
``ground_truth``); the names of its ``__all__`` that live there are re-exported here.

Determinism and streaming
-------------------------
Everything is a function of the seed. Each video draws from its own
``SeedSequence([seed, dataset, split, index])``, so videos are generated one at a time, in any
order, and written shard by shard: memory does not grow with the number of videos.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..data.layout import DataRoot
from ..data.text import load_tokenizer
from .config import (
    GENERATOR_VERSION,
    NoiseConfig,
    SyntheticConfig,
    _config_record,
    describe_config,
)
from .eval_writers import _write_coin, _write_htm_align, _write_msrvtt, _write_youcook
from .example import SyntheticExample, synthetic_example
from .ground_truth import _write_world, load_ground_truth
from .how2_writer import _write_how2
from .world import World, build_world
from .writing import ProgressFactory, _progress, _write_json

__all__ = [
    "CorpusMismatchError",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "NoiseConfig",
    "SyntheticConfig",
    "SyntheticExample",
    "World",
    "build_world",
    "generate_corpus",
    "ensure_corpus",
    "describe_config",
    "load_manifest",
    "load_ground_truth",
    "synthetic_example",
]

MANIFEST_NAME = "manifest.json"
_PARTIAL_NAME = ".synthetic_partial.json"
_NEW_NAME = ".synthetic_new"  # a corpus being generated, renamed into place once complete
_OLD_NAME = ".synthetic_old"  # the replaced corpus, deleted once the new one is in place
_DATASET_DIRS = ("how2", "youcook", "msrvtt", "coin", "how2-align", "ground_truth")


def load_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of a finished synthetic corpus, or None when there is none (or half-written).

    >>> load_manifest("/nonexistent") is None
    True
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable manifest (JSON error: {e})") from None
    if not isinstance(m, dict) or m.get("kind") != "nortonkit-synthetic":
        raise ValueError(f"{path}: expected a nortonkit synthetic-corpus manifest, got {m!r:.80}")
    return m


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


class CorpusMismatchError(ValueError):
    """``out_dir`` holds a finished synthetic corpus of another configuration.

    Raised by :func:`generate_corpus` before anything is written: a corpus is never replaced
    silently (one of 100k videos takes hours to make).

    Attributes
    ----------
    root : Path
        The data root.
    existing : dict
        The manifest of the corpus that is there.
    requested : dict
        The config record that was asked for.
    existing_text, requested_text : str
        :func:`describe_config` of each, with its generator version when they differ.
    differences : list of str
        ``"field: existing vs requested"`` for each differing config field.
    """

    def __init__(self, root: Path, existing: Mapping[str, Any], requested: Mapping[str, Any]):
        self.root = Path(root)
        self.existing = dict(existing)
        self.requested = dict(requested)
        old = self.existing.get("config")
        old = old if isinstance(old, Mapping) else {}
        self.existing_text = describe_config(old)
        self.requested_text = describe_config(self.requested)
        old_version = self.existing.get("generator_version")
        if old_version != GENERATOR_VERSION:
            self.existing_text += f" (generator version {old_version})"
            self.requested_text += f" (generator version {GENERATOR_VERSION})"
        a, b = _flatten(old), _flatten(self.requested)
        self.differences = [f"{k}: {a.get(k, '(absent)')!r} vs {b.get(k, '(absent)')!r}"
                            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        super().__init__(self.describe("overwrite=True"))

    def describe(self, option: str, name: str = "out_dir") -> str:
        """The error message for argument ``name``, naming ``option`` as the way to replace it."""
        counts = self.existing.get("counts")
        videos = counts.get("how2_train_videos") if isinstance(counts, Mapping) else None
        made = self.existing.get("seconds")
        about = ", ".join(x for x in (
            f"{videos} HowTo100M-like training videos" if videos is not None else "",
            f"generated in {made} s" if made is not None else "") if x)
        want = self.requested.get("how2_train")
        diff = "; ".join(self.differences[:6])
        if len(self.differences) > 6:
            diff += f"; and {len(self.differences) - 6} more"
        return (
            f"{name}: {self.root} already holds a synthetic corpus of another configuration; "
            f"refusing to replace it\n"
            f"  existing:  {self.existing_text}{f' ({about})' if about else ''}\n"
            f"  requested: {self.requested_text} ({want} HowTo100M-like training videos)\n"
            f"  differing fields (existing vs requested): {diff or 'none'}\n"
            f"Use {option} to replace it on purpose, or choose another folder."
        )


def _holds_other_content(out: Path) -> bool:
    """True when ``out`` holds files but no synthetic corpus (finished or half-written)."""
    if not out.exists():
        return False
    if not out.is_dir():
        return True
    if (out / MANIFEST_NAME).is_file() or (out / _PARTIAL_NAME).is_file():
        return False
    return any(p.name not in (_NEW_NAME, _OLD_NAME) for p in out.iterdir())


def _install(new: Path, out: Path, wanted: dict[str, Any]) -> None:
    """Move the complete corpus in ``new`` into ``out`` (renames only), manifest last.

    From the first rename until the manifest is in place, the partial marker says the corpus is
    half-written, so a process killed in between leaves a corpus that is redone, never used.
    """
    _write_json(out / _PARTIAL_NAME, {"config": wanted, "generator_version": GENERATOR_VERSION})
    with contextlib.suppress(FileNotFoundError):
        (out / MANIFEST_NAME).unlink()
    old = out / _OLD_NAME
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    for name in _DATASET_DIRS:
        if (out / name).exists():
            os.replace(out / name, old / name)
        if (new / name).exists():
            os.replace(new / name, out / name)
    os.replace(new / MANIFEST_NAME, out / MANIFEST_NAME)
    (out / _PARTIAL_NAME).unlink()
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def _is_in_place(out: Path, existing: dict[str, Any] | None, wanted: dict[str, Any],
                 overwrite: bool) -> bool:
    """True when ``out`` already holds the ``wanted`` corpus (same config and generator version).

    Raises :class:`CorpusMismatchError` when ``out`` holds a finished corpus of another
    configuration and ``overwrite`` is False, and ValueError when it holds something other
    than a synthetic corpus; ``existing`` is its manifest (None when there is none).
    """
    if existing is not None:
        if existing.get("generator_version") == GENERATOR_VERSION and \
                existing.get("config") == wanted:
            return True
        if not overwrite:
            raise CorpusMismatchError(out, existing, wanted)
    elif _holds_other_content(out):
        raise ValueError(
            f"out_dir: {out} is not empty and holds no synthetic corpus (no {MANIFEST_NAME} or "
            f"{_PARTIAL_NAME}); expected an empty folder or a synthetic corpus, refusing to "
            "overwrite"
        )
    return False


def generate_corpus(
    out_dir: str | Path,
    config: SyntheticConfig | None = None,
    progress: bool | ProgressFactory = True,
    overwrite: bool = False,
) -> DataRoot:
    """Write the whole synthetic corpus (all five datasets plus ground truth) under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Data root; created if needed. It must be empty, or hold a synthetic corpus (finished or
        half-written); any other content is refused rather than overwritten.
    config : SyntheticConfig, optional
        Default ``SyntheticConfig()`` (the "default" size).
    progress : bool or callable
        Show tqdm progress bars, or a factory ``f(iterable, desc=..., unit=...)``.
    overwrite : bool
        Replace a finished corpus of another configuration (or generator version) instead of
        raising :class:`CorpusMismatchError`.

    Returns
    -------
    DataRoot
        Paths of every file (the layout of :mod:`nortonkit.data.layout`).

    Raises
    ------
    CorpusMismatchError
        ``out_dir`` holds a finished corpus of another configuration and ``overwrite`` is
        False; nothing is changed. The message names both configurations.
    ValueError
        ``out_dir`` holds something other than a synthetic corpus.

    Notes
    -----
    Idempotent: when ``out_dir/manifest.json`` records the same config and generator version,
    nothing is written. The corpus is generated in ``out_dir/.synthetic_new`` and renamed into
    place once complete (the manifest, which records config, counts and version, last), so the
    corpus under ``out_dir`` is always either finished or marked half-written; a half-written
    one is redone. Other files in ``out_dir`` are kept. HowTo100M-like videos are generated one
    at a time and written shard by shard, so memory stays flat as ``how2_train`` grows.

    The noisy correspondence follows Norton Sec. 1 (asynchronous, irrelevant, fine-grained);
    the default irrelevant rate reproduces HTM-Align's 30 % alignable sentences.

    Examples
    --------
    >>> import tempfile
    >>> root = generate_corpus(tempfile.mkdtemp(), SyntheticConfig.preset("smoke"), progress=False)
    >>> load_manifest(root.root)["counts"]["how2_train_videos"]
    48
    >>> sorted(p.name for p in root.root.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['coin', 'ground_truth', 'how2', 'how2-align', 'manifest.json', 'msrvtt', 'youcook']
    >>> generate_corpus(root.root, SyntheticConfig.preset("smoke", scale=40), progress=False)
    Traceback (most recent call last):
    ...
    nortonkit.synthetic.corpus.CorpusMismatchError: out_dir: ... already holds ...
    """
    cfg = config if config is not None else SyntheticConfig()
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config: expected a SyntheticConfig, got {type(cfg).__name__}")
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite: expected True or False, got {overwrite!r}")
    root = DataRoot(out_dir)
    out = root.root
    wanted = _config_record(cfg)
    existing = load_manifest(out)
    if _is_in_place(out, existing, wanted, overwrite):
        return root
    out.mkdir(parents=True, exist_ok=True)
    if existing is None:  # empty or half-written: mark it ours before writing anything
        _write_json(out / _PARTIAL_NAME,
                    {"config": wanted, "generator_version": GENERATOR_VERSION})
    new = out / _NEW_NAME
    shutil.rmtree(new, ignore_errors=True)
    _write_into(DataRoot(new), cfg, wanted, progress)
    _install(new, out, wanted)
    return root


def _write_into(root: DataRoot, cfg: SyntheticConfig, wanted: dict[str, Any],
                progress: bool | ProgressFactory) -> None:
    """Generate every dataset of ``cfg`` under ``root`` (a fresh folder), the manifest last."""
    t0 = time.perf_counter()
    bar = _progress(progress)
    world = build_world(cfg)
    counts: dict[str, Any] = {"tasks": len(world.tasks), "step_classes": len(world.steps)}
    _write_world(root, world)
    _write_how2(root, world, cfg, load_tokenizer(), bar, counts)
    _write_youcook(root, world, cfg, bar, counts)
    _write_msrvtt(root, world, cfg, bar, counts)
    _write_coin(root, world, cfg, bar, counts)
    _write_htm_align(root, world, cfg, bar, counts)
    manifest = dict(kind="nortonkit-synthetic", generator_version=GENERATOR_VERSION,
                    config=wanted, counts=counts,
                    seconds=round(time.perf_counter() - t0, 2))
    _write_json(root.root / MANIFEST_NAME, manifest)


def ensure_corpus(out_dir: str | Path, size: str = "default", seed: int = 0,
                  progress: bool | ProgressFactory = False,
                  overwrite: bool = False) -> DataRoot:
    """Generate the named-size corpus under ``out_dir`` unless it is already there.

    Parameters
    ----------
    out_dir : path-like
        Data root.
    size : {"default", "smoke"}
        :meth:`SyntheticConfig.preset` size.
    seed : int
        Master seed.
    progress : bool or callable
        As in :func:`generate_corpus`.
    overwrite : bool
        As in :func:`generate_corpus`.

    Returns
    -------
    DataRoot

    Raises
    ------
    CorpusMismatchError
        ``out_dir`` holds a corpus of another configuration (see :func:`generate_corpus`).

    Notes
    -----
    Used by the notebooks (``SMOKE=True`` selects ``"smoke"``) and by training
    (``data.synthetic``, which uses a corpus of another configuration as it is); see
    :func:`generate_corpus`.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> ensure_corpus(d, "smoke").youcook_val_pkl.is_file()
    True
    """
    return generate_corpus(out_dir, SyntheticConfig.preset(size, seed=seed), progress=progress,
                           overwrite=overwrite)
