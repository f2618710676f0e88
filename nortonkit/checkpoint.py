"""Checkpoints: strict loading of released fairseq files and nortonkit's own format.

Released VideoCLIP / Norton files
    :func:`load_fairseq_checkpoint` reads a fairseq ``.pt`` (weights under ``model``, or
    ``state_dict``, or a bare state dict; keys prefixed ``mmmodel.``; often float16) into a
    :class:`~nortonkit.encoders.DualEncoder`. The load is strict: every missing or unexpected
    key is an error listing them, except the whitelisted keys below, and every shape mismatch
    is an error naming key, expected and actual shape. Weights are cast to float32.

    * :data:`LEGACY_KEYS`: the two ``position_ids`` buffers written by transformers < 4.31,
      dropped on load.
    * :data:`~nortonkit.encoders.KIT_ONLY_KEYS`: the model's own temperatures, absent from
      fairseq files; they keep their initial value ``log(1 / 0.07)``.

    Unpickling never executes code. Files are first read with ``torch.load(weights_only=True)``
    plus ``argparse.Namespace`` (VideoCLIP's ``args``). Files whose *metadata* holds classes
    outside that allow-list (fairseq ``cfg`` saved as OmegaConf containers, fairseq enums) are
    re-read by a restricted unpickler that admits the tensor-rebuild functions, builtin
    containers and numpy arrays, and replaces classes from :data:`METADATA_PLACEHOLDER_MODULES`
    with inert placeholders (they store their arguments and never run code). Any other global
    (``os.system``, ``builtins.eval``, ...) is refused, and a placeholder found among the
    weights is refused too.

nortonkit's own format (a directory)
    ``model.safetensors`` (weights), ``config.json`` (format marker, the resolved
    :class:`~nortonkit.encoders.EncoderConfig`, the weights' sha256, free metadata) and, when
    there is training state, ``train_state.pt`` (optimizer, scheduler, RNG states, the loop's
    ``extra_state``; read back with ``weights_only=True``). :func:`save_checkpoint` writes
    every file into ``.<name>.*.tmp/`` (each file temp-then-rename) and commits the directory
    with one ``os.replace`` at the end, so a killed process leaves the previous checkpoint or
    the new one, never a mix.
"""

from __future__ import annotations

import _compat_pickle
import argparse
import contextlib
import dataclasses
import hashlib
import io
import json
import os
import pathlib
import pickle
import random
import re
import shutil
import tempfile
import types
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .encoders import ENCODER_SIZES, KIT_ONLY_KEYS, DualEncoder, EncoderConfig
from .io import UnsafePickleError, atomic_write, numpy_pickle_global, safe_torch_load

__all__ = [
    "FAIRSEQ_PREFIX",
    "LEGACY_KEYS",
    "METADATA_PLACEHOLDER_MODULES",
    "CHECKPOINT_FORMAT",
    "FairseqCheckpoint",
    "LoadedCheckpoint",
    "read_torch_file",
    "fairseq_state_dict",
    "infer_config",
    "load_state_dict_strict",
    "load_fairseq_checkpoint",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "checkpoint_hash",
    "capture_rng_state",
    "restore_rng_state",
    "restore_train_state",
]

FAIRSEQ_PREFIX = "mmmodel."
#: Persistent buffers of transformers < 4.31 checkpoints; ignored on load.
LEGACY_KEYS: tuple[str, ...] = (
    "video_encoder.bert.embeddings.position_ids",
    "text_encoder.embeddings.position_ids",
)
#: Top-level modules whose classes become inert placeholders in checkpoint *metadata*.
METADATA_PLACEHOLDER_MODULES: tuple[str, ...] = (
    "omegaconf",
    "fairseq",
    "mmpt",
    "typing",
    "enum",
    "pathlib",
)
CHECKPOINT_FORMAT = "nortonkit.checkpoint"
_FORMAT_VERSION = 1
_WEIGHTS, _CONFIG, _TRAIN_STATE = "model.safetensors", "config.json", "train_state.pt"


