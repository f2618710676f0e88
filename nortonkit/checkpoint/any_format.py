"""Either kind of checkpoint, by path: a nortonkit directory or a released fairseq file.

:func:`load_any_checkpoint` serves command lines and papermill parameters that accept both.
"""

from __future__ import annotations

import os
from pathlib import Path

from nortonkit.encoders import DualEncoder

from .fairseq import FAIRSEQ_SUFFIXES, load_fairseq_checkpoint
from .native import load_checkpoint

__all__ = ["load_any_checkpoint"]


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


