"""Scoped torch CPU thread count: set it for a block, restore the caller's on exit."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from .validation import check_int_at_least

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(threads: int | None, name: str = "threads") -> Iterator[int]:
    """Run a block with ``torch.set_num_threads(threads)``; the previous count comes back after.

    Parameters
    ----------
    threads : intra-op CPU threads for the block (>= 1), or None to keep the current count.
    name : the option's name in the error raised for a bad ``threads``.

    Yields
    ------
    int
        The thread count in force inside the block.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1) as n:
    ...     n, torch.get_num_threads()
    (1, 1)
    >>> torch.get_num_threads() == before
    True
    """
    if threads is not None:
        check_int_at_least(name, threads, 1)
    old = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(old)
