"""Learning-rate schedule and optimiser of pre-training: linear warm-up, polynomial decay, Adam.

fairseq's ``polynomial_decay`` scheduler as Norton's yaml configures it (warm-up 1000 updates,
power 1, end 0) and Adam with betas (0.9, 0.98), over the parameters that ``model.trainable``
selects.
"""

from __future__ import annotations

from typing import Any

import torch

from ..encoders import (
    DualEncoder,
    trainable_parameters,
)
from ..validation import check_int_at_least
from .config import (
    TrainConfig,
)

__all__ = ["polynomial_decay_lr", "PolynomialDecaySchedule", "build_optimizer"]


# ----------------------------------------------------------------------------- schedule


def polynomial_decay_lr(
    num_updates: int,
    lr: float,
    warmup_updates: int,
    total_num_update: int,
    end_lr: float = 0.0,
    power: float = 1.0,
) -> float:
    r"""Learning rate after ``num_updates`` updates (fairseq ``polynomial_decay`` semantics).

    .. math::
        \eta(u) = \begin{cases} \eta\, u / w & u \le w \\
        (\eta - \eta_{end}) \big(1 - \frac{u - w}{U - w}\big)^{p} + \eta_{end} & w < u < U \\
        \eta_{end} & u \ge U \end{cases}

    Parameters
    ----------
    num_updates : updates completed so far (``u``); the next update runs at this rate, so the
        first update (``u = 0``) runs at rate 0 when ``warmup_updates > 0``, as in fairseq.
    lr : peak rate ``eta`` (Norton 1e-5).
    warmup_updates : ``w`` (official 1000; 0 = no warm-up).
    total_num_update : ``U``, where the rate reaches ``end_lr`` (official 1e6).
    end_lr, power : ``eta_end`` (0) and ``p`` (1 = linear).

    Returns
    -------
    float

    Notes
    -----
    Norton App. A (Adam, lr 1e-5); docs/protocols.md §6 (fairseq ``polynomial_decay``, warm-up
    1000, ``total_num_update`` 1e6, so the decay is negligible over a real run).

    Examples
    --------
    >>> [polynomial_decay_lr(u, 1.0, 2, 6) for u in range(8)]
    [0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0]
    """
    if warmup_updates > 0 and num_updates <= warmup_updates:
        return lr * num_updates / warmup_updates
    if num_updates >= total_num_update:
        return end_lr
    remaining = 1 - (num_updates - warmup_updates) / (total_num_update - warmup_updates)
    return (lr - end_lr) * remaining**power + end_lr


class PolynomialDecaySchedule:
    """Sets the optimizer's rate to :func:`polynomial_decay_lr` before every update.

    The rate is a pure function of the update count, so the state is that count only.

    >>> opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    >>> sched = PolynomialDecaySchedule(opt, lr=1.0, warmup_updates=2, total_num_update=6)
    >>> sched.step_update(1), opt.param_groups[0]["lr"]
    (0.5, 0.5)
    """

    def __init__(self, optimizer: torch.optim.Optimizer, lr: float, warmup_updates: int,
                 total_num_update: int, end_lr: float = 0.0, power: float = 1.0):
        check_int_at_least("warmup_updates", warmup_updates, 0)
        check_int_at_least("total_num_update", total_num_update, 1)
        if total_num_update <= warmup_updates:
            raise ValueError(
                f"total_num_update: expected more than warmup_updates={warmup_updates}, got "
                f"{total_num_update}"
            )
        self.optimizer = optimizer
        self.lr, self.warmup_updates, self.total_num_update = lr, warmup_updates, total_num_update
        self.end_lr, self.power = end_lr, power
        self.num_updates = 0

    def step_update(self, num_updates: int) -> float:
        """Set and return the rate of the update that follows ``num_updates`` updates."""
        self.num_updates = int(num_updates)
        rate = polynomial_decay_lr(self.num_updates, self.lr, self.warmup_updates,
                                   self.total_num_update, self.end_lr, self.power)
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        return rate

    def state_dict(self) -> dict[str, Any]:
        return {"num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_update(int(state["num_updates"]))


def build_optimizer(encoder: DualEncoder, config: TrainConfig) -> torch.optim.Adam:
    """Adam over exactly ``trainable_parameters(encoder)`` (temperatures included).

    >>> from nortonkit.train.config import config_from_dict
    >>> cfg = config_from_dict({"model": {"preset": "tiny"}})
    >>> opt = build_optimizer(DualEncoder(cfg.model), cfg)
    >>> opt.defaults["betas"], len(opt.param_groups[0]["params"]) > 0
    ((0.9, 0.98), True)
    """
    o = config.optim
    params = list(trainable_parameters(encoder).values())
    if not params:
        raise ValueError(f"model.trainable: {config.model.trainable!r} selects no parameter")
    return torch.optim.Adam(params, lr=o.lr, betas=o.betas, eps=o.eps,
                            weight_decay=o.weight_decay)
