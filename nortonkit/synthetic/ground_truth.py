"""The true alignments of a synthetic corpus, saved under ``DataRoot.ground_truth``.

``world.json`` and ``prototypes.npy`` hold the world (vocabulary, tasks, step classes and their
prototypes); ``how2.json``, ``youcook.json``, ``msrvtt.json``, ``coin.json`` and
``htm_align.json`` hold one record per video (:func:`_gt_record`), read back with
:func:`load_ground_truth`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..data.layout import DataRoot
from ..validation import check_choice
from .video import _Plan
from .world import World
from .writing import _save_npy, _write_json

__all__ = ["load_ground_truth"]


def load_ground_truth(out_dir: str | Path, dataset: str) -> dict[str, Any]:
    """The ground-truth JSON of one dataset of a synthetic corpus.

    ``dataset`` is one of ``"how2"``, ``"youcook"``, ``"msrvtt"``, ``"coin"``, ``"htm_align"``,
    ``"world"``. Per video: ``steps`` ([step id, start, end] true segments, seconds
    ``[start, end)``), ``cutaways`` and, for narrated videos, ``sentences`` (parallel to the
    caption list: ``step`` index or -1, ``segment``, ``offset`` (s, negative = spoken early),
    ``asynchronous``, ``irrelevant``, ``mention``, ``fillers``).
    """
    check_choice("dataset", dataset, ("how2", "youcook", "msrvtt", "coin", "htm_align", "world"))
    path = DataRoot(out_dir).ground_truth / f"{dataset}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ground-truth file not found (generate the corpus first)")
    return json.loads(path.read_text())


def _gt_record(world: World, plan: _Plan, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict(extra)
    rec.update(
        task=plan.task,
        task_name=world.tasks[plan.task].name,
        duration=plan.duration,
        steps=[[sid, s, e] for sid, s, e in plan.steps],
        step_texts=[world.step_text(sid) for sid, _, _ in plan.steps],
        cutaways=[[s, e] for s, e in plan.cutaways],
    )
    if plan.sentences:
        ss = plan.sentences
        rec["sentences"] = dict(
            step=[x.step for x in ss],
            segment=[None if x.step < 0 else plan.steps[x.step][1:] for x in ss],
            offset=[x.offset if x.step >= 0 else None for x in ss],
            asynchronous=[x.asynchronous for x in ss],
            irrelevant=[x.step < 0 for x in ss],
            mention=[x.mention for x in ss],
            fillers=[x.fillers for x in ss],
        )
    return rec


def _write_world(root: DataRoot, world: World) -> None:
    _write_json(root.ground_truth / "world.json", dict(
        domains=list(world.domains), actions=[list(f) for f in world.action_forms],
        objects=list(world.objects),
        tasks=[dict(name=t.name, domain=t.domain, steps=list(t.steps)) for t in world.tasks],
        steps=[dict(action=world.actions[a], object=world.objects[o],
                    domain=world.domains[d], text=world.step_text(k))
               for k, ((a, o), d) in enumerate(zip(world.steps, world.step_domain))],
        weights=list(world.weights),
    ))
    _save_npy(root.ground_truth / "prototypes.npy", world.prototypes)
