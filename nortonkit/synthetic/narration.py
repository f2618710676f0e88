"""The text side of a synthetic video: noisy ASR narration and clean human annotations.

The narration is generated with every kind of multi-granularity noisy correspondence named by
Norton (Sec. 1), each an explicit :class:`~nortonkit.synthetic.config.NoiseConfig` knob:
asynchronous offsets, irrelevant sentences (chatter, or mentions of an object that is not acted
on), unnarrated steps and filler words inside sentences. The annotation sentences of the
evaluation sets (YouCookII-like step descriptions, MSR-VTT-like captions) are clean.
"""

from __future__ import annotations

import numpy as np

from .config import NoiseConfig
from .video import _Plan, _Sentence
from .vocabulary import (
    _CHATTER,
    _DOMAINS,
    _FILLERS,
    _MENTION_TEMPLATES,
    _MSRVTT_TEMPLATES,
    _STEP_TEMPLATES,
    _TASK_MENTION,
)
from .world import World


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.random() * len(options))]


def _insert_fillers(words: list[str], rng: np.random.Generator, mean: float) -> tuple[str, int]:
    k = int(rng.poisson(mean)) if mean > 0 else 0
    if k:
        u = rng.random((k, 2))
        for pos, which in u:
            words.insert(int(pos * (len(words) + 1)), _FILLERS[int(which * len(_FILLERS))])
    return " ".join(words), k


def _speech_seconds(n_words: int, rng: np.random.Generator) -> float:
    """ASR sentence duration: 2-3 words per second, clipped to [1, 10] s."""
    return min(10.0, max(1.0, n_words / (2.0 + rng.random())))


def _narrate(world: World, plan: _Plan, rng: np.random.Generator, noise: NoiseConfig) -> None:
    """Add ASR sentences with every kind of coarse- and word-level noise to ``plan``."""
    T = plan.duration
    domain = _DOMAINS[world.domains[plan.domain]]
    sentences: list[_Sentence] = []
    narrated = rng.random(len(plan.steps)) >= noise.unnarrated_rate
    if not narrated.any():
        narrated[rng.integers(len(plan.steps))] = True
    for pos, (sid, s, e) in enumerate(plan.steps):
        if not narrated[pos]:
            continue
        n_sent = 1 + int(rng.random() < noise.extra_sentence_rate)
        a, o = world.steps[sid]
        for _ in range(n_sent):
            tmpl = _pick(rng, _STEP_TEMPLATES)
            words = tmpl.format(a=world.actions[a], o=world.objects[o]).split()
            if rng.random() < noise.context_rate:
                words += _pick(rng, domain["contexts"]).split()
            text, k = _insert_fillers(words, rng, noise.filler_words_mean)
            dur = _speech_seconds(len(words), rng)
            u = rng.random(4)
            sync = s + u[0] * max(0.0, e - dur - s)
            asynchronous = bool(u[1] < noise.async_rate)
            delta = 0.0
            if asynchronous:
                mag = noise.async_min_s + u[2] * (noise.async_max_s - noise.async_min_s)
                delta = -mag if u[3] < noise.async_lead_prob else mag
            start = round(min(max(sync + delta, 0.0), max(0.0, T - dur)), 2)
            sentences.append(_Sentence(text, start, round(min(T, start + dur), 2), pos,
                                       round(start - sync, 2), asynchronous, k))
    n_rel = len(sentences)
    r = noise.irrelevant_rate
    expected = n_rel * r / (1.0 - r)
    n_irr = int(np.floor(expected)) + int(rng.random() < expected - np.floor(expected))
    task_objects = sorted({world.steps[sid][1] for sid, _, _ in plan.steps})
    task_name = world.tasks[plan.task].name
    for _ in range(n_irr):
        mention = bool(rng.random() < noise.irrelevant_mention_rate)
        if mention and rng.random() < 0.2:
            tmpl = _pick(rng, _TASK_MENTION)
            words = tmpl.format(t=task_name).split()
        elif mention:
            o = world.objects[task_objects[int(rng.random() * len(task_objects))]]
            words = _pick(rng, _MENTION_TEMPLATES).format(o=o).split()
        else:
            words = _pick(rng, _CHATTER).split()
        text, k = _insert_fillers(words, rng, noise.filler_words_mean)
        dur = _speech_seconds(len(words), rng)
        start = round(rng.random() * max(0.0, T - dur), 2)
        sentences.append(_Sentence(text, start, round(min(T, start + dur), 2), -1, 0.0, False,
                                   k, mention))
    sentences.sort(key=lambda x: (x.start, x.end))
    plan.sentences = sentences


def _describe(world: World, sid: int, rng: np.random.Generator, context_rate: float) -> str:
    """A clean human annotation sentence for a step (YouCookII style, lower case)."""
    a, o = world.steps[sid]
    words = [world.actions[a], "the", world.objects[o]]
    contexts = _DOMAINS[world.domains[world.step_domain[sid]]]["contexts"]
    if rng.random() < context_rate:
        words += contexts[rng.integers(len(contexts))].split()
    return " ".join(words)


def _msrvtt_caption(world: World, sid: int, rng: np.random.Generator) -> str:
    a, o = world.steps[sid]
    base, ger, third = world.action_forms[a]
    tmpl = _MSRVTT_TEMPLATES[rng.integers(len(_MSRVTT_TEMPLATES))]
    return tmpl.format(g=ger, t=third, o=world.objects[o])
