"""Safe file I/O: atomic writes and loaders that never execute pickled code.

* :func:`atomic_write` writes to a temporary file beside the target and renames it into place,
  so a killed process never leaves a half-written file under the final name.
* :func:`safe_pickle_load` reads pickles from downloads with a restricted unpickler that only
  admits builtin containers/scalars and numpy arrays; anything else is refused.
* :func:`safe_torch_load` is ``torch.load(weights_only=True)`` with an explicit allow-list.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = [
    "atomic_write",
    "atomic_save_npy",
    "safe_pickle_load",
    "safe_pickle_loads",
    "safe_torch_load",
    "UnsafePickleError",
]


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list."""


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it onto ``path`` only on success.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_write(d / "a.txt", "w") as f:
    ...     _ = f.write("hello")
    >>> (d / "a.txt").read_text()
    'hello'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_npy(path: str | os.PathLike, array: Any) -> None:
    """``np.save`` through :func:`atomic_write` (the file is complete or absent)."""
    import numpy as np

    with atomic_write(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


_NUMPY_GLOBALS = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
}
_BUILTIN_GLOBALS = {
    ("builtins", n)
    for n in ("dict", "list", "tuple", "set", "frozenset", "str", "bytes", "int", "float",
              "bool", "complex", "slice", "range", "bytearray")
}
_BUILTIN_GLOBALS |= {("collections", "OrderedDict"), ("_codecs", "encode")}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _NUMPY_GLOBALS or (module, name) in _BUILTIN_GLOBALS:
            return super().find_class(module, name)
        if module.startswith("numpy") and name.endswith("DType"):  # numpy >= 1.25 dtype classes
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"{self._source}: refusing to unpickle global {module}.{name}; only builtin "
            "containers/scalars and numpy arrays are allowed"
        )


def safe_pickle_load(path: str | os.PathLike) -> Any:
    """Load a pickle file allowing only builtin containers/scalars and numpy arrays.

    Raises :class:`UnsafePickleError` (a ``ValueError``) naming the file and the refused global,
    and ``ValueError`` naming the file when it is truncated or not a pickle.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: pickle file not found")
    with open(path, "rb") as f:
        return _load(f, str(path))


def safe_pickle_loads(data: bytes, source: str = "<bytes>") -> Any:
    """:func:`safe_pickle_load` for in-memory bytes.

    >>> safe_pickle_loads(pickle.dumps({"a": [1, 2.0, "x"]}))
    {'a': [1, 2.0, 'x']}
    >>> safe_pickle_loads(pickle.dumps(os.system))
    Traceback (most recent call last):
    ...
    nortonkit.io.UnsafePickleError: <bytes>: refusing to unpickle global posix.system; only builtin containers/scalars and numpy arrays are allowed
    """
    return _load(io.BytesIO(data), source)


def _load(f: IO[bytes], source: str) -> Any:
    try:
        return _RestrictedUnpickler(f, source).load()
    except UnsafePickleError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, IndexError) as e:
        raise ValueError(f"{source}: not a readable pickle (truncated or corrupt): {e}") from None


def safe_torch_load(path: str | os.PathLike, extra_globals: list[Any] | None = None) -> Any:
    """``torch.load`` with ``weights_only=True`` on CPU; never executes pickled code.

    ``extra_globals`` extends torch's weights-only allow-list (e.g. ``argparse.Namespace`` for
    fairseq checkpoints). Truncated or foreign files raise ``ValueError`` naming the file.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        with torch.serialization.safe_globals(list(extra_globals or [])):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise ValueError(
            f"{path}: refused by the weights-only loader (it asks for code outside the "
            f"allow-list): {str(e).splitlines()[0]}"
        ) from None
    except (RuntimeError, EOFError, OSError) as e:
        raise ValueError(f"{path}: not a readable torch checkpoint (truncated or foreign): {e}") from None
