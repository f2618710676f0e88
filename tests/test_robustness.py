"""Noise-robustness sweep: metrics on hand-checkable inputs, the tables, and one tiny sweep."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest
import torch

from nortonkit.encoders import EncoderOutput
from nortonkit.robustness import (
    METRICS,
    _check_knobs,
    claims_table,
    clip_r1,
    htm_align_recall,
    noise_sweep,
    paragraph_r1,
    summarize,
    sweep_frame,
)


def test_clip_r1_counts_ties_against_the_query():
    v = torch.eye(4)
    assert clip_r1(v, v) == 100.0
    assert clip_r1(v, v[[1, 0, 2, 3]]) == 50.0
    assert clip_r1(torch.ones(3, 2), torch.ones(3, 2)) == 0.0  # all tied: pessimistic
    with pytest.raises(ValueError, match="text, video"):
        clip_r1(torch.eye(3), torch.eye(4))


def test_paragraph_r1_uses_the_order_of_clips():
    # video 0 = clips (e0, e1), video 1 = clips (e1, e0): same clips, opposite order.
    video = torch.stack([torch.eye(2)[0], torch.eye(2)[1], torch.eye(2)[1], torch.eye(2)[0]])
    blocks = [torch.tensor([0, 1]), torch.tensor([2, 3])]
    assert paragraph_r1(video, video, blocks) == 100.0  # DTW tells them apart, cap-avg would not
    swapped = video[[2, 3, 0, 1]]  # each paragraph now describes the other video
    assert paragraph_r1(swapped, video, blocks) == 0.0
    with pytest.raises(ValueError, match="blocks"):
        paragraph_r1(video, video, [])


class _Frames:
    """A stand-in encoder: frame tokens are the features themselves, [CLS] and [SEP] zero."""

    def encode_video(self, feats, mask):
        b, v, d = feats.shape
        z = feats.new_zeros(b, 1, d)
        tokens = torch.cat([z, feats, z], 1)
        return EncoderOutput(feats.mean(1), tokens, torch.ones(b, v + 2, dtype=torch.bool))


def _item(texts_at, n_frames=40, dim=4):
    feats = torch.zeros(n_frames, dim)
    segs = []
    for k, (s, e) in enumerate(texts_at):
        feats[s:e, k] = 1.0
        segs.append([float(s), float(e - 1)])
    return SimpleNamespace(
        features=feats, texts=[str(k) for k in range(len(texts_at))],
        alignable=torch.ones(len(texts_at), dtype=torch.bool),
        segments=torch.tensor(segs), window_spans=torch.tensor([[0, 32], [8, 40]]),
        text_ranges=torch.tensor([[0, len(texts_at)], [0, len(texts_at)]]))


def test_htm_align_recall_hits_and_misses():
    item = _item([(2, 6), (20, 30)])
    exact = htm_align_recall(_Frames(), [item], lambda t: torch.eye(4)[[int(x) for x in t]])
    assert exact == 100.0
    swapped = htm_align_recall(_Frames(), [item], lambda t: torch.eye(4)[[1, 0]])
    assert swapped == 0.0
    item.alignable = torch.tensor([True, False])
    half = htm_align_recall(_Frames(), [item], lambda t: torch.eye(4)[[0, 0]])
    assert half == 100.0  # only the alignable sentence counts
    item.alignable = torch.tensor([False, False])
    with pytest.raises(ValueError, match="alignable"):
        htm_align_recall(_Frames(), [item], lambda t: torch.eye(4)[[0, 1]])


def _runs():
    rows = []
    for level, (n, t, v) in {0.1: (30, 20, 10), 0.9: (20, 20.2, 19.9)}.items():
        for seed, jitter in ((0, -1.0), (1, 1.0)):
            for method, base in (("norton", n), ("tempclr", t), ("videoclip", v)):
                rows.append(dict(knob="async_rate", level=level, method=method, seed=seed,
                                 clip_r1=base + jitter, paragraph_r1=base, align_recall=base))
    return pd.DataFrame(rows)


def test_summary_and_claims_report_ahead_and_level():
    summary = summarize(_runs())
    assert len(summary) == 6 and set(summary["n_seeds"]) == {2}
    row = summary[(summary.level == 0.1) & (summary.method == "norton")].iloc[0]
    assert row["clip_r1_mean"] == 30.0 and math.isclose(row["clip_r1_std"], math.sqrt(2))
    claims = claims_table(summary, "clip_r1")
    assert claims["verdict"].tolist() == ["ahead", "level"]
    assert claims["best_other_method"].tolist() == ["tempclr", "tempclr"]
    behind = claims_table(summary.assign(method=summary.method.replace(
        {"norton": "videoclip", "videoclip": "norton"})), "paragraph_r1")
    assert behind["verdict"].tolist() == ["behind", "level"]
    with pytest.raises(ValueError, match="summary"):
        claims_table(summary, "nope")
    with pytest.raises(ValueError, match="runs"):
        summarize(_runs().drop(columns="clip_r1"))


def test_sweep_frame_renames_level_for_plotting():
    frame = sweep_frame(_runs(), "async_rate")
    assert "async_rate" in frame and "level" not in frame and len(frame) == 12
    with pytest.raises(ValueError, match="knob"):
        sweep_frame(_runs(), "frame_noise")


def test_bad_knobs_are_named():
    with pytest.raises(ValueError, match="knobs"):
        _check_knobs({"loudness": (0.1,)})
    with pytest.raises(ValueError, match="irrelevant_rate"):
        _check_knobs({"irrelevant_rate": (1.0,)})
    with pytest.raises(ValueError, match="at least one level"):
        _check_knobs({"async_rate": ()})
    with pytest.raises(ValueError, match="methods"):
        noise_sweep({"async_rate": (0.5,)}, methods=("nortn",))
    with pytest.raises(ValueError, match="steps"):
        noise_sweep({"async_rate": (0.5,)}, steps=0)


@pytest.mark.slow
def test_tiny_sweep_end_to_end(tmp_path):
    result = noise_sweep({"irrelevant_rate": (0.3, 0.9)}, methods=("videoclip", "norton"),
                         seeds=(0,), steps=2, work_dir=tmp_path, progress=False)
    runs = result.runs
    assert len(runs) == 4 and set(runs["method"]) == {"videoclip", "norton"}
    assert runs[list(METRICS)].apply(lambda c: c.between(0, 100)).all().all()
    assert runs["final_loss"].notna().all()
    assert len(result.summary) == 4 and result.summary["clip_r1_std"].isna().all()
    assert (tmp_path / "irrelevant_rate=0.9" / "seed0" / "data" / "manifest.json").is_file()