class FairseqCheckpoint(NamedTuple):
    """Result of :func:`load_fairseq_checkpoint`.

    model : DualEncoder
        in eval mode, float32.
    config : EncoderConfig
        the model's config (inferred from the weight shapes unless given).
    ignored_keys : tuple of str
        legacy keys that were present and dropped.
    missing_keys, unexpected_keys : tuple of str
        non-empty only with ``strict=False`` (with ``strict=True`` they are errors).
    metadata : dict
        JSON-ready summary: ``format``, ``top_level_keys``, ``num_updates``, ``args``, ``cfg``.
    """

    model: DualEncoder
    config: EncoderConfig
    ignored_keys: tuple[str, ...]
    missing_keys: tuple[str, ...]
    unexpected_keys: tuple[str, ...]
    metadata: dict[str, Any]


class LoadedCheckpoint(NamedTuple):
    """Result of :func:`load_checkpoint`: ``model`` (eval mode), ``config``, ``train_state``.

    ``train_state`` is ``None`` when the checkpoint holds no ``train_state.pt``; otherwise a
    dict with ``optimizer``, ``scheduler``, ``rng`` and ``extra`` (see :func:`save_checkpoint`).
    """

    model: DualEncoder
    config: EncoderConfig
    train_state: dict[str, Any] | None


# ----------------------------------------------------------------------------------------------
# Restricted reading of torch pickles


class _Inert:
    """Inert stand-in for an untrusted metadata class: records its arguments, runs no code."""

    _inert_name = "?"

    def __init__(self, *args: Any, **kwargs: Any):
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.__dict__["state"] = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.__dict__.setdefault("items", {})[key] = value

    def append(self, value: Any) -> None:
        self.__dict__.setdefault("list", []).append(value)

    def extend(self, values: Any) -> None:
        self.__dict__.setdefault("list", []).extend(values)

    def __repr__(self) -> str:
        return f"<inert {self._inert_name}>"


_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "OrderedDict"): OrderedDict,
    ("collections", "defaultdict"): defaultdict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("pathlib", "PosixPath"): pathlib.PosixPath,
    ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
    ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
    ("_codecs", "encode"): __import__("_codecs").encode,
}
for _name in (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "str",
    "bytes",
    "bytearray",
    "int",
    "float",
    "bool",
    "complex",
    "slice",
    "range",
):
    _SAFE_GLOBALS[("builtins", _name)] = getattr(__import__("builtins"), _name)

