"""The study's encoder scores on hand-checkable inputs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from nortonkit.encoders import EncoderOutput
from nortonkit.lab.baselines import sequence_scores
from nortonkit.lab.robustness import clip_r1, htm_align_recall, paragraph_r1


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


def test_paragraph_r1_scales_dtw_by_block_size_as_the_baselines_do():
    """A video with many lukewarm clips must not beat a paragraph's own two perfect clips: the
    unscaled DTW of -cos rewards long paths; the protocol (1 - cos, / rows * cols) does not."""
    e1, e2 = torch.eye(2)
    mid = (e1 + e2) / 2 ** 0.5
    text = torch.stack([e1, e2] + [mid] * 6)  # paragraph 0: e1, e2; paragraph 1: six x mid
    video = text.clone()  # each video holds exactly its paragraph's content
    blocks = [torch.tensor([0, 1]), torch.arange(2, 8)]
    assert paragraph_r1(text, video, blocks) == 100.0
    # the same numbers through the baselines' protocol
    t = {i: text[b].double().numpy() for i, b in enumerate(blocks)}
    s = sequence_scores(t, t, [0, 1], select=False)["dtw"]  # (paragraph, video), higher better
    assert np.argmax(s, axis=1).tolist() == [0, 1]
