"""nortonkit's own checkpoint format: a directory written atomically, read back strictly.

A checkpoint ``<name>/`` holds ``model.safetensors`` (weights), ``config.json`` (format marker,
the resolved :class:`~nortonkit.encoders.EncoderConfig`, the weights' sha256, free metadata)
and, when there is training state, ``train_state.pt`` (optimizer, scheduler, RNG states, the
loop's ``extra_state``; read back with ``weights_only=True``). :func:`save_checkpoint` writes
every file into ``.<name>.*.tmp/`` (each file temp-then-rename) and commits the directory with
one ``os.replace`` at the end, so a killed process leaves the previous checkpoint or the new
one, never a mix. :func:`load_checkpoint` checks the recorded hash (:func:`checkpoint_hash`),
the config and every key and shape; :func:`restore_train_state` resumes the optimizer,
scheduler and RNGs.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from nortonkit.encoders import DualEncoder, EncoderConfig
from nortonkit.io import atomic_write, safe_torch_load

from .rng import capture_rng_state, restore_rng_state
from .state_dict import load_state_dict_strict

__all__ = [
    "CHECKPOINT_FORMAT",
    "LoadedCheckpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "checkpoint_hash",
    "restore_train_state",
]

CHECKPOINT_FORMAT = "nortonkit.checkpoint"
_FORMAT_VERSION = 1
_WEIGHTS, _CONFIG, _TRAIN_STATE = "model.safetensors", "config.json", "train_state.pt"


class LoadedCheckpoint(NamedTuple):
    """Result of :func:`load_checkpoint`: ``model`` (eval mode), ``config``, ``train_state``.

    ``train_state`` is ``None`` when the checkpoint holds no ``train_state.pt``; otherwise a
    dict with ``optimizer``, ``scheduler``, ``rng`` and ``extra`` (see :func:`save_checkpoint`).
    """

    model: DualEncoder
    config: EncoderConfig
    train_state: dict[str, Any] | None


def checkpoint_hash(path: str | os.PathLike) -> str:
    """sha256 (hex) of a checkpoint's weights: ``<dir>/model.safetensors``, or of the file.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "w.bin"
    >>> _ = p.write_bytes(b"abc")
    >>> checkpoint_hash(p)[:16]
    'ba7816bf8f01cfea'
    """
    path = Path(path)
    if path.is_dir():
        path = path / _WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: weights file not found")
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _weights_only_roundtrip(name: str, value: Any) -> None:
    buf = io.BytesIO()
    try:
        torch.save(value, buf)
        buf.seek(0)
        torch.load(buf, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(
            f"{name}: must hold only tensors and plain Python types (it is read back with "
            f"weights_only=True): {str(e).splitlines()[-1] if str(e) else type(e).__name__}"
        ) from None


def _unwrap(model: nn.Module) -> DualEncoder:
    inner = getattr(model, "module", model)
    if not isinstance(inner, DualEncoder):
        raise ValueError(
            f"model: expected a DualEncoder (or a wrapper with .module), got {type(model).__name__}"
        )
    return inner


def _is_checkpoint_dir(path: Path) -> bool:
    try:
        data = json.loads((path / _CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _check_target(final: Path, overwrite: bool) -> None:
    """Refuse a file name, a directory that is not a checkpoint, or an existing one to keep."""
    if final.suffix in (".safetensors", ".pt", ".json"):
        raise ValueError(f"path: expected a checkpoint directory name, got a file name {final}")
    if final.exists():
        if not final.is_dir() or not _is_checkpoint_dir(final):
            raise ValueError(
                f"path: {final} exists and is not a nortonkit checkpoint; refusing to replace it"
            )
        if not overwrite:
            raise ValueError(f"path: {final} already exists (pass overwrite=True to replace it)")


def _collect_train_state(
    optimizer: torch.optim.Optimizer | None,
    scheduler: Any | None,
    extra_state: Mapping[str, Any] | None,
) -> dict[str, Any] | None:
    """The ``train_state.pt`` payload (checked to read back with ``weights_only=True``), or None."""
    if optimizer is None and scheduler is None and extra_state is None:
        return None
    train_state = {
        "format_version": _FORMAT_VERSION,
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "rng": capture_rng_state(),
        "extra": None if extra_state is None else dict(extra_state),
    }
    for key in ("optimizer", "scheduler", "extra"):
        _weights_only_roundtrip("extra_state" if key == "extra" else key, train_state[key])
    return train_state


def _write_files(
    tmp: Path,
    inner: DualEncoder,
    config: EncoderConfig,
    meta: dict[str, Any],
    train_state: dict[str, Any] | None,
) -> None:
    """Write the weights, the train state and ``config.json`` into ``tmp``, each durably."""
    from safetensors.torch import save_file  # noqa: PLC0415 -- optional heavy dependency (safetensors)

    tensors = {k: v.detach().to("cpu").contiguous() for k, v in inner.state_dict().items()}
    weights_tmp = tmp / f".{_WEIGHTS}.tmp"
    save_file(tensors, str(weights_tmp), metadata={"format": "pt", "producer": "nortonkit"})
    with open(weights_tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(weights_tmp, tmp / _WEIGHTS)
    if train_state is not None:
        with atomic_write(tmp / _TRAIN_STATE, "wb") as f:
            torch.save(train_state, f)
    doc = {
        "format": CHECKPOINT_FORMAT,
        "format_version": _FORMAT_VERSION,
        "weights": _WEIGHTS,
        "weights_sha256": checkpoint_hash(tmp / _WEIGHTS),
        "encoder": config.to_dict(),
        "metadata": meta,
    }
    with atomic_write(tmp / _CONFIG, "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
    _fsync_dir(tmp)


def _commit(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` directory to ``final``, replacing an old checkpoint there."""
    if final.exists():  # swap: old -> backup, new -> final, drop backup
        backup = Path(
            tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".old", dir=final.parent)
        )
        os.replace(final, backup / final.name)
        os.replace(tmp, final)
        shutil.rmtree(backup, ignore_errors=True)
    else:
        os.replace(tmp, final)
    _fsync_dir(final.parent)