def _restricted_pickle_module(source: str) -> types.ModuleType:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)`` with a strict allow-list."""
    placeholders: dict[tuple[str, str], type] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            # Python 2 names, as protocol 2 (torch.save) writes builtins: __builtin__.dict
            if (module, name) in _compat_pickle.NAME_MAPPING:
                module, name = _compat_pickle.NAME_MAPPING[(module, name)]
            elif module in _compat_pickle.IMPORT_MAPPING:
                module = _compat_pickle.IMPORT_MAPPING[module]
            if (module, name) in _SAFE_GLOBALS:
                return _SAFE_GLOBALS[(module, name)]
            if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
                return getattr(torch, name)
            found = numpy_pickle_global(module, name)
            if found is not None:
                return found
            if module.split(".")[0] in METADATA_PLACEHOLDER_MODULES:
                key = (module, name)
                if key not in placeholders:
                    placeholders[key] = type(name, (_Inert,), {"_inert_name": f"{module}.{name}"})
                return placeholders[key]
            raise UnsafePickleError(
                f"{source}: refusing to unpickle global {module}.{name}; checkpoints may only "
                "hold tensors, builtin containers, numpy arrays, argparse.Namespace and "
                f"metadata from {METADATA_PLACEHOLDER_MODULES}"
            )

    def load(file: Any, **kwargs: Any) -> Any:
        return Unpickler(file, **kwargs).load()

    module = types.ModuleType("nortonkit_restricted_pickle")
    module.Unpickler = Unpickler  # type: ignore[attr-defined]
    module.load = load  # type: ignore[attr-defined]
    module.__name__ = "nortonkit_restricted_pickle"
    return module


def read_torch_file(path: str | os.PathLike) -> Any:
    """Read a torch-saved file without ever executing pickled code.

    Tries ``torch.load(weights_only=True)`` (plus ``argparse.Namespace``) first, then the
    restricted unpickler described in the module docstring.

    Raises
    ------
    FileNotFoundError
        when ``path`` does not exist.
    nortonkit.io.UnsafePickleError
        (a ``ValueError``) naming the file and the refused global.
    ValueError
        naming the file when it is truncated or not a torch file.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "a.pt"
    >>> torch.save({"args": argparse.Namespace(lr=0.1), "model": {"w": torch.ones(2)}}, p)
    >>> read_torch_file(p)["args"].lr
    0.1
    """
    path = Path(path)
    try:
        return safe_torch_load(path, [argparse.Namespace])
    except FileNotFoundError:
        raise
    except ValueError as first:
        try:
            return torch.load(
                path,
                map_location="cpu",
                weights_only=False,
                pickle_module=_restricted_pickle_module(str(path)),
            )
        except UnsafePickleError:
            raise
        except Exception as e:  # unreadable either way: report the first, clearer error
            raise ValueError(str(first)) from e


def _plain(obj: Any, depth: int = 0) -> Any:
    """JSON-ready copy of checkpoint metadata (Namespace, OmegaConf placeholders, numpy)."""
    if depth > 40:
        return "<...>"
    if obj is None or isinstance(obj, (bool, int, str)):
        return obj
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else repr(obj)
    if isinstance(obj, (bytes, bytearray)):
        return bytes(obj).decode("utf-8", "replace")
    if isinstance(obj, Tensor):
        return obj.item() if obj.numel() == 1 else f"<tensor {tuple(obj.shape)} {obj.dtype}>"
    if isinstance(obj, np.generic):
        return _plain(obj.item(), depth + 1)
    if isinstance(obj, np.ndarray):
        return f"<ndarray {obj.shape} {obj.dtype}>"
    if isinstance(obj, argparse.Namespace):
        return {str(k): _plain(v, depth + 1) for k, v in vars(obj).items()}
    if isinstance(obj, Mapping):
        return {str(k): _plain(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [_plain(v, depth + 1) for v in obj]
    if isinstance(obj, pathlib.PurePath):
        return str(obj)
    if isinstance(obj, _Inert):
        state = obj.__dict__.get("state")
        if isinstance(state, dict) and "_content" in state:  # OmegaConf container
            return _plain(state["_content"], depth + 1)
        if isinstance(state, dict) and "_val" in state:  # OmegaConf value node
            return _plain(state["_val"], depth + 1)
        for key in ("items", "list"):
            if key in obj.__dict__:
                return _plain(obj.__dict__[key], depth + 1)
        args = obj.__dict__.get("args", ())
        if len(args) == 1:  # enum member / single-value wrapper
            return _plain(args[0], depth + 1)
        return repr(obj)
    return repr(obj)


# ----------------------------------------------------------------------------------------------
# State dicts


def fairseq_state_dict(
    obj: Any, source: str = "checkpoint"
) -> tuple[dict[str, Tensor], tuple[str, ...], str]:
    """Extract the weights of a loaded fairseq file: ``(state_dict, ignored_keys, format)``.

    Accepts ``{"model": weights, ...}`` (fairseq), ``{"state_dict": weights}`` or a bare
    state dict. Strips the ``mmmodel.`` prefix, drops :data:`LEGACY_KEYS` and casts floating
    tensors to float32.

    Examples
    --------
    >>> sd, ignored, fmt = fairseq_state_dict({"model": {
    ...     "mmmodel.text_encoder.pooler.dense.bias": torch.zeros(2, dtype=torch.float16),
    ...     "mmmodel.text_encoder.embeddings.position_ids": torch.arange(4)[None]}})
    >>> list(sd), sd["text_encoder.pooler.dense.bias"].dtype, ignored, fmt
    (['text_encoder.pooler.dense.bias'], torch.float32,
     ('text_encoder.embeddings.position_ids',), 'fairseq')
    """
    if not isinstance(obj, Mapping):
        raise ValueError(
            f"{source}: expected a dict (fairseq checkpoint or state dict), "
            f"got {type(obj).__name__}"
        )
    if isinstance(obj.get("model"), Mapping):
        weights, fmt = obj["model"], "fairseq"
    elif isinstance(obj.get("state_dict"), Mapping):
        weights, fmt = obj["state_dict"], "state_dict"
    elif obj and all(isinstance(v, Tensor) for v in obj.values()):
        weights, fmt = obj, "bare"
    else:
        raise ValueError(
            f"{source}: no weights found; expected a 'model' or 'state_dict' entry or a bare "
            f"state dict, got top-level keys {sorted(map(str, obj))[:20]}"
        )
    out: dict[str, Tensor] = {}
    ignored: list[str] = []
    for key, value in weights.items():
        name = key[len(FAIRSEQ_PREFIX) :] if key.startswith(FAIRSEQ_PREFIX) else key
        if not isinstance(value, Tensor):
            raise ValueError(
                f"{source}: weight {key!r} is a {type(value).__name__}, expected a tensor"
            )
        if name in LEGACY_KEYS:
            ignored.append(name)
            continue
        out[name] = value.float() if value.is_floating_point() else value
    return out, tuple(ignored), fmt


def _layer_count(state_dict: Mapping[str, Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    idx = [int(m.group(1)) for k in state_dict if (m := pattern.match(k))]
    return max(idx) + 1 if idx else 0


def infer_config(state_dict: Mapping[str, Tensor], **overrides: Any) -> EncoderConfig:
    """Build the :class:`EncoderConfig` matching a (prefix-free) state dict's shapes.

    Sizes, layer counts, vocabulary, positions, feature dimension and ``n_classes`` come from
    the shapes. The head count cannot be read from shapes: 12 when it divides the width (all
    released checkpoints), else ``H // 64``; pass ``num_heads=`` otherwise. ``overrides`` set
    any other field (e.g. ``trainable="all"``).

    Examples
    --------
    >>> sd = DualEncoder(EncoderConfig(preset="tiny", n_classes=3)).state_dict()
    >>> cfg = infer_config(sd, num_heads=4)
    >>> cfg.hidden_size, cfg.video_layers, cfg.text_layers, cfg.n_classes
    (64, 2, 2, 3)
    """
    known = {f.name for f in dataclasses.fields(EncoderConfig)}
    if set(overrides) - known:
        raise ValueError(f"overrides: unknown EncoderConfig keys {sorted(set(overrides) - known)}")
    need = (
        "text_encoder.embeddings.word_embeddings.weight",
        "text_encoder.embeddings.position_embeddings.weight",
        "video_encoder.videomlp.linear1.weight",
        "text_encoder.encoder.layer.0.intermediate.dense.weight",
    )
    missing = [k for k in need if k not in state_dict]
    if missing:
        raise ValueError(f"state_dict: cannot infer the encoder sizes, missing keys {missing}")
    vocab, hidden = state_dict[need[0]].shape
    sizes = dict(
        hidden_size=int(hidden),
        vocab_size=int(vocab),
        max_positions=int(state_dict[need[1]].shape[0]),
        video_feature_dim=int(state_dict[need[2]].shape[1]),
        intermediate_size=int(state_dict[need[3]].shape[0]),
        video_layers=_layer_count(state_dict, "video_encoder.bert.encoder.layer."),
        text_layers=_layer_count(state_dict, "text_encoder.encoder.layer."),
        num_heads=12 if hidden % 12 == 0 else max(1, int(hidden) // 64),
        text_init="random",
    )
    if "video_encoder.classifier.weight" in state_dict:
        sizes["n_classes"] = int(state_dict["video_encoder.classifier.weight"].shape[0])
    sizes.update(overrides)
    preset = next(
        (name for name, p in ENCODER_SIZES.items() if all(sizes.get(k) == v for k, v in p.items())),
        "bert-base",
    )
    return EncoderConfig(**{"preset": preset, **sizes})


def _listing(keys: list[str], limit: int = 20) -> str:
    shown = ", ".join(keys[:limit])
    return f"[{shown}{f', ... and {len(keys) - limit} more' if len(keys) > limit else ''}]"


def load_state_dict_strict(
    model: nn.Module,
    state_dict: Mapping[str, Tensor],
    source: str = "checkpoint",
    strict: bool = True,
    allow_missing: tuple[str, ...] = (),
    assign: bool = False,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Copy ``state_dict`` into ``model`` after checking keys and shapes; return the leftovers.

    Shape mismatches are always errors (naming key, expected and actual shape). With
    ``strict=True``, missing keys (other than ``allow_missing``) and unexpected keys are
    errors listing them; with ``strict=False`` they are returned as ``(missing, unexpected)``.
    Values are cast to the model's dtype and device. ``assign=True`` adopts the loaded tensors
    as the model's parameters instead of copying into them (no second copy in memory; the
    parameter objects change, so build optimizers afterwards); ``requires_grad`` is kept.

    Examples
    --------
    >>> lin = nn.Linear(2, 1)
    >>> load_state_dict_strict(lin, {"weight": torch.zeros(1, 2), "bias": torch.zeros(1)})
    ((), ())
    >>> load_state_dict_strict(lin, {"weight": torch.zeros(1, 3)}, source="x.pt")
    Traceback (most recent call last):
    ...
    ValueError: x.pt: checkpoint does not match the model: shape mismatches (1):
    [weight: expected (1, 2), got (1, 3)]; missing keys (1): [bias]
    """
    expected = model.state_dict()
    problems: list[str] = []
    shapes = [
        f"{k}: expected {tuple(expected[k].shape)}, got {tuple(v.shape)}"
        for k, v in state_dict.items()
        if k in expected and tuple(v.shape) != tuple(expected[k].shape)
    ]
    missing = [k for k in expected if k not in state_dict and k not in allow_missing]
    unexpected = [k for k in state_dict if k not in expected]
    if shapes:
        problems.append(f"shape mismatches ({len(shapes)}): {_listing(shapes)}")
    if strict and missing:
        problems.append(f"missing keys ({len(missing)}): {_listing(missing)}")
    if strict and unexpected:
        problems.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
    if problems:
        raise ValueError(f"{source}: checkpoint does not match the model: " + "; ".join(problems))
    own = {
        k: v.to(device=expected[k].device, dtype=expected[k].dtype)
        for k, v in state_dict.items()
        if k in expected
    }
    model.load_state_dict(own, strict=False, assign=assign)
    return tuple(missing), tuple(unexpected)


