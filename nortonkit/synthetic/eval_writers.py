"""The evaluation sets of a synthetic corpus, each written in its released layout.

YouCookII (annotations, ``youcook_val.pkl`` clips, features), MSR-VTT (``MSRVTT_data.json``,
the JSFUSION test and train lists, the multiple-choice QA), COIN (``COIN.json`` with step labels)
and HTM-Align (``htm_align.json``), with one ground-truth record per video. Every video draws
from its own ``SeedSequence([seed, tag, 0, index])`` (:func:`_eval_plan`).
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import Any

import numpy as np

from ..data.layout import DataRoot
from ..io import atomic_write
from .config import GENERATOR_VERSION, SyntheticConfig, _coin_n_test
from .ground_truth import _gt_record
from .narration import _describe, _msrvtt_caption, _narrate
from .video import _Plan, _render, _timeline
from .vocabulary import _STOPWORDS
from .world import _TAG_ALIGN, _TAG_COIN, _TAG_MSRVTT, _TAG_YOUCOOK, World, _seq
from .writing import (
    ProgressFactory,
    _save_npy,
    _unique_ids,
    _write_csv,
    _write_json,
    _youtube_id,
)


def _eval_plan(world: World, cfg: SyntheticConfig, tag: int, i: int, task: int,
               skip: bool = True, narrate: bool = False, durations: tuple[int, int] | None = None,
               variants: bool = True, **timeline_kw: Any) -> tuple[_Plan, np.random.Generator]:
    ss = np.random.SeedSequence([cfg.seed, tag, 0, i])
    plan_seq, render_seq = ss.spawn(2)
    rng = np.random.default_rng(plan_seq)
    lo, hi = durations or (cfg.how2_min_duration_s, cfg.how2_max_duration_s)
    noise = cfg.noise if variants else dataclasses.replace(cfg.noise, step_variant_rate=0.0)
    plan = _timeline(world, task, rng, noise, lo, hi, skip=skip, **timeline_kw)
    if narrate:
        _narrate(world, plan, rng, cfg.noise)
    return plan, np.random.default_rng(render_seq)


def _write_youcook(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                   counts: dict[str, Any]) -> None:
    cooking = [k for k, t in enumerate(world.tasks) if t.domain == "cooking"]
    recipes = cooking[: cfg.youcook_recipes]
    if len(recipes) < cfg.youcook_recipes:
        recipes = list(range(cfg.youcook_recipes))  # fewer cooking tasks than recipes: any task
    database: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    gt: dict[str, Any] = {}
    ids_val = _unique_ids(cfg.seed, "youcook-val", cfg.youcook_val)
    ids_train = _unique_ids(cfg.seed, "youcook-train", cfg.youcook_train)
    dur = (cfg.youcook_min_duration_s, cfg.youcook_max_duration_s)
    for subset, ids, offset in (("validation", ids_val, 0), ("training", ids_train, 1 << 20)):
        for i, vid in enumerate(bar(ids, desc=f"youcook {subset}", unit="video")):
            task = recipes[i % len(recipes)]
            plan, render_rng = _eval_plan(world, cfg, _TAG_YOUCOOK, offset + i, task,
                                          durations=dur)
            text_rng = _seq(cfg.seed, _TAG_YOUCOOK, 2, offset + i)
            anns = []
            for j, (sid, s, e) in enumerate(plan.steps):
                anns.append(dict(segment=[s, e], id=j,
                                 sentence=_describe(world, sid, text_rng, cfg.noise.context_rate)))
            database[vid] = dict(
                duration=float(plan.duration), subset=subset, recipe_type=str(101 + task),
                annotations=anns, video_url=f"https://www.youtube.com/watch?v={vid}",
            )
            if subset != "validation":
                continue
            for j, ann in enumerate(anns):
                caption = " ".join(w for w in ann["sentence"].split() if w not in _STOPWORDS)
                records.append(dict(id=f"{vid}_{j}", caption=caption, video_id=vid,
                                    start=ann["segment"][0], end=ann["segment"][1]))
            _save_npy(root.youcook_features / f"{vid}.npy",
                            _render(world, plan, render_rng, cfg.noise))
            gt[vid] = _gt_record(world, plan, subset=subset)
    _write_json(root.youcook_annotations, {"database": database})
    with atomic_write(root.youcook_val_pkl, "wb") as f:
        pickle.dump(records, f, protocol=4)
    _write_json(root.ground_truth / "youcook.json", gt)
    counts["youcook_val_videos"] = len(ids_val)
    counts["youcook_val_clips"] = len(records)
    counts["youcook_train_annotations"] = len(ids_train)


def _write_msrvtt(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                  counts: dict[str, Any]) -> None:
    n_train, n_test = cfg.msrvtt_train, cfg.msrvtt_test
    videos, sentences, gt = [], [], {}
    test_rows, test_caps = [], {}
    for i in bar(range(n_train + n_test), desc="msrvtt", unit="video"):
        is_test = i >= n_train
        vid = f"video{7010 + i - n_train}" if is_test else f"video{i}"
        rng = _seq(cfg.seed, _TAG_MSRVTT, 1, i)
        task = int(rng.integers(len(world.tasks)))
        t = world.tasks[task]
        k = min(int(rng.integers(1, 3)), len(t.steps))
        first = int(rng.integers(0, len(t.steps) - k + 1))
        plan, render_rng = _eval_plan(world, cfg, _TAG_MSRVTT, i, task, skip=False,
                                      durations=(10, 30), step_range=(5, 15), gap_max=3,
                                      edge=(0, 3), script=list(t.steps[first:first + k]))
        main = max(range(len(plan.steps)), key=lambda j: plan.steps[j][2] - plan.steps[j][1])
        caps, cap_step = [], []
        for _ in range(cfg.msrvtt_captions):
            j = main if (len(plan.steps) == 1 or rng.random() < 0.8) else int(
                rng.integers(len(plan.steps)))
            caps.append(_msrvtt_caption(world, plan.steps[j][0], rng))
            cap_step.append(j)
        videos.append({"category": world.domains.index(t.domain), "url":
                       f"https://www.youtube.com/watch?v={_youtube_id(cfg.seed, 'msrvtt', i)}",
                       "video_id": vid, "start time": 0.0, "end time": float(plan.duration),
                       "split": "test" if is_test else "train", "id": i})
        for c in caps:
            sentences.append({"caption": c, "video_id": vid, "sen_id": len(sentences)})
        _save_npy(root.msrvtt_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan, split="test" if is_test else "train")
        rec["caption_step"] = cap_step
        gt[vid] = rec
        if is_test:
            j = int(rng.integers(len(caps)))
            test_rows.append((f"ret{i - n_train}", f"msr{7010 + i - n_train}", vid, caps[j]))
            test_caps[vid] = [c for c2, c in enumerate(caps) if c2 != j] or caps
    _write_json(root.msrvtt_data_json, {"info": {"description": "synthetic MSR-VTT-like set",
                                                 "version": GENERATOR_VERSION},
                                        "videos": videos, "sentences": sentences})
    _write_csv(root.msrvtt_test_csv, ("key", "vid_key", "video_id", "sentence"), test_rows)
    train_ids = [f"video{i}" for i in range(n_train)]
    _write_csv(root.msrvtt_train_csv("9k"), ("video_id",), [(v,) for v in train_ids])
    n7 = max(1, int(round(n_train * 7010 / 9000)))
    _write_csv(root.msrvtt_train_csv("7k"), ("video_id",), [(v,) for v in train_ids[:n7]])
    # multiple-choice QA: the true caption among 4 captions of other test videos
    qa_rng = _seq(cfg.seed, _TAG_MSRVTT, 2)
    test_ids = [r[2] for r in test_rows]
    qa_rows, answers = [], {}
    for vid in test_ids:
        others = [v for v in test_ids if v != vid]
        picks = qa_rng.choice(len(others), size=4, replace=False)
        cands = [test_caps[others[p]][qa_rng.integers(len(test_caps[others[p]]))]
                 for p in picks]
        answer = int(qa_rng.integers(5))
        cands.insert(answer, test_caps[vid][qa_rng.integers(len(test_caps[vid]))])
        qa_rows.append((f"msr{vid.removeprefix('video')}", *cands, str(answer)))
        answers[vid] = answer
    _write_csv(root.msrvtt_qa_csv, ("vid_key", "a1", "a2", "a3", "a4", "a5", "answer"), qa_rows,
               delimiter="\t")
    for vid, a in answers.items():
        gt[vid]["qa_answer"] = a
    _write_json(root.ground_truth / "msrvtt.json", gt)
    counts["msrvtt_train_videos"] = n_train
    counts["msrvtt_test_videos"] = n_test
    counts["msrvtt_qa_questions"] = len(qa_rows)


def _write_coin(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                counts: dict[str, Any]) -> None:
    # tasks spread over the task list (every domain), step class ids 1..K in script order
    tasks = [int(k) for k in np.linspace(0, len(world.tasks) - 1, cfg.coin_tasks).round()]
    tasks = list(dict.fromkeys(tasks))
    label_id: dict[int, int] = {}
    for k in tasks:
        for sid in world.tasks[k].steps:
            label_id.setdefault(sid, len(label_id) + 1)
    n_test = _coin_n_test(cfg)
    ids = _unique_ids(cfg.seed, "coin", cfg.coin_videos)
    database, gt = {}, {}
    for i, vid in enumerate(bar(ids, desc="coin", unit="video")):
        subset = "testing" if i < n_test else "training"
        task = tasks[i % len(tasks)]
        # the first testing video of each task shows every step: all labels occur in testing
        full = i < len(tasks)
        # COIN annotates each task's own step list: no substituted steps
        plan, render_rng = _eval_plan(world, cfg, _TAG_COIN, i, task, skip=not full,
                                      variants=False, durations=(40, 180), step_range=(4, 14),
                                      gap_max=8)
        anns = [dict(segment=[float(s), float(e)], id=str(label_id[sid]),
                     label=world.step_text(sid)) for sid, s, e in plan.steps]
        database[vid] = {
            "recipe_type": task, "class": world.tasks[task].name, "subset": subset,
            "start": 0.0, "end": float(plan.duration), "duration": float(plan.duration),
            "video_url": f"https://www.youtube.com/embed/{vid}", "annotation": anns,
        }
        _save_npy(root.coin_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan, subset=subset)
        rec["labels"] = [label_id[sid] for sid, _, _ in plan.steps]
        gt[vid] = rec
    _write_json(root.coin_json, {"database": database})
    _write_json(root.ground_truth / "coin.json",
                {"videos": gt, "id2label": {str(v): world.step_text(k)
                                            for k, v in label_id.items()}})
    counts["coin_videos"] = len(ids)
    counts["coin_testing_videos"] = n_test
    counts["coin_step_classes"] = len(label_id)


def _write_htm_align(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                     counts: dict[str, Any]) -> None:
    ids = _unique_ids(cfg.seed, "htm-align", cfg.htm_align_videos)
    anno, gt = {}, {}
    n_align = n_sent = 0
    for i, vid in enumerate(bar(ids, desc="htm-align", unit="video")):
        rng = _seq(cfg.seed, _TAG_ALIGN, 1, i)
        task = int(rng.integers(len(world.tasks)))
        plan, render_rng = _eval_plan(world, cfg, _TAG_ALIGN, i, task, narrate=True)
        rows = []
        for x in plan.sentences:
            if x.step >= 0:  # alignable: the annotators' corrected (true) segment
                _, s, e = plan.steps[x.step]
                rows.append([1, float(s), float(e), x.text])
            else:  # not alignable: the original ASR timestamps
                rows.append([0, x.start, x.end, x.text])
        anno[vid] = rows
        n_sent += len(rows)
        n_align += sum(r[0] for r in rows)
        _save_npy(root.htm_align_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan)
        rec["asr"] = [[x.start, x.end] for x in plan.sentences]
        gt[vid] = rec
    _write_json(root.htm_align_json, anno)
    _write_json(root.ground_truth / "htm_align.json", gt)
    counts["htm_align_videos"] = len(ids)
    counts["htm_align_sentences"] = n_sent
    counts["htm_align_alignable_fraction"] = round(n_align / max(n_sent, 1), 4)