def save_checkpoint(
    path: str | os.PathLike,
    model: nn.Module,
    config: EncoderConfig | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    extra_state: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``model`` (and training state) as a nortonkit checkpoint directory, atomically.

    Parameters
    ----------
    path : path-like
        the checkpoint directory ``<name>/`` to create or replace.
    model : DualEncoder (or a wrapper holding one as ``.module``)
    config : EncoderConfig, optional
        must equal ``model.config`` (default); stored resolved in ``config.json``.
    optimizer, scheduler : optional
        their ``state_dict()`` goes to ``train_state.pt``.
    extra_state : mapping, optional
        the loop's own state (step, epoch, sampler state, ...): tensors and plain types only.
    metadata : mapping, optional
        JSON-serialisable notes kept in ``config.json`` (run config, data source, ...).
    overwrite : bool
        replace an existing nortonkit checkpoint at ``path`` (never any other directory).

    Returns
    -------
    Path
        the committed directory. ``train_state.pt`` (with RNG states from
        :func:`capture_rng_state`) is written when any of optimizer, scheduler or
        extra_state is given.

    Examples
    --------
    >>> import tempfile
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> d = save_checkpoint(Path(tempfile.mkdtemp()) / "step_10", model, extra_state={"step": 10})
    >>> sorted(p.name for p in d.iterdir())
    ['config.json', 'model.safetensors', 'train_state.pt']
    """
    inner = _unwrap(model)
    config = inner.config if config is None else config
    if config != inner.config:
        raise ValueError(
            "config: expected the model's own config (model.config), got a different EncoderConfig"
        )
    final = Path(path)
    _check_target(final, overwrite)
    meta = dict(metadata or {})
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata: expected JSON-serialisable values: {e}") from None
    train_state = _collect_train_state(optimizer, scheduler, extra_state)

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
        _write_files(tmp, inner, config, meta, train_state)
        _commit(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _resolve(path: str | os.PathLike) -> tuple[Path, Path]:
    path = Path(path)
    if path.is_dir():
        return path, path / _WEIGHTS
    if path.suffix == ".safetensors":
        return path.parent, path
    if not path.exists():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    raise ValueError(
        f"{path}: expected a nortonkit checkpoint directory (or its "
        f"{_WEIGHTS}); for a fairseq .pt use load_fairseq_checkpoint"
    )


def _read_config(directory: Path) -> dict[str, Any]:
    cfg_path = directory / _CONFIG
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{cfg_path}: config.json not found; not a nortonkit checkpoint")
    try:
        doc = json.loads(cfg_path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ValueError(f"{cfg_path}: not valid JSON (truncated or foreign): {e}") from None
    if not isinstance(doc, dict) or doc.get("format") != CHECKPOINT_FORMAT:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{cfg_path}: expected format {CHECKPOINT_FORMAT!r}, got {got!r}")
    if doc.get("format_version") != _FORMAT_VERSION:
        raise ValueError(
            f"{cfg_path}: expected format_version {_FORMAT_VERSION}, "
            f"got {doc.get('format_version')!r}"
        )
    return doc


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The ``metadata`` mapping stored in a checkpoint's ``config.json``.

    Examples
    --------
    >>> import tempfile
    >>> d = save_checkpoint(Path(tempfile.mkdtemp()) / "c",
    ...                     DualEncoder(EncoderConfig(preset="tiny")), metadata={"run": "a"})
    >>> read_checkpoint_metadata(d)
    {'run': 'a'}
    """
    directory, _ = _resolve(path)
    return dict(_read_config(directory).get("metadata") or {})


def load_checkpoint(path: str | os.PathLike, verify_hash: bool = True) -> LoadedCheckpoint:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Parameters
    ----------
    path : path-like
        the checkpoint directory, or its ``model.safetensors``.
    verify_hash : bool
        compare the weights' sha256 with the one recorded in ``config.json``.

    Returns
    -------
    LoadedCheckpoint
        ``(model, config, train_state)``; the model is in eval mode.

    Raises
    ------
    FileNotFoundError
        naming the missing file.
    ValueError
        naming the file, for truncated or foreign files, a hash mismatch, unknown config keys,
        or weights of another architecture (listing missing / unexpected keys and shapes).

    Examples
    --------
    >>> import tempfile
    >>> _ = torch.manual_seed(0)
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> d = save_checkpoint(Path(tempfile.mkdtemp()) / "c", model)
    >>> loaded = load_checkpoint(d)
    >>> bool(torch.equal(loaded.model.logit_scale, model.logit_scale)), loaded.train_state
    (True, None)
    """
    from safetensors import SafetensorError  # noqa: PLC0415 -- optional heavy dependency (safetensors)
    from safetensors.torch import load_file  # noqa: PLC0415 -- optional heavy dependency (safetensors)

    directory, weights_path = _resolve(path)
    doc = _read_config(directory)
    config = EncoderConfig.from_dict(doc.get("encoder"), source=str(directory / _CONFIG))
    if not weights_path.is_file():
        raise FileNotFoundError(f"{weights_path}: weights file not found")
    if verify_hash and doc.get("weights_sha256"):
        actual = checkpoint_hash(weights_path)
        if actual != doc["weights_sha256"]:
            raise ValueError(
                f"{weights_path}: sha256 {actual[:12]}... does not match "
                f"{doc['weights_sha256'][:12]}... recorded in config.json "
                "(truncated or modified weights)"
            )
    try:
        state_dict = load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(
            f"{weights_path}: not a readable safetensors file (truncated or foreign): {e}"
        ) from None
    model = DualEncoder(config, load_pretrained=False, init_weights=False)
    load_state_dict_strict(model, state_dict, str(weights_path), strict=True, assign=True)
    train_state = None
    if (directory / _TRAIN_STATE).is_file():
        train_state = safe_torch_load(directory / _TRAIN_STATE)
        if not isinstance(train_state, dict) or "rng" not in train_state:
            raise ValueError(
                f"{directory / _TRAIN_STATE}: expected a train-state dict with "
                "optimizer/scheduler/rng/extra entries"
            )
    return LoadedCheckpoint(model.eval(), config, train_state)


def restore_train_state(
    train_state: Mapping[str, Any],
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: Any | None = None,
    rng: bool = True,
) -> dict[str, Any] | None:
    """Load optimizer / scheduler / RNG states from a train state; return its ``extra``.

    The optimizer must be built over the same parameters in the same order as when saving
    (``trainable_parameters(model).values()``).

    Examples
    --------
    >>> import tempfile
    >>> from nortonkit.encoders import trainable_parameters
    >>> model = DualEncoder(EncoderConfig(preset="tiny"))
    >>> opt = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-3)
    >>> d = save_checkpoint(Path(tempfile.mkdtemp()) / "c", model, optimizer=opt,
    ...                     extra_state={"step": 3})
    >>> restore_train_state(load_checkpoint(d).train_state, opt)
    {'step': 3}
    """
    if optimizer is not None:
        if train_state.get("optimizer") is None:
            raise ValueError("train_state: holds no optimizer state")
        optimizer.load_state_dict(train_state["optimizer"])
    if scheduler is not None:
        if train_state.get("scheduler") is None:
            raise ValueError("train_state: holds no scheduler state")
        scheduler.load_state_dict(train_state["scheduler"])
    if rng:
        restore_rng_state(train_state["rng"])
    return train_state.get("extra")