def load_fairseq_checkpoint(
    path: str | os.PathLike,
    model: DualEncoder | None = None,
    strict: bool = True,
    config: EncoderConfig | Mapping[str, Any] | None = None,
) -> FairseqCheckpoint:
    """Load a released VideoCLIP / Norton fairseq checkpoint into a :class:`DualEncoder`.

    Parameters
    ----------
    path : path-like
        the ``.pt`` file (fairseq dict, ``{"state_dict": ...}`` or bare state dict).
    model : DualEncoder, optional
        load into this model; otherwise one is built from ``config``.
    strict : bool
        missing / unexpected keys are errors (the released loader used ``strict=False``,
        which silently skipped them; docs/protocols.md section 9, item 28).
    config : EncoderConfig or mapping, optional
        the config of the new model, or overrides applied to :func:`infer_config`'s result
        (e.g. ``{"seq_logit_scale_learnable": False}``). Ignored when ``model`` is given.

    Returns
    -------
    FairseqCheckpoint
        model (eval mode, float32), config, ignored / missing / unexpected keys, metadata.

    Notes
    -----
    Norton initialises from the VideoCLIP checkpoint (Appendix A). Kit-only temperatures
    (:data:`~nortonkit.encoders.KIT_ONLY_KEYS`) are not in these files and keep
    ``log(1 / 0.07)``.

    Examples
    --------
    >>> import tempfile
    >>> src = DualEncoder(EncoderConfig(preset="tiny")).state_dict()
    >>> p = Path(tempfile.mkdtemp()) / "ckpt.pt"
    >>> torch.save({"model": {"mmmodel." + k: v.half() for k, v in src.items()
    ...                       if k != "logit_scale"}}, p)
    >>> out = load_fairseq_checkpoint(p, config={"num_heads": 4})
    >>> out.config.preset, out.model.video_encoder.bert.embeddings.LayerNorm.weight.dtype
    ('tiny', torch.float32)
    """
    path = Path(path)
    obj = read_torch_file(path)
    state_dict, ignored, fmt = fairseq_state_dict(obj, str(path))
    fresh = model is None
    if model is None:
        if isinstance(config, EncoderConfig):
            cfg = config
        else:
            cfg = infer_config(state_dict, **dict(config or {}))
        # a strict load overwrites every weight: skip the (slow) random initialisation
        model = DualEncoder(cfg, load_pretrained=False, init_weights=not strict)
    elif not isinstance(model, DualEncoder):
        raise ValueError(f"model: expected a DualEncoder or None, got {type(model).__name__}")
    missing, unexpected = load_state_dict_strict(
        model, state_dict, str(path), strict, allow_missing=KIT_ONLY_KEYS, assign=fresh
    )
    meta: dict[str, Any] = {"format": fmt, "ignored_keys": list(ignored)}
    if fmt != "bare":
        meta["top_level_keys"] = sorted(map(str, obj))
        history = obj.get("optimizer_history")
        if isinstance(history, list) and history and isinstance(history[-1], Mapping):
            meta["num_updates"] = _plain(history[-1].get("num_updates"))
        meta["args"] = _plain(obj.get("args"))
        meta["cfg"] = _plain(obj.get("cfg"))
    return FairseqCheckpoint(model.eval(), model.config, ignored, missing, unexpected, meta)


