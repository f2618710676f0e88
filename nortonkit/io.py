"""Safe file I/O: atomic writes and loaders that never execute pickled code.

* :func:`atomic_write` writes to a temporary file beside the target and renames it into place,
  so a killed process never leaves a half-written file under the final name.
* :func:`safe_pickle_load` reads pickles from downloads with a restricted unpickler that only
  admits builtin containers/scalars and numpy arrays; anything else is refused.
* :func:`safe_torch_load` is ``torch.load(weights_only=True)`` with an explicit allow-list.
* :func:`load_npy` reads one ``.npy`` array (never a pickle); a truncated or foreign file gives
  an error that names it and says what is wrong.
"""

from __future__ import annotations

import _compat_pickle
import contextlib
import importlib
import io
import math
import os
import pickle
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch

__all__ = [
    "atomic_write",
    "atomic_save_npy",
    "load_npy",
    "safe_pickle_load",
    "safe_pickle_loads",
    "safe_torch_load",
    "UnsafePickleError",
]


class UnsafePickleError(ValueError):
    """A pickle asked for a global outside the allow-list."""


@contextlib.contextmanager
def atomic_write(
    path: str | os.PathLike, mode: str = "wb", fsync: bool = True
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path``; rename it onto ``path`` only on success.

    ``fsync=False`` skips flushing to disk before the rename (about 10 ms a file): use it for
    bulk outputs whose completeness is recorded by a manifest written last.

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
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_save_npy(path: str | os.PathLike, array: Any, fsync: bool = True) -> None:
    """``np.save`` through :func:`atomic_write` (the file is complete or absent)."""

    with atomic_write(path, "wb", fsync=fsync) as f:
        np.save(f, np.asarray(array), allow_pickle=False)


_NPY_MAGIC = b"\x93NUMPY"


def load_npy(path: str | os.PathLike, mmap: bool = False) -> Any:
    """Read one ``.npy`` array, refusing pickled object arrays.

    Parameters
    ----------
    path : path-like
        A file written by ``np.save``.
    mmap : bool
        Memory-map it read-only instead of reading it.

    Returns
    -------
    numpy.ndarray (a read-only ``numpy.memmap`` with ``mmap=True``)

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        Naming the file: it is truncated (with the size its header announces and the size
        found), is empty, is not a ``.npy`` file (an ``.npz`` archive included), or holds a
        pickled object array.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> import numpy as np
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.npy"
    >>> np.save(p, np.ones((30, 512), np.float16))
    >>> load_npy(p).shape
    (30, 512)
    >>> _ = p.write_bytes(p.read_bytes()[:500])
    >>> load_npy(p)
    Traceback (most recent call last):
    ...
    ValueError: .../v.npy: truncated or corrupt .npy file: its header announces shape (30, 512) ...
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: .npy file not found")
    try:
        arr = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise ValueError(f"{path}: {_npy_problem(path, e)}") from None
    if not isinstance(arr, np.ndarray):
        with contextlib.suppress(Exception):
            arr.close()
        raise ValueError(f"{path}: not a .npy file: it is an .npz archive ({type(arr).__name__}),"
                         " expected a single array written by np.save")
    return arr


def _npy_problem(path: Path, error: BaseException) -> str:
    """What is wrong with a ``.npy`` file that ``np.load`` could not read, in words."""

    fmt = np.lib.format
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(len(_NPY_MAGIC))
        if size == 0:
            return "truncated or corrupt .npy file: the file is empty (0 bytes)"
        if head != _NPY_MAGIC:
            if _NPY_MAGIC.startswith(head):
                return (f"truncated or corrupt .npy file: it ends inside the .npy magic string "
                        f"({size} bytes)")
            return (f"not a .npy file: it starts with {head!r}, not the .npy magic string "
                    f"{_NPY_MAGIC!r}")
        f.seek(0)
        try:
            version = fmt.read_magic(f)
            read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = read(f)
            offset = f.tell()
        except Exception as e:  # a cut or garbled header fails in several ways
            return (f"truncated or corrupt .npy file: its header is incomplete or unreadable "
                    f"({size} bytes; numpy: {e})")
    if dtype.hasobject:
        return (f"holds a pickled object array (dtype {dtype}), refused; expected a numeric "
                "array")
    need = offset + math.prod(shape) * dtype.itemsize
    if size < need:
        return (f"truncated or corrupt .npy file: its header announces shape {tuple(shape)} "
                f"{dtype}, {need} bytes in all, the file has {size} bytes")
    return f"not a readable .npy file ({type(error).__name__}: {error})"


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
    for n in (
        "dict",
        "list",
        "tuple",
        "set",
        "frozenset",
        "str",
        "bytes",
        "int",
        "float",
        "bool",
        "complex",
        "slice",
        "range",
        "bytearray",
    )
}
_BUILTIN_GLOBALS |= {("collections", "OrderedDict"), ("_codecs", "encode")}


def python3_global_name(module: str, name: str) -> tuple[str, str]:
    """The Python 3 ``(module, name)`` of a global that a protocol 0-2 pickle names.

    Such pickles (``torch.save``'s protocol 2 included) name Python 2 modules, e.g.
    ``__builtin__.bytes``; this maps them as :mod:`pickle` itself does, so that an allow-list
    sees the real module.

    >>> python3_global_name("__builtin__", "set"), python3_global_name("numpy", "ndarray")
    (('builtins', 'set'), ('numpy', 'ndarray'))
    """
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


def data_pickle_global(module: str, name: str) -> Any:
    """A builtin container/scalar (:func:`builtin_pickle_global`), else a numpy global
    (:func:`numpy_pickle_global`), else ``None``: what any of the kit's unpicklers accepts."""
    found = builtin_pickle_global(module, name)
    return found if found is not None else numpy_pickle_global(module, name)


def builtin_pickle_global(module: str, name: str) -> Any:
    """The builtin container/scalar global a pickle may name (the allow-list), else ``None``.

    Allowed: ``dict``, ``list``, ``tuple``, ``set``, ``frozenset``, ``str``, ``bytes``,
    ``bytearray``, ``int``, ``float``, ``bool``, ``complex``, ``slice``, ``range``,
    ``collections.OrderedDict`` and ``_codecs.encode`` (how protocol 2 pickles bytes). Shared by
    every restricted unpickler of the package, with :func:`numpy_pickle_global`.

    Examples
    --------
    >>> builtin_pickle_global("builtins", "dict")
    <class 'dict'>
    >>> builtin_pickle_global("builtins", "eval") is None
    True
    """
    if (module, name) in _BUILTIN_GLOBALS:
        return getattr(importlib.import_module(module), name)
    return None


def numpy_pickle_global(module: str, name: str) -> Any:
    """The numpy global a pickle of arrays may name (the allow-list), else ``None``.

    Allowed: ``ndarray``, ``dtype``, the array/scalar rebuild functions (``numpy.core`` and
    ``numpy._core`` spellings) and the ``numpy.dtypes.*DType`` classes of numpy >= 1.25, checked
    to be ``np.dtype`` subclasses. Shared by every restricted unpickler of the package.

    Examples
    --------
    >>> numpy_pickle_global("numpy", "ndarray").__name__
    'ndarray'
    >>> numpy_pickle_global("numpy", "load") is None
    True
    """


    if (module, name) in _NUMPY_GLOBALS:
        return getattr(importlib.import_module(module), name)
    if module == "numpy.dtypes" and name.endswith("DType"):
        found = getattr(importlib.import_module(module), name, None)
        if isinstance(found, type) and issubclass(found, np.dtype):
            return found
    return None


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], source: str):
        super().__init__(file)
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        module, name = python3_global_name(module, name)
        found = data_pickle_global(module, name)
        if found is not None:
            return found
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
    >>> safe_pickle_loads(pickle.dumps(os.system))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    nortonkit.io.UnsafePickleError: <bytes>: refusing to unpickle global ...system; only ...
    """
    return _load(io.BytesIO(data), source)


def _load(f: IO[bytes], source: str) -> Any:
    try:
        return _RestrictedUnpickler(f, source).load()
    except UnsafePickleError:
        raise
    except Exception as e:  # truncated or corrupt data fails in many ways; name the source
        raise ValueError(
            f"{source}: not a readable pickle (truncated or corrupt): {type(e).__name__}: {e}"
        ) from None


def safe_torch_load(path: str | os.PathLike, extra_globals: list[Any] | None = None) -> Any:
    """``torch.load`` with ``weights_only=True`` on CPU; never executes pickled code.

    ``extra_globals`` extends torch's weights-only allow-list (e.g. ``argparse.Namespace`` for
    fairseq checkpoints). Truncated or foreign files raise ``ValueError`` naming the file.
    """

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint file not found")
    try:
        with torch.serialization.safe_globals(list(extra_globals or [])):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        refused, detail = _weights_only_detail(str(e))
        if refused:
            raise ValueError(
                f"{path}: refused by the weights-only loader, the file asks for the global "
                f"{refused} outside the allow-list; pass it in extra_globals only for a "
                "trusted file"
            ) from None
        raise ValueError(
            f"{path}: not a readable torch checkpoint (corrupt, or pickle features the "
            f"weights-only loader refuses): {detail}"
        ) from None
    except Exception as e:  # truncated zip, empty file, junk bytes: each fails differently
        first = str(e).splitlines()[0] if str(e) else "no detail"
        raise ValueError(
            f"{path}: not a readable torch checkpoint (truncated or foreign): "
            f"{type(e).__name__}: {first}"
        ) from None


def _weights_only_detail(message: str) -> tuple[str | None, str]:
    """(refused global or None, the informative line) of torch's weights-only error."""
    found = re.search(r"GLOBAL\s+([\w.]+)", message)
    if found:
        return found.group(1), found.group(0)
    _, _, tail = message.partition("WeightsUnpickler error:")
    for line in (tail or message).splitlines():
        line = line.strip()
        if line and not line.startswith(("Weights only load failed", "Check the documentation")):
            return None, line
    return None, "unknown error"
