"""One synthetic video: its timeline plan (cheap) and its rendered per-second features.

A video is one 512-d L2-normalised float16 feature per second (like S3D): the seconds of a step
are ``normalise(p_s + gamma * c_video + kappa * clutter_video + sigma * eps_t)`` with a video
style ``c_video``, the video's scene clutter (its objects, visible throughout) and AR(1) noise
``eps_t``; background segments (intros, talking heads, b-roll) lie between the steps, and a
video may skip steps of its task's script or do a step on another object. Background frames
inside step segments (cutaways) are the frame-level noise of :class:`NoiseConfig`.

The plan also carries the narration (:mod:`nortonkit.synthetic.narration` fills it in).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .config import NoiseConfig
from .world import World, _normalise, _unit_vectors


@dataclass
class _Sentence:
    text: str
    start: float
    end: float
    step: int  # index into the plan's steps, -1 = irrelevant
    offset: float  # applied offset (s) w.r.t. the synchronous position; 0 if irrelevant
    asynchronous: bool
    fillers: int
    mention: bool = False


@dataclass
class _Plan:
    task: int
    domain: int
    duration: int
    steps: list[tuple[int, int, int]]  # (step class id, start, end) in integer seconds [s, e)
    backgrounds: list[tuple[int, int, int]]  # (kind, start, end)
    cutaways: list[tuple[int, int]]  # [s, e) background seconds inside steps
    sentences: list[_Sentence] = field(default_factory=list)


def _timeline(world: World, task: int, rng: np.random.Generator, noise: NoiseConfig,
              min_s: int, max_s: int, skip: bool = True, step_range: tuple[float, float] = (6, 20),
              gap_max: float = 12.0, edge: tuple[float, float] = (3, 15),
              script: list[int] | None = None) -> _Plan:
    """Integer-second timeline: intro, steps separated by background gaps, outro, cutaways.

    Piece lengths are drawn, then scaled together so the video lasts ``[min_s, max_s]`` s.
    """
    t = world.tasks[task]
    script = list(t.steps) if script is None else list(script)
    if skip and noise.step_skip_rate > 0:
        keep = rng.random(len(script)) >= noise.step_skip_rate
        if keep.sum() < min(2, len(script)):
            keep[rng.choice(len(script), size=min(2, len(script)), replace=False)] = True
        script = [s for s, k in zip(script, keep) if k]
    if noise.step_variant_rate > 0:
        swap = rng.random(len(script)) < noise.step_variant_rate
        for j in np.flatnonzero(swap):
            options = [v for v in world.variants(script[j]) if v not in script]
            if options:
                script[j] = options[int(rng.random() * len(options))]
    n = len(script)
    step_d = rng.uniform(*step_range, size=n)
    gap_d = np.where(rng.random(n - 1) < 0.3, 0.0, rng.uniform(1.0, gap_max, size=n - 1))
    intro, outro = rng.uniform(*edge, size=2)
    pieces = [intro]
    for i in range(n):
        pieces.append(step_d[i])
        if i < n - 1:
            pieces.append(gap_d[i])
    pieces.append(outro)
    total = float(sum(pieces))
    target = float(np.clip(total, min_s, max_s))
    bounds = np.round(np.cumsum([0.0, *pieces]) * (target / total)).astype(int)
    duration = int(bounds[-1])
    steps, backgrounds = [], []
    for j in range(len(pieces)):
        s, e = int(bounds[j]), int(bounds[j + 1])
        if j % 2 == 1:  # odd pieces are steps
            steps.append((script[j // 2], s, max(e, s + 1)))
        elif e > s:
            kind = 0 if j == 0 else (3 if j == len(pieces) - 1 else int(rng.integers(1, 3)))
            backgrounds.append((kind, s, e))
    # steps may not overlap after the max(e, s+1) guard: shift the tail if needed
    fixed = []
    cursor = 0
    for sid, s, e in steps:
        s = max(s, cursor)
        e = max(e, s + 1)
        fixed.append((sid, s, e))
        cursor = e
    duration = max(duration, cursor)
    cutaways = []
    if noise.cutaway_rate > 0:
        for _, s, e in fixed:
            hit = np.flatnonzero(rng.random(e - s) < noise.cutaway_rate)
            for sec in (s + int(h) for h in hit):
                if cutaways and cutaways[-1][1] == sec:
                    cutaways[-1] = (cutaways[-1][0], sec + 1)
                else:
                    cutaways.append((sec, sec + 1))
    return _Plan(task=task, domain=world.domains.index(t.domain), duration=duration,
                 steps=fixed, backgrounds=backgrounds, cutaways=cutaways)


def _render(world: World, plan: _Plan, rng: np.random.Generator, noise: NoiseConfig) -> np.ndarray:
    """Features of a plan: (T, D) float16, L2-normalised rows, one per second."""
    T, D = plan.duration, world.dim
    base = np.empty((T, D), np.float32)
    talking = world.background_vector(1, plan.domain)
    base[:] = talking  # any second not covered below is background
    for kind, s, e in plan.backgrounds:
        base[s:e] = world.background_vector(kind, plan.domain)
    for sid, s, e in plan.steps:
        base[s:e] = world.prototypes[sid]
    for s, e in plan.cutaways:
        base[s:e] = talking
    eta = rng.standard_normal((T, D), dtype=np.float32) / np.float32(math.sqrt(D))
    rho = noise.temporal_smoothness
    if rho > 0:
        # AR(1) eps_t = rho eps_{t-1} + sqrt(1 - rho^2) eta_t as a log-step scan of
        # eps_t = sum_s rho^(t-s) b_s (elementwise only: identical bytes on every machine)
        eta[1:] *= np.float32(math.sqrt(1.0 - rho * rho))
        k = 1
        while k < T:
            eta[k:] = eta[k:] + np.float32(rho**k) * eta[:-k]  # right side read before write
            k *= 2
    style = _unit_vectors(rng, 1, D)[0]
    objects = sorted({world.steps[sid][1] for sid, _, _ in plan.steps})
    clutter = _normalise(world.object_vecs[objects].sum(0))
    scene = np.float32(noise.style_weight) * style + np.float32(noise.clutter_weight) * clutter
    x = base + scene.astype(np.float32) + np.float32(noise.frame_noise) * eta
    return _normalise(x).astype(np.float16)


def _frame_steps(plan: _Plan) -> np.ndarray:
    lab = np.full(plan.duration, -1, np.int64)
    for pos, (_, s, e) in enumerate(plan.steps):
        lab[s:e] = pos
    for s, e in plan.cutaways:
        lab[s:e] = -1
    return lab
