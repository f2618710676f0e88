"""The world model: vocabulary, instructional tasks, step classes and their visual prototypes.

An instructional *task* ("make spicy pancakes") is an ordered script of *steps*; a step is an
(action, object) pair of real English words ("whisk the eggs"), so captions go through the real
bert-base-uncased WordPiece tokenizer. Each step has a visual prototype with structure shared
between steps with the same action, object or domain::

    p_s = normalise(w_a * a[action] + w_o * o[object] + w_s * u[s] + w_d * d[domain])

Everything is a function of the seed: each part of the corpus draws from its own
``SeedSequence([seed, tag, ...])`` (:func:`_seq` and the ``_TAG_*`` stream tags).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .config import SyntheticConfig
from .vocabulary import _ACTION_LOOKUP, _BACKGROUND_KINDS, _DOMAINS, _OBJECT_LOOKUP

__all__ = ["Task", "World", "build_world"]


@dataclass(frozen=True)
class Task:
    """An instructional task: a name, a domain and an ordered script of step-class ids."""

    name: str
    domain: str
    steps: tuple[int, ...]


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return _normalise(rng.standard_normal((n, dim))).astype(np.float32)


@dataclass(frozen=True, eq=False)
class World:
    """Vocabulary, tasks, step classes and visual prototypes shared by every dataset.

    Attributes
    ----------
    actions, objects : tuple of str
        Base-form action verbs and object nouns.
    tasks : tuple of Task
    steps : tuple of (int, int)
        Step classes as (action index, object index), in order of first use; the step id is
        the position.
    step_domain : tuple of int
        Domain index of each step class.
    action_vecs, object_vecs, domain_vecs, background_vecs : numpy.ndarray
        Unit vectors, shapes (A, D), (O, D), (n_domains, D) and (n_background_kinds, D).
    prototypes : numpy.ndarray, shape (S, D)
        float32 unit step prototypes.
    """

    seed: int
    dim: int
    domains: tuple[str, ...]
    actions: tuple[str, ...]
    action_forms: tuple[tuple[str, str, str], ...]
    objects: tuple[str, ...]
    tasks: tuple[Task, ...]
    steps: tuple[tuple[int, int], ...]
    step_domain: tuple[int, ...]
    action_vecs: np.ndarray
    object_vecs: np.ndarray
    domain_vecs: np.ndarray
    background_vecs: np.ndarray
    prototypes: np.ndarray
    weights: tuple[float, float, float, float]

    def step_text(self, step: int) -> str:
        """``"<action> the <object>"`` for a step class id."""
        a, o = self.steps[step]
        return f"{self.actions[a]} the {self.objects[o]}"

    def embed_text(self, text: str) -> np.ndarray:
        """Oracle text embedding (a perfect bag-of-words encoder of this world), shape (D,).

        The first action word (any form) and the first object word are looked up: a known
        step gives its exact prototype, an unknown pair ``normalise(w_a a + w_o o)``, a lone
        object or action its unit vector, and a sentence without either the zero vector.
        """
        words = text.lower().replace(",", " ").split()
        a_idx = next((_ACTION_LOOKUP[w] for w in words if w in _ACTION_LOOKUP), None)
        o_idx = next((_OBJECT_LOOKUP[w] for w in words if w in _OBJECT_LOOKUP), None)
        a = None if a_idx is None else self.actions.index(a_idx)
        o = None if o_idx is None else self.objects.index(o_idx)
        if a is not None and o is not None:
            step = self._step_index.get((a, o))
            if step is not None:
                return self.prototypes[step].copy()
            wa, wo = self.weights[0], self.weights[1]
            v = wa * self.action_vecs[a] + wo * self.object_vecs[o]
            return _normalise(v).astype(np.float32)
        if o is not None:
            return self.object_vecs[o].copy()
        if a is not None:
            return self.action_vecs[a].copy()
        return np.zeros(self.dim, np.float32)

    @property
    def _step_index(self) -> dict[tuple[int, int], int]:
        cache = self.__dict__.get("_step_index_cache")
        if cache is None:
            cache = {s: i for i, s in enumerate(self.steps)}
            object.__setattr__(self, "_step_index_cache", cache)
        return cache

    def variants(self, step: int) -> list[int]:
        """Step classes of the same domain with the same action on another object."""
        cache = self.__dict__.get("_variant_cache")
        if cache is None:
            cache = {}
            for k, (a, _) in enumerate(self.steps):
                cache.setdefault((a, self.step_domain[k]), []).append(k)
            object.__setattr__(self, "_variant_cache", cache)
        a = self.steps[step][0]
        return [k for k in cache[(a, self.step_domain[step])] if k != step]

    def background_vector(self, kind: int, domain: int) -> np.ndarray:
        """Background prototype of a kind (intro, talking, b-roll, outro) in a domain, (D,)."""
        wd = self.weights[3]
        return _normalise(self.background_vecs[kind] + wd * self.domain_vecs[domain])


def _seq(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


# stream tags for SeedSequence keys
_TAG_WORLD, _TAG_HOW2, _TAG_YOUCOOK, _TAG_MSRVTT, _TAG_COIN, _TAG_ALIGN, _TAG_EXAMPLE = range(7)


def _task_names(rng: np.random.Generator, spec: dict[str, Any]) -> list[str]:
    names = []
    for v in spec["task_verbs"]:
        for m in spec["task_mods"]:
            for t in spec["task_things"]:
                names.append(f"{v} {m} {t}")
    order = rng.permutation(len(names))
    return [names[i] for i in order]


def _vocabulary() -> tuple[list[str], list[tuple[str, str, str]], list[str]]:
    """Base-form actions, their (base, gerund, third person) forms and objects of every domain.

    Words shared by several domains appear once, in order of first use.
    """
    actions: list[str] = []
    forms: list[tuple[str, str, str]] = []
    objects: list[str] = []
    for spec in _DOMAINS.values():
        for f in spec["actions"]:
            if f[0] not in actions:
                actions.append(f[0])
                forms.append(f)
        for o in spec["objects"]:
            if o not in objects:
                objects.append(o)
    return actions, forms, objects


def _task_scripts(
    rng: np.random.Generator, cfg: SyntheticConfig, domains: tuple[str, ...],
    actions: list[str], objects: list[str],
) -> tuple[list[Task], list[tuple[int, int]], list[int]]:
    """The tasks of the world and the step classes their scripts use.

    Domains get tasks in proportion to their share, task names are unique and a script holds
    unique steps. Returns the tasks, the step classes as (action index, object index) in order
    of first use, and the domain index of each step class.
    """
    shares = np.array([_DOMAINS[d]["share"] for d in domains])
    counts = np.floor(shares / shares.sum() * cfg.n_tasks).astype(int)
    counts[np.argsort(-shares)[: cfg.n_tasks - counts.sum()]] += 1
    names = {d: _task_names(rng, _DOMAINS[d]) for d in domains}
    steps: list[tuple[int, int]] = []
    step_domain: list[int] = []
    step_index: dict[tuple[int, int], int] = {}
    tasks: list[Task] = []
    for k in range(cfg.n_tasks):
        # interleave domains so that the first tasks cover every domain
        d = _interleaved_domain(k, counts)
        spec = _DOMAINS[domains[d]]
        dom_actions = [actions.index(f[0]) for f in spec["actions"]]
        dom_objects = [objects.index(o) for o in spec["objects"]]
        n_obj = int(rng.integers(3, 7))
        task_objects = rng.choice(dom_objects, size=min(n_obj, len(dom_objects)), replace=False)
        n_steps = int(rng.integers(cfg.min_steps, cfg.max_steps + 1))
        script: list[int] = []
        tries = 0
        while len(script) < n_steps and tries < 1000:
            tries += 1
            pair = (int(rng.choice(dom_actions)), int(rng.choice(task_objects)))
            if pair not in step_index:
                step_index[pair] = len(steps)
                steps.append(pair)
                step_domain.append(d)
            sid = step_index[pair]
            if sid not in script:
                script.append(sid)
        name_list = names[domains[d]]
        name = name_list[len([t for t in tasks if t.domain == domains[d]]) % len(name_list)]
        tasks.append(Task(name=name, domain=domains[d], steps=tuple(script)))
    return tasks, steps, step_domain


def build_world(config: SyntheticConfig | None = None) -> World:
    """Build the vocabulary, tasks, step classes and prototypes for a config.

    Parameters
    ----------
    config : SyntheticConfig, optional
        Uses ``seed``, ``dim``, ``n_tasks``, ``min_steps``, ``max_steps`` and the prototype
        weights. Default: ``SyntheticConfig()``.

    Returns
    -------
    World
        ``prototypes`` has shape (S, D) with S the number of distinct step classes.

    Notes
    -----
    Step prototype (unit norm), sharing structure between steps with the same action, object or
    domain so that the step classes are not trivially separable:

    .. math:: p_s = \\frac{w_a a_{act(s)} + w_o o_{obj(s)} + w_s u_s + w_d d_{dom(s)}}
              {\\lVert w_a a_{act(s)} + w_o o_{obj(s)} + w_s u_s + w_d d_{dom(s)} \\rVert}

    Examples
    --------
    >>> w = build_world(SyntheticConfig.preset("smoke"))
    >>> w.prototypes.shape[1], len(w.tasks)
    (512, 24)
    >>> w.step_text(w.tasks[0].steps[0]) in " ".join(w.step_text(s) for s in w.tasks[0].steps)
    True
    """
    cfg = config or SyntheticConfig()
    rng = _seq(cfg.seed, _TAG_WORLD)
    domains = tuple(_DOMAINS)
    actions, forms, objects = _vocabulary()
    dim = cfg.dim
    action_vecs = _unit_vectors(rng, len(actions), dim)
    object_vecs = _unit_vectors(rng, len(objects), dim)
    domain_vecs = _unit_vectors(rng, len(domains), dim)
    background_vecs = _unit_vectors(rng, len(_BACKGROUND_KINDS), dim)
    tasks, steps, step_domain = _task_scripts(rng, cfg, domains, actions, objects)

    weights = (cfg.action_weight, cfg.object_weight, cfg.step_weight, cfg.domain_weight)
    step_vecs = _unit_vectors(rng, len(steps), dim)
    a_idx = np.array([s[0] for s in steps])
    o_idx = np.array([s[1] for s in steps])
    proto = (weights[0] * action_vecs[a_idx] + weights[1] * object_vecs[o_idx]
             + weights[2] * step_vecs + weights[3] * domain_vecs[np.array(step_domain)])
    return World(
        seed=cfg.seed, dim=dim, domains=domains, actions=tuple(actions),
        action_forms=tuple(forms), objects=tuple(objects), tasks=tuple(tasks),
        steps=tuple(steps), step_domain=tuple(step_domain), action_vecs=action_vecs,
        object_vecs=object_vecs, domain_vecs=domain_vecs, background_vecs=background_vecs,
        prototypes=_normalise(proto).astype(np.float32), weights=weights,
    )


def _interleaved_domain(k: int, counts: np.ndarray) -> int:
    """Domain of task ``k`` when tasks of each domain are spread evenly over the task list."""
    # position of each task of domain d: (j + 0.5) / counts[d]; sort all positions
    keys = sorted(
        ((j + 0.5) / c, d) for d, c in enumerate(counts) for j in range(int(c))
    )
    return keys[k][1]
