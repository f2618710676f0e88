"""Compat goldens (HOUSE_STYLE R19): the official evaluation quirks, pinned on tiny inputs.

Every expected number below is worked out by hand in the comment next to it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import TOL

from nortonkit.alignment import dtw, otam
from nortonkit.compat import (
    SCORING_OFFSETS,
    official_bg_dtw_score,
    official_bg_otam_score,
    official_dtw_cum_dist,
    official_dtw_pad,
    official_dtw_score,
    official_otam_cum_dist,
    official_otam_pad,
    official_otam_score,
    official_select_windows,
)

INF = float("inf")
X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])


# --------------------------------------------------------------------------------------------
# DTW_pad


def test_dtw_pad_with_column_padding_opens_a_zero_corridor():
    # a = 1, b = 2: rows [-2:] = rows 1..2, columns [-2:] = columns 2..3 become 0
    want = torch.tensor([[1.0, 2.0, INF, INF], [3.0, 4.0, 0.0, 0.0], [INF, INF, 0.0, 0.0]])
    torch.testing.assert_close(official_dtw_pad(X, 3, 4), want)


def test_dtw_pad_without_column_padding_zeroes_the_last_row():
    # b = 0: [-0:] is [0:], every column; a = 0: rows [-1:] -> the last real row is all zero
    torch.testing.assert_close(official_dtw_pad(X, 2, 2), torch.tensor([[1.0, 2.0], [0.0, 0.0]]))
    # a = 1, b = 0: rows 1..2, all columns
    want = torch.tensor([[1.0, 2.0], [0.0, 0.0], [0.0, 0.0]])
    torch.testing.assert_close(official_dtw_pad(X, 3, 2), want)


def test_dtw_pad_crops_when_rows_exceed_the_target():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0], [7.0, 8.0]])
    # a = -2: keep 2 rows; rows [1:] (k = -a-1 = 1) x columns [-1:] -> one zero cell
    torch.testing.assert_close(
        official_dtw_pad(x, 2, 3), torch.tensor([[1.0, 2.0, INF], [3.0, 4.0, 0.0]])
    )
    # a = -1: k = 0, rows [0:] -> the whole padding column is zero
    torch.testing.assert_close(
        official_dtw_pad(x, 3, 3), torch.tensor([[1.0, 2.0, 0.0], [3.0, 4.0, 0.0], [5.0, 6.0, 0.0]])
    )


def test_dtw_pad_keeps_leading_axes():
    x = torch.rand(2, 3, 2, 2)
    out = official_dtw_pad(x, 3, 3)
    assert out.shape == (2, 3, 3, 3)
    torch.testing.assert_close(out[1, 2], official_dtw_pad(x[1, 2], 3, 3))


# --------------------------------------------------------------------------------------------
# OTAM_pad


def test_otam_pad_adds_zero_columns_then_pads():
    # zero columns: [[0, 1, 2, 0], [0, 3, 4, 0]]; a = 1, b = 1 -> (3, 5); rows [1:] x cols [4:]
    want = torch.tensor(
        [[0.0, 1.0, 2.0, 0.0, INF], [0.0, 3.0, 4.0, 0.0, 0.0], [INF, INF, INF, INF, 0.0]]
    )
    torch.testing.assert_close(official_otam_pad(X, 3, 3), want)


def test_otam_pad_b_zero_zeroes_the_last_row_zero_columns_included():
    want = torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(official_otam_pad(X, 2, 2), want)


def test_otam_pad_crops_the_transposed_block_of_the_bg_metric():
    # 3 windows x 2 captions padded to the text-side target (2, 4): a = -1 drops window 2;
    # k = -a-1 = 0 zeroes every row of the last b = 2 columns
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    want = torch.tensor([[0.0, 1.0, 2.0, 0.0, 0.0, 0.0], [0.0, 3.0, 4.0, 0.0, 0.0, 0.0]])
    torch.testing.assert_close(official_otam_pad(x, 2, 4), want)


# --------------------------------------------------------------------------------------------
# cumulative distances


def test_dtw_cum_dist_hand_table():
    d = torch.tensor([[1.0, 3.0, 1.0], [2.0, 1.0, 5.0]])
    # row 0: 1, 4, 5; row 1: 3, 1 + min(1, 3, 4) = 2, 5 + min(4, 2, 5) = 7
    torch.testing.assert_close(
        official_dtw_cum_dist(d), torch.tensor([[1.0, 4.0, 5.0], [3.0, 2.0, 7.0]])
    )


def test_dtw_cum_dist_equals_corrected_dtw_without_padding(generator):
    d = torch.randn(20, 5, 7, generator=generator, dtype=torch.float64)
    torch.testing.assert_close(official_dtw_cum_dist(d)[:, -1, -1], dtw(d).cost, rtol=0, atol=0)


def test_otam_column1_sign_on_a_2x3_example():
    # D (captions x clips) = [[-1, 0, 0], [-2, 0, 0]], zero-padded to [[0,-1,0,0,0],[0,-2,0,0,0]]
    # row 0: 0, -1, -1, -1, -1 (cumulative sum from column 1)
    # row 1, column 1: official -2 - min(0, -1, 0) = -1;  fixed -2 + min(0, -1, 0) = -3
    #   columns 2..3: 0 + min(diag -1, left) -> official -1, fixed -3; last column: same.
    # corrected OTAM (clips matched once, rows step 0/1): best map f = (1, 1, 1): -2 + 0 + 0
    d = torch.tensor([[-1.0, 0.0, 0.0], [-2.0, 0.0, 0.0]])
    p = F.pad(d, (1, 1))
    official = official_otam_cum_dist(p)
    fixed = official_otam_cum_dist(p, column1_sign="fixed")
    torch.testing.assert_close(official[1], torch.tensor([0.0, -1.0, -1.0, -1.0, -1.0]))
    torch.testing.assert_close(fixed[1], torch.tensor([0.0, -3.0, -3.0, -3.0, -3.0]))
    assert official[-1, -1].item() == -1.0
    assert fixed[-1, -1].item() == -3.0  # the first clip absorbs both captions (vertical step)
    assert otam(d[None]).cost.item() == -2.0


def test_otam_column1_quirks_vanish_for_nonnegative_costs(generator):
    # column 1 takes min(cum[l-1, 0] = 0, cum[l-1, 1] >= 0, cum[l, 0] = 0) = 0: sign irrelevant
    d = torch.rand(30, 4, 6, generator=generator, dtype=torch.float64)
    p = F.pad(d, (1, 1))
    for sign in ("official", "fixed"):
        cum = official_otam_cum_dist(p, column1_sign=sign)[:, -1, -1]
        torch.testing.assert_close(cum, otam(d).cost, **TOL[torch.float64])


def test_otam_column1_quirks_matter_for_negative_costs(generator):
    d = -torch.rand(30, 4, 6, generator=generator, dtype=torch.float64)  # Norton's 0 - m
    p = F.pad(d, (1, 1))
    official = official_otam_cum_dist(p)[:, -1, -1]
    fixed = official_otam_cum_dist(p, column1_sign="fixed")[:, -1, -1]
    corrected = otam(d).cost
    assert torch.all(fixed <= corrected + 1e-12)  # the extra vertical step can only help
    assert (fixed < corrected - 1e-9).any()
    assert (official > fixed + 1e-9).any()


def test_otam_cum_dist_two_columns_uses_the_last_column_rule():
    p = torch.tensor([[0.0, 5.0], [0.0, -1.0]])
    # W = 2: column 1 is also the last column, whose rule (with +) overwrites it:
    # row 1: -1 + min(cum[0,0]=0, cum[0,1]=5, cum[1,0]=0) = -1
    assert official_otam_cum_dist(p)[-1, -1].item() == -1.0


# --------------------------------------------------------------------------------------------
# official pipeline vs corrected DTW


def test_official_dtw_agrees_with_corrected_when_padding_only_adds_columns(generator):
    # negative costs (Norton's 0 - m): the corridor exit cannot beat the last real cell
    for r, c, t in [(3, 2, 3), (2, 4, 5), (1, 3, 4), (4, 1, 4)]:
        d = -torch.rand(r, c, generator=generator, dtype=torch.float64)
        cum = official_dtw_cum_dist(official_dtw_pad(d, t, t))[-1, -1]
        assert cum.item() == pytest.approx(dtw(d[None]).cost.item(), abs=1e-12)


def test_official_dtw_drops_the_last_row_when_no_column_padding_is_needed():
    d = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    # b = 0: rows 2.. zeroed; the path ends on row 1 for free: cheapest prefix path 1 + 3 = 4
    cum = official_dtw_cum_dist(official_dtw_pad(d, 3, 2))[-1, -1]
    assert cum.item() == 4.0
    assert dtw(d[None]).cost.item() == 1 + 3 + 6  # corrected ends on the last caption


def test_official_dtw_corridor_can_skip_the_last_cell():
    d = torch.tensor([[1.0, 1.0], [1.0, 100.0]])
    # padded to (2, 3): [[1, 1, inf], [1, 100, 0]]; cum[1, 2] = 0 + min(diag cum[0, 1] = 2,
    # left 101, up inf) = 2: the path leaves (0, 1) diagonally and never visits (1, 1)
    assert official_dtw_cum_dist(official_dtw_pad(d, 2, 3))[-1, -1].item() == 2.0
    assert dtw(d[None]).cost.item() == 101.0


# --------------------------------------------------------------------------------------------
# batched scores equal the per-block official pipeline


def _blocks(generator, batch, max_t, max_c, full_every=3):
    rows = torch.randint(1, max_t + 1, (batch,), generator=generator)
    cols = torch.randint(1, max_c + 1, (batch,), generator=generator)
    rows[::full_every] = max_t  # include the b = 0 and a = 0 cases
    cols[1::full_every] = max_c
    sim = torch.randn(batch, max_t, max_c, generator=generator)
    rm = torch.arange(max_t)[None] < rows[:, None]
    cm = torch.arange(max_c)[None] < cols[:, None]
    sim = sim.masked_fill(~(rm[:, :, None] & cm[:, None, :]), float("nan"))
    return sim, rm, cm, rows, cols


@pytest.mark.parametrize("preset", ["norton", "tempclr"])
def test_bg_removed_scores_equal_the_per_block_pipeline(preset, generator):
    sim, rm, cm, rows, cols = _blocks(generator, 40, 6, 6)
    max_len = 6
    off = SCORING_OFFSETS[preset]
    dtw_scores = official_dtw_score(sim, max_len, rm, cm, preset=preset)
    otam_scores = official_otam_score(sim, max_len, rm, cm, preset=preset)
    for b in range(40):
        r, c = int(rows[b]), int(cols[b])
        s = sim[b, :r, :c]
        d = (off.dtw_offset - s) * (max_len * max_len / (r * c))
        want = -official_dtw_cum_dist(official_dtw_pad(d, max_len, max_len))[-1, -1]
        assert dtw_scores[b].item() == pytest.approx(want.item(), rel=1e-6, abs=1e-6)
        d = (off.otam_offset - s) * (max_len * max_len / (r * c))
        fwd = official_otam_cum_dist(official_otam_pad(d, max_len, max_len))[-1, -1]
        bwd = official_otam_cum_dist(official_otam_pad(d.T, max_len, max_len))[-1, -1]
        assert otam_scores[b].item() == pytest.approx(-(fwd + bwd).item(), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("preset", ["norton", "tempclr"])
@pytest.mark.parametrize("transposed_pad", ["official", "fixed"])
def test_bg_kept_scores_equal_the_per_block_pipeline(preset, transposed_pad, generator):
    max_t, max_v = 5, 9  # int(1.3 * 5) = 6 > 5: the transposed block gets cropped
    sim, rm, cm, rows, cols = _blocks(generator, 40, max_t, max_v)
    p = SCORING_OFFSETS[preset]
    dtw_scores = official_bg_dtw_score(sim, max_t, max_v, rm, cm, preset=preset)
    otam_scores = official_bg_otam_score(
        sim, max_t, max_v, rm, cm, preset=preset, transposed_pad=transposed_pad
    )
    for b in range(40):
        r, c = int(rows[b]), int(cols[b])
        s = sim[b, :r, :c]
        keep = torch.sort(torch.argsort((p.bg_dtw_offset - s).min(dim=0).values)[: int(1.3 * r)])
        d = (p.bg_dtw_offset - s)[:, keep.values]
        k = d.shape[1]
        d = d * (max_t * max_v / (r * k))
        want = -official_dtw_cum_dist(official_dtw_pad(d, max_t, max_v))[-1, -1]
        assert dtw_scores[b].item() == pytest.approx(want.item(), rel=1e-6, abs=1e-6)
        d = (p.bg_otam_offset - s)[:, keep.values]
        if p.bg_otam_scale == "max":
            d = d * (max(max_t, max_v) / max(r, k))
        else:
            d = d * (max_t * max_v / (r * k))
        t0, t1 = (max_t, max_v) if transposed_pad == "official" else (max_v, max_t)
        fwd = official_otam_cum_dist(official_otam_pad(d, max_t, max_v))[-1, -1]
        bwd = official_otam_cum_dist(official_otam_pad(d.T, t0, t1))[-1, -1]
        assert otam_scores[b].item() == pytest.approx(-(fwd + bwd).item(), rel=1e-6, abs=1e-6)


def test_transposed_crop_changes_the_bg_otam_score(generator):
    # 7 captions, maxT = 8, 12 windows: int(1.3 * 7) = 9 windows kept, more than maxT = 8, so
    # the official transposed block (9 x 7) padded to 8 rows loses its last kept window
    sim = torch.randn(8, 7, 12, generator=generator)
    official = official_bg_otam_score(sim, 8, 12)
    fixed = official_bg_otam_score(sim, 8, 12, transposed_pad="fixed")
    assert (official - fixed).abs().max() > 1e-3  # differs whenever the lost window mattered
    # with few captions nothing is cropped and both agree
    small = sim[:, :3]
    torch.testing.assert_close(
        official_bg_otam_score(small, 8, 12),
        official_bg_otam_score(small, 8, 12, transposed_pad="fixed"),
    )


def test_presets_differ_only_by_the_offset(generator):
    sim, rm, cm, _, _ = _blocks(generator, 10, 4, 4)
    sim = sim.double()
    torch.testing.assert_close(
        official_dtw_score(sim, 4, rm, cm, preset="tempclr"),
        official_dtw_score(sim - 1.0, 4, rm, cm, preset="norton"),
        rtol=1e-12,
        atol=1e-12,
    )


# --------------------------------------------------------------------------------------------
# window selection


def test_window_selection_keeps_the_closest_windows_in_time_order():
    d = torch.tensor([[[5.0, 1.0, 4.0, 2.0, 9.0], [5.0, 3.0, 4.0, 0.5, 9.0]]])
    sel = official_select_windows(d)  # per-window min: 5, 1, 4, 0.5, 9; keep int(2.6) = 2
    assert sel.col_mask.tolist() == [[True, True, False, False, False]]
    assert sel.index[0, :2].tolist() == [1, 3]
    torch.testing.assert_close(sel.distance[0, :, :2], torch.tensor([[1.0, 2.0], [3.0, 0.5]]))


def test_window_selection_uses_python_int_of_1_3_times_r():
    d = torch.arange(3 * 10, dtype=torch.float32).view(1, 3, 10)
    sel = official_select_windows(d)
    assert int(sel.col_mask.sum()) == int(1.3 * 3) == 3  # 1.3 * 3 = 3.9000000000000004
    d4 = torch.arange(10 * 20, dtype=torch.float32).view(1, 10, 20)
    assert int(official_select_windows(d4).col_mask.sum()) == 13


def test_window_selection_keeps_everything_when_few_windows_and_respects_masks():
    d = torch.tensor([[[3.0, 1.0, 2.0, 0.0], [3.0, 1.0, 2.0, 0.0]]])
    cm = torch.tensor([[True, True, True, False]])  # window 3 is padding, never kept
    sel = official_select_windows(d, col_mask=cm)
    assert sel.index[0, : int(sel.col_mask.sum())].tolist() == [1, 2]
    sel = official_select_windows(d[:, :, :1])
    assert sel.col_mask.tolist() == [[True]]


# --------------------------------------------------------------------------------------------
# validation


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: official_dtw_cum_dist(torch.tensor([[float("nan")]])), "d: expected values"),
        (lambda: official_dtw_cum_dist(torch.tensor([[-INF]])), "NaN/-inf"),
        (lambda: official_otam_cum_dist(torch.zeros(2, 1)), r"at least 1 row and 2 column"),
        (lambda: official_otam_cum_dist(torch.zeros(2, 3), "plus"), "column1_sign"),
        (lambda: official_dtw_pad(torch.zeros(2, 2), 0, 2), "target_rows: expected an integer"),
        (lambda: official_otam_pad(torch.zeros(3), 2, 2), "x: expected a tensor with at least 2"),
        (lambda: official_dtw_score(torch.zeros(1, 2, 2), 2, preset="videoclip"), "preset"),
        (lambda: official_otam_score(torch.zeros(2, 2), 2), "similarity: expected 3 dims"),
        (lambda: official_bg_dtw_score(torch.zeros(1, 2, 2), 2, 0), "max_video_len"),
        (
            lambda: official_bg_otam_score(torch.zeros(1, 2, 2), 2, 2, transposed_pad="x"),
            "transposed_pad",
        ),
        (
            lambda: official_select_windows(
                torch.zeros(1, 2, 2), row_mask=torch.zeros(1, 2).bool()
            ),
            "no valid rows",
        ),
    ],
)
def test_validation_errors(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_infinite_padding_is_accepted_by_the_cumulative_distances():
    p = official_dtw_pad(torch.tensor([[1.0]]), 2, 2)  # [[1, 0], [0, 0]]: b > 0 corridor
    assert official_dtw_cum_dist(p)[-1, -1].item() == 1.0
    q = official_dtw_pad(torch.tensor([[1.0, 2.0]]), 2, 3)  # inf in row 1, columns 0..1
    assert torch.isinf(official_dtw_cum_dist(q)[1, 0])