# ----------------------------------------------------------------------------------------------
# Own format


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


def capture_rng_state() -> dict[str, Any]:
    """RNG states of torch (CPU, and CUDA when initialised), numpy and ``random``.

    Stored as tensors and plain types, so ``torch.load(weights_only=True)`` reads them back.

    Examples
    --------
    >>> state = capture_rng_state(); a = torch.rand(1)
    >>> restore_rng_state(state); bool(torch.rand(1) == a)
    True
    """
    np_name, np_key, np_pos, np_has_gauss, np_gauss = np.random.get_state(legacy=True)
    py_version, py_state, py_gauss = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_name),
            "key": torch.from_numpy(np_key.astype(np.int64)),
            "pos": int(np_pos),
            "has_gauss": int(np_has_gauss),
            "cached_gaussian": float(np_gauss),
        },
        "python": {"version": int(py_version), "state": list(py_state), "gauss": py_gauss},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the RNG states captured by :func:`capture_rng_state` (see its example)."""
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(
        (
            n["name"],
            n["key"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["cached_gaussian"],
        )
    )
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


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
    from safetensors.torch import save_file

    inner = _unwrap(model)
    config = inner.config if config is None else config
    if config != inner.config:
        raise ValueError(
            "config: expected the model's own config (model.config), got a different EncoderConfig"
        )
    final = Path(path)
    if final.suffix in (".safetensors", ".pt", ".json"):
        raise ValueError(f"path: expected a checkpoint directory name, got a file name {final}")
    if final.exists():
        if not final.is_dir() or not _is_checkpoint_dir(final):
            raise ValueError(
                f"path: {final} exists and is not a nortonkit checkpoint; refusing to replace it"
            )
        if not overwrite:
            raise ValueError(f"path: {final} already exists (pass overwrite=True to replace it)")
    meta = dict(metadata or {})
    try:
        json.dumps(meta)
    except (TypeError, ValueError) as e:
        raise ValueError(f"metadata: expected JSON-serialisable values: {e}") from None
    train_state = None
    if optimizer is not None or scheduler is not None or extra_state is not None:
        train_state = {
            "format_version": _FORMAT_VERSION,
            "optimizer": None if optimizer is None else optimizer.state_dict(),
            "scheduler": None if scheduler is None else scheduler.state_dict(),
            "rng": capture_rng_state(),
            "extra": None if extra_state is None else dict(extra_state),
        }
        for key in ("optimizer", "scheduler", "extra"):
            _weights_only_roundtrip("extra_state" if key == "extra" else key, train_state[key])

    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    try:
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


FAIRSEQ_SUFFIXES = (".pt", ".pth", ".bin")


def load_any_checkpoint(path: str | os.PathLike) -> tuple[DualEncoder, str]:
    """A model from either kind of checkpoint a user passes on the command line or to papermill.

    ``path`` is a nortonkit checkpoint directory (or its ``model.safetensors``), read by
    :func:`load_checkpoint`, or a released VideoCLIP/Norton fairseq file (``.pt``, ``.pth``,
    ``.bin``), read by :func:`load_fairseq_checkpoint`. Returns ``(model, kind)`` with ``kind``
    ``"nortonkit"`` or ``"fairseq"``; the model is in eval mode, on the CPU.

    Examples
    --------
    >>> load_any_checkpoint("/no/such/ckpt.pt")
    Traceback (most recent call last):
    ...
    FileNotFoundError: checkpoint: /no/such/ckpt.pt not found
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint: {path} not found")
    if path.is_file() and path.suffix in FAIRSEQ_SUFFIXES:
        return load_fairseq_checkpoint(path).model.eval(), "fairseq"
    return load_checkpoint(path).model, "nortonkit"


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
    from safetensors import SafetensorError
    from safetensors.torch import load_file

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
