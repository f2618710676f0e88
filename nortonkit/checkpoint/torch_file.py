"""Reading torch-saved files without ever executing pickled code, and their metadata as JSON.

:func:`read_torch_file` first tries ``torch.load(weights_only=True)`` plus ``argparse.Namespace``
(VideoCLIP's ``args``) through :func:`nortonkit.io.safe_torch_load`. Files whose *metadata*
holds classes outside that allow-list (fairseq ``cfg`` saved as OmegaConf containers, fairseq
enums) are re-read by a restricted unpickler. It admits the allow-list of
:mod:`nortonkit.io` (builtin containers and scalars, numpy arrays:
:func:`~nortonkit.io.data_pickle_global`, names mapped by
:func:`~nortonkit.io.python3_global_name`) plus
what torch files need (the tensor-rebuild functions, ``torch.Size``, ``torch.device``, dtypes,
``defaultdict``, ``argparse.Namespace``, pure paths), and replaces classes from
:data:`METADATA_PLACEHOLDER_MODULES` with inert placeholders (they store their arguments and
never run code). Any other global (``os.system``, ``builtins.eval``, ...) is refused.

``_plain`` turns such metadata (Namespace, placeholders, numpy values) into JSON-ready values.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import pickle
import types
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from nortonkit.io import (
    UnsafePickleError,
    data_pickle_global,
    python3_global_name,
    safe_torch_load,
)

__all__ = ["METADATA_PLACEHOLDER_MODULES", "read_torch_file"]

#: Top-level modules whose classes become inert placeholders in checkpoint *metadata*.
METADATA_PLACEHOLDER_MODULES: tuple[str, ...] = (
    "omegaconf",
    "fairseq",
    "mmpt",
    "typing",
    "enum",
    "pathlib",
)


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


# What torch files need beyond the builtin and numpy allow-list of nortonkit.io.
_TORCH_FILE_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): torch._utils._rebuild_parameter_with_state,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("collections", "defaultdict"): defaultdict,
    ("argparse", "Namespace"): argparse.Namespace,
    ("pathlib", "PosixPath"): pathlib.PosixPath,
    ("pathlib", "PurePosixPath"): pathlib.PurePosixPath,
    ("pathlib", "PureWindowsPath"): pathlib.PureWindowsPath,
}


def _allowed_global(module: str, name: str) -> Any:
    """The global a torch file may name (module and name already Python 3), else ``None``."""
    if (module, name) in _TORCH_FILE_GLOBALS:
        return _TORCH_FILE_GLOBALS[(module, name)]
    if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
        return getattr(torch, name)
    return data_pickle_global(module, name)


def _restricted_pickle_module(source: str) -> types.ModuleType:
    """A ``pickle``-like module for ``torch.load(pickle_module=...)`` with a strict allow-list."""
    placeholders: dict[tuple[str, str], type] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module: str, name: str) -> Any:
            module, name = python3_global_name(module, name)
            found = _allowed_global(module, name)
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
