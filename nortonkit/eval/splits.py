"""The validation split that fine-tuning selects on, carved from the training data.

Fine-tuning (Norton Tables 4-6, :mod:`nortonkit.lab.finetune`) selects its weights on a seeded
fraction of the *training* videos, never on the test set (``docs/protocols.md`` §9 items
18-19; the released yamls validated on the test set).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["split_validation"]


def split_validation(ids: Sequence[str], fraction: float, seed: int) -> tuple[list, list]:
    """Seeded split of training ids into (train, validation); validation gets >= 1 id.

    Examples
    --------
    >>> tr, va = split_validation([f"v{i}" for i in range(10)], 0.2, seed=0)
    >>> len(tr), len(va), sorted(set(tr) | set(va)) == sorted(f"v{i}" for i in range(10))
    (8, 2, True)
    """
    ids = list(ids)
    if len(ids) < 2:
        raise ValueError(f"training set: expected at least 2 items to carve a validation split, "
                         f"got {len(ids)}")
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {fraction!r}")
    perm = np.random.default_rng(seed).permutation(len(ids))
    n_val = min(len(ids) - 1, max(1, round(fraction * len(ids))))
    val = sorted(perm[:n_val].tolist())
    train = sorted(perm[n_val:].tolist())
    return [ids[i] for i in train], [ids[i] for i in val]
