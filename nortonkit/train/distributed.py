"""Multi-process training helpers: torchrun initialisation and gathering with gradients.

``torchrun`` (or SLURM + torchrun) sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR`` and ``MASTER_PORT``; :func:`init_distributed` reads them and starts the process
group with the ``nccl`` backend on GPUs and ``gloo`` on CPUs, so the same code path is tested on
a CPU-only machine. Without those variables everything runs in a single process
(``world_size = 1``) and the helpers below are identities.

Contrastive negatives across ranks (``negatives="global"``) use :func:`all_gather_with_grad`,
which concatenates the per-rank embeddings along the batch axis and sends the gradient of the
gathered tensor back to the rank that owns each slice (open_clip's ``gather_with_grad``). The
default (``negatives="local"``) keeps each rank's loss on its own batch, as the official code
did (docs/protocols.md §6, §9 item 17).
"""

from __future__ import annotations

import os
from datetime import timedelta
from typing import Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "DistEnv",
    "init_distributed",
    "cleanup_distributed",
    "is_distributed",
    "all_gather_with_grad",
    "all_gather_object",
    "broadcast_object",
    "all_reduce_mean",
    "barrier",
]


class DistEnv(NamedTuple):
    """Where this process sits in a (possibly single-process) run.

    Attributes
    ----------
    rank : global rank, ``0 <= rank < world_size``.
    world_size : number of processes.
    local_rank : rank on this node (selects the GPU).
    device : the torch device this process computes on.
    backend : ``"nccl"``, ``"gloo"``, or ``"none"`` for a single process.
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str

    @property
    def is_main(self) -> bool:
        """True on rank 0, the process that logs and writes checkpoints."""
        return self.rank == 0


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"environment variable {name}: expected an integer, got {raw!r}") from None


def init_distributed(device: str = "auto", timeout_s: float = 1800.0) -> DistEnv:
    """Start the process group from torchrun's environment variables (or run single-process).

    Parameters
    ----------
    device : ``"auto"`` (CUDA when available, else CPU), ``"cpu"``, ``"cuda"``.
    timeout_s : collective timeout in seconds.

    Returns
    -------
    DistEnv. With ``WORLD_SIZE`` unset or 1, no process group is created and
    ``backend == "none"``.

    Notes
    -----
    GPUs use ``nccl`` and one device per process (``cuda:LOCAL_RANK``); CPUs use ``gloo``.
    Calling it again when a group already exists returns the current environment.

    Examples
    --------
    >>> env = init_distributed("cpu")  # no torchrun variables: a single process
    >>> env.rank, env.world_size, env.backend
    (0, 1, 'none')
    """
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device: expected one of ('auto', 'cpu', 'cuda'), got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device: 'cuda' requested but torch.cuda.is_available() is False")
    use_cuda = device == "cuda" or (device == "auto" and torch.cuda.is_available())
    world_size = _env_int("WORLD_SIZE", 1)
    rank = _env_int("RANK", 0)
    local_rank = _env_int("LOCAL_RANK", 0)
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(
            f"RANK/WORLD_SIZE: expected 0 <= RANK < WORLD_SIZE, got RANK={rank}, "
            f"WORLD_SIZE={world_size}"
        )
    if use_cuda:
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK: {local_rank} but only {torch.cuda.device_count()} GPU(s) visible"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world_size == 1:
        return DistEnv(0, 1, 0, dev, "none")
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        for var in ("MASTER_ADDR", "MASTER_PORT"):
            if var not in os.environ:
                raise ValueError(
                    f"environment variable {var}: required when WORLD_SIZE={world_size} > 1 "
                    "(launch with torchrun, which sets it)"
                )
        dist.init_process_group(
            backend=backend,
            rank=rank,
            world_size=world_size,
            timeout=timedelta(seconds=timeout_s),
            device_id=dev if use_cuda else None,
        )
    return DistEnv(dist.get_rank(), dist.get_world_size(), local_rank, dev, dist.get_backend())


def cleanup_distributed() -> None:
    """Destroy the process group if one exists (safe to call in a single process)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True when a process group with more than one process is running."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


class _GatherWithGrad(torch.autograd.Function):
    """All-gather along dim 0 with possibly unequal sizes; the backward returns own slice."""

    @staticmethod
    def forward(ctx, x: Tensor, sizes: list[int], rank: int) -> Tensor:  # type: ignore[override]
        n_max = max(sizes)
        padded = x.new_zeros((n_max, *x.shape[1:]))
        padded[: x.shape[0]] = x
        parts = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(parts, padded.contiguous())
        ctx.sizes, ctx.rank = sizes, rank
        return torch.cat([p[:n] for p, n in zip(parts, sizes)], dim=0)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        # every rank computed the same (global) loss on the gathered tensor; the gradient for
        # this rank's slice is the sum over ranks of their gradients for that slice.
        grad = grad.contiguous()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        start = sum(ctx.sizes[: ctx.rank])
        return grad[start : start + ctx.sizes[ctx.rank]], None, None


def all_gather_with_grad(x: Tensor) -> Tensor:
    """Concatenate ``x`` from every rank along dim 0, keeping the autograd graph.

    Parameters
    ----------
    x : shape (B_r, ...), this rank's tensor; ``B_r`` may differ between ranks, the trailing
        shape and dtype may not.

    Returns
    -------
    Tensor of shape (sum_r B_r, ...), rank 0's rows first. In a single process, ``x`` itself.

    Notes
    -----
    The backward all-reduces (sums) the gradient of the gathered tensor and returns this
    rank's slice. Every rank computes the same loss on the gathered batch; DDP then averages the
    parameter gradients over the ``W`` ranks, and ``(1/W) * sum_r W * dL/dtheta_r`` is exactly
    the gradient of the loss on the combined batch, as in a single process (open_clip's
    ``gather_with_grad=True, local_loss=False``).

    Examples
    --------
    >>> x = torch.ones(2, 3, requires_grad=True)
    >>> all_gather_with_grad(x) is x  # single process
    True
    """
    if not is_distributed():
        return x
    rank = dist.get_rank()
    local = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    all_sizes = [torch.zeros_like(local) for _ in range(dist.get_world_size())]
    dist.all_gather(all_sizes, local)
    sizes = [int(s.item()) for s in all_sizes]
    return _GatherWithGrad.apply(x, sizes, rank)


def all_gather_object(obj: Any) -> list[Any]:
    """Gather a picklable object from every rank (``[obj]`` in a single process).

    >>> all_gather_object({"a": 1})
    [{'a': 1}]
    """
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """Return rank ``src``'s ``obj`` on every rank (``obj`` itself in a single process).

    >>> broadcast_object([1, 2])
    [1, 2]
    """
    if not is_distributed():
        return obj
    box = [obj if dist.get_rank() == src else None]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_reduce_mean(x: Tensor) -> Tensor:
    """Mean of ``x`` over ranks, without gradient (for logging); ``x`` in a single process.

    >>> all_reduce_mean(torch.tensor(2.0))
    tensor(2.)
    """
    if not is_distributed():
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / dist.get_world_size()


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()
