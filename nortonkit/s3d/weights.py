"""The released ``s3d_howto100m.pth``: its key/shape layout and strict, code-free loading.

* :func:`state_dict_layout` and :func:`layout_sha256` describe a state dict's keys, shapes and
  dtypes (and hash them), so a re-saved copy can be checked without loading it into a model.
* :func:`load_s3d_state_dict` reads the user's checkpoint with ``weights_only=True`` and checks
  every key and shape; :func:`load_s3d` builds the :class:`~nortonkit.s3d.network.S3D` from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from nortonkit.io import safe_torch_load

from .network import S3D

__all__ = ["state_dict_layout", "layout_sha256", "load_s3d_state_dict", "load_s3d"]



def state_dict_layout(state_dict: Mapping[str, Tensor], sort: bool = False) -> list[str]:
    """One ``key<TAB>shape<TAB>dtype`` line per entry, e.g. ``fc.bias\\t(512,)\\tfloat32``.

    Examples
    --------
    >>> state_dict_layout(torch.nn.Linear(2, 3).state_dict())
    ['weight\\t(3, 2)\\tfloat32', 'bias\\t(3,)\\tfloat32']
    """
    lines = [f"{k}\t{tuple(v.shape)!r}\t{str(v.dtype).removeprefix('torch.')}"
             for k, v in state_dict.items()]
    return sorted(lines) if sort else lines


def layout_sha256(state_dict: Mapping[str, Tensor], sort: bool = True) -> str:
    """sha256 of :func:`state_dict_layout` joined by newlines plus a trailing newline.

    The released checkpoint's layout hashes to ``0bbdbfed...c48b`` sorted and ``b5fca057...6c76``
    in state-dict order; use it to check a re-saved copy without loading it into a model.

    Examples
    --------
    >>> with torch.device("meta"):
    ...     net = S3D()
    >>> layout_sha256(net.state_dict())
    '0bbdbfed8302816cfca66d58901646e46fe7b2ce6b1d6f93776efee9fe80c48b'
    """
    text = "\n".join(state_dict_layout(state_dict, sort=sort)) + "\n"
    return hashlib.sha256(text.encode()).hexdigest()


def _expected_layout(with_text: bool) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    with torch.device("meta"):
        model = S3D(with_text=with_text)
    return {k: (tuple(v.shape), v.dtype) for k, v in model.state_dict().items()}


def _bare_state_dict(path: Path, obj: Any) -> dict[str, Tensor]:
    """The tensors of a loaded file: wrapper and ``module.`` prefix removed, all values tensors."""
    if isinstance(obj, Mapping):
        for wrapper in ("state_dict", "model"):
            if wrapper in obj and isinstance(obj[wrapper], Mapping):
                obj = obj[wrapper]
                break
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"{path}: expected a non-empty state_dict (mapping of key -> tensor), "
                         f"got {type(obj).__name__}")
    sd = {str(k): v for k, v in obj.items()}
    if all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
    bad = [k for k, v in sd.items() if not isinstance(v, Tensor)]
    if bad:
        raise ValueError(f"{path}: {len(bad)} entries are not tensors, e.g. {bad[:3]}")
    return sd


def _check_keys(path: Path, sd: Mapping[str, Tensor], expected: Mapping[str, Any],
                optional: set[str]) -> None:
    """Raise naming the missing and unexpected keys of ``sd`` (``optional`` may be absent)."""
    missing = [k for k in expected if k not in sd and k not in optional]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys (e.g. {missing[:4]})")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys (e.g. {unexpected[:4]})")
        raise ValueError(f"{path}: not an S3D HowTo100M state_dict: {'; '.join(parts)}; "
                         f"expected the {len(expected)} keys of s3d_howto100m.pth")


def _conform(path: Path, sd: Mapping[str, Tensor],
             expected: Mapping[str, tuple[tuple[int, ...], torch.dtype]]) -> dict[str, Tensor]:
    """Present entries in the official key order, shape-checked, floats cast to float32."""
    out: dict[str, Tensor] = {}
    for key, (shape, dtype) in expected.items():
        if key not in sd:
            continue
        t = sd[key]
        if tuple(t.shape) != shape:
            raise ValueError(f"{path}: {key}: expected shape {shape}, got {tuple(t.shape)}")
        if dtype.is_floating_point:
            if not t.is_floating_point():
                raise ValueError(f"{path}: {key}: expected a floating tensor, got {t.dtype}")
            t = t.to(torch.float32)
        else:
            t = t.to(dtype)
        out[key] = t
    return out


def load_s3d_state_dict(path: str | Path, *, require_text: bool = True) -> dict[str, Tensor]:
    """Read and check ``s3d_howto100m.pth`` (never executes pickled code).

    Parameters
    ----------
    path : str or Path
        The user's checkpoint: a bare ``state_dict`` of 537 entries (legacy or zip format).
        A ``{"state_dict": ...}``/``{"model": ...}`` wrapper or a ``module.`` prefix on every key
        is removed; missing ``*.num_batches_tracked`` counters are added as 0.
    require_text : bool
        If False, the ``text_module.*`` keys may be absent (a video-only copy).

    Returns
    -------
    dict of str to Tensor
        Float entries as float32, in the official key order.

    Raises
    ------
    ValueError
        Naming the file and the offending keys: unreadable or refused file, missing or
        unexpected keys, wrong shapes, non-tensor values.

    Notes
    -----
    Loaded with ``torch.load(weights_only=True)`` through :func:`nortonkit.io.safe_torch_load`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bad.pth"
    >>> torch.save({"fc.weight": torch.zeros(512, 1024)}, p)
    >>> load_s3d_state_dict(p)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: .../bad.pth: not an S3D HowTo100M state_dict: 460 missing keys (e.g. [...
    """
    path = Path(path)
    sd = _bare_state_dict(path, safe_torch_load(path))
    expected = _expected_layout(with_text=True)
    for key in expected:
        if key.endswith(".num_batches_tracked") and key not in sd:
            sd[key] = torch.tensor(0, dtype=torch.int64)
    optional = set() if require_text else {k for k in expected if k.startswith("text_module.")}
    _check_keys(path, sd, expected, optional)
    return _conform(path, sd, expected)


def load_s3d(path: str | Path, *, with_text: bool = False,
             device: str | torch.device = "cpu") -> S3D:
    """Build :class:`S3D` in eval mode from the user's ``s3d_howto100m.pth``.

    Parameters
    ----------
    path : str or Path
        Checkpoint path (never downloaded; see ``data_recipes/EXTRACT.md``).
    with_text : bool
        Also load the text branch (needs the ``text_module.*`` keys).
    device : str or torch.device
        Where to put the model.

    Returns
    -------
    S3D
        Strictly loaded (every key matched), ``eval()`` mode, ``requires_grad=False``.

    Notes
    -----
    The official extractor does ``load_state_dict(torch.load(path))`` (strict) and ``eval()``;
    train-mode BatchNorm would change the features by ~0.2.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s3d_video_only.pth"
    >>> torch.save(S3D(with_text=False).state_dict(), p)
    >>> load_s3d(p).training
    False
    """
    sd = load_s3d_state_dict(path, require_text=with_text)
    if not with_text:
        sd = {k: v for k, v in sd.items() if not k.startswith("text_module.")}
    with torch.device("meta"):
        model = S3D(with_text=with_text)
    model.load_state_dict(sd, strict=True, assign=True)
    model.requires_grad_(False)
    return model.eval().to(device)
