"""One synthetic narrated video in memory, with its true alignment (explorer and tutorials).

:func:`synthetic_example` uses the generator of the HowTo100M-like corpus (the same world
model, timeline, narration noise and features) without writing anything.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..validation import check_int_at_least
from .config import NoiseConfig, SyntheticConfig
from .narration import _narrate
from .video import _frame_steps, _Plan, _render, _timeline
from .world import _TAG_EXAMPLE, World, _seq, build_world

__all__ = ["SyntheticExample", "synthetic_example"]


class SyntheticExample(NamedTuple):
    """One synthetic long video with its noisy narration and the true alignment.

    Attributes
    ----------
    features : Tensor, shape (T, D)
        float32 frame features, one per second, unit rows (rounded through float16 as stored).
    captions : list of str, length K
        ASR sentences in time order.
    caption_spans : Tensor, shape (K, 2)
        float32 ASR [start, end] in seconds.
    caption_features : Tensor, shape (K, D)
        Oracle text embeddings (:meth:`World.embed_text`); zero rows for pure chatter.
    aligned_step_per_caption : Tensor, shape (K,)
        int64 index into the steps, -1 for irrelevant captions.
    caption_offsets : Tensor, shape (K,)
        float32 applied asynchronous offset in seconds (0 for synchronous and irrelevant).
    step_spans : Tensor, shape (S, 2)
        int64 true [start, end) of each step in seconds.
    step_texts : list of str, length S
    step_prototypes : Tensor, shape (S, D)
        float32 unit visual prototypes of the steps.
    frame_step : Tensor, shape (T,)
        int64 step index of each second, -1 for background (including cutaways).
    """

    features: Tensor
    captions: list[str]
    caption_spans: Tensor
    caption_features: Tensor
    aligned_step_per_caption: Tensor
    caption_offsets: Tensor
    step_spans: Tensor
    step_texts: list[str]
    step_prototypes: Tensor
    frame_step: Tensor


def synthetic_example(
    seed: int = 0,
    n_steps: int = 6,
    noise: NoiseConfig | None = None,
    min_duration_s: int = 60,
    max_duration_s: int = 120,
    dim: int = 512,
) -> SyntheticExample:
    """Generate one narrated video in memory, for the alignment explorer and tutorials.

    Parameters
    ----------
    seed : int
        Seed of the world and of the video.
    n_steps : int
        Steps shown in the video (all narrated unless ``noise.unnarrated_rate`` > 0).
    noise : NoiseConfig, optional
        Default ``NoiseConfig()``; the step-skip knob is not applied (exactly ``n_steps``).
    min_duration_s, max_duration_s : int
        Range of the video length in seconds.
    dim : int
        Feature dimension D.

    Returns
    -------
    SyntheticExample
        ``features`` (T, D), ``captions`` (K), ``caption_spans`` (K, 2),
        ``aligned_step_per_caption`` (K,), ``step_spans`` (S, 2), ...

    Notes
    -----
    Same generator as the HowTo100M-like corpus (Norton Sec. 1 noise: asynchronous offsets,
    irrelevant sentences, filler words, cutaway frames). The similarity of a frame to its step's
    prototype is ``<x_t, p_s>``; with ``frame_noise``, ``style_weight`` and ``clutter_weight`` 0,
    equal their prototype up to float16 rounding.

    Examples
    --------
    >>> ex = synthetic_example(seed=0, n_steps=4, noise=NoiseConfig(irrelevant_rate=0.0))
    >>> ex.features.shape[1], len(ex.step_texts), bool((ex.aligned_step_per_caption >= 0).all())
    (512, 4, True)
    >>> bool(torch.allclose(ex.features.norm(dim=1), torch.ones(len(ex.features)), atol=1e-2))
    True
    """
    check_int_at_least("n_steps", n_steps, 1)
    if n_steps > 20:
        raise ValueError(f"n_steps: expected an integer in [1, 20], got {n_steps}")
    noise = noise if noise is not None else NoiseConfig()
    if not isinstance(noise, NoiseConfig):
        raise ValueError(f"noise: expected a NoiseConfig, got {type(noise).__name__}")
    check_int_at_least("min_duration_s", min_duration_s, 2 * n_steps)
    check_int_at_least("max_duration_s", max_duration_s, min_duration_s)
    cfg = SyntheticConfig(seed=seed, dim=dim, n_tasks=24, noise=noise, youcook_recipes=4,
                          coin_tasks=4, coin_videos=20)
    world = build_world(cfg)
    rng = _seq(seed, _TAG_EXAMPLE, n_steps)
    task = int(rng.integers(len(world.tasks)))
    script = _example_script(world, task, rng, n_steps)
    plan = _timeline(world, task, rng, noise, min_duration_s, max_duration_s, skip=False,
                     script=script)
    _narrate(world, plan, rng, noise)
    feats = _render(world, plan, rng, noise).astype(np.float32)
    return _as_example(world, plan, feats)


def _example_script(world: World, task: int, rng: np.random.Generator, n_steps: int) -> list[int]:
    """A script of exactly ``n_steps``: the task's steps, then other steps of its domain."""
    t = world.tasks[task]
    same = [k for k, d in enumerate(world.step_domain) if world.domains[d] == t.domain]
    extra = [k for k in rng.permutation(same).tolist() if k not in t.steps]
    return (list(t.steps) + extra)[:n_steps]


def _as_example(world: World, plan: _Plan, feats: np.ndarray) -> SyntheticExample:
    """Tensors of a narrated plan and its (T, D) float32 features."""
    ss = plan.sentences
    cap_feats = (np.stack([world.embed_text(x.text) for x in ss]) if ss
                 else np.zeros((0, world.dim)))
    return SyntheticExample(
        features=torch.from_numpy(feats),
        captions=[x.text for x in ss],
        caption_spans=torch.tensor([[x.start, x.end] for x in ss],
                                   dtype=torch.float32).reshape(-1, 2),
        caption_features=torch.from_numpy(cap_feats.astype(np.float32)),
        aligned_step_per_caption=torch.tensor([x.step for x in ss], dtype=torch.int64),
        caption_offsets=torch.tensor([x.offset if x.step >= 0 else 0.0 for x in ss],
                                     dtype=torch.float32),
        step_spans=torch.tensor([[s, e] for _, s, e in plan.steps], dtype=torch.int64),
        step_texts=[world.step_text(sid) for sid, _, _ in plan.steps],
        step_prototypes=torch.from_numpy(world.prototypes[[sid for sid, _, _ in plan.steps]]),
        frame_step=torch.from_numpy(_frame_steps(plan)),
    )
