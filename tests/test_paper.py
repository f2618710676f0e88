"""The shipped paper numbers and the comparison of our rows with them."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from nortonkit.lab.paper import (
    TABLE_KEYS,
    compare_with_paper,
    paper_rows,
    paper_table,
    paper_tables,
)


def test_every_norton_table_is_shipped_with_sources():
    tables = paper_tables()
    for short, key in TABLE_KEYS.items():
        t = paper_table(short)
        assert t == tables[key]
        assert t["rows"], short
        assert all(r.get("source") for r in t["rows"]), f"{short}: a row without source"
        df = paper_rows(short)
        assert len(df) and set(df.table) == {short}
        assert df.value.notna().all()


def test_paper_rows_headline_numbers():
    def value(table, method, measure, metric, setting=None):
        df = paper_rows(table)
        sel = (df.method.str.startswith(method)) & (df.measure == measure) & (df.metric == metric)
        if setting:
            sel &= df.setting == setting
        (v,) = df[sel].value.tolist()
        return v

    assert value("T1", "Norton", "DTW", "R@1") == 88.7
    assert value("T1", "TempCLR", "OTAM", "R@10") == 99.3
    assert value("T2", "Norton", "DTW", "R@10") == 97.7
    assert value("T3", "Norton", "clip", "R@5") == 51.9
    assert value("T4", "Norton", "frame accuracy", "frame_accuracy") == 69.8
    assert value("T5", "Norton", "clip", "R@1", "zero-shot") == 10.7
    assert value("T5", "Norton", "clip", "R@1", "fine-tuned") == 31.2
    assert value("T6", "Norton", "QA", "accuracy", "zero-shot") == 77.1
    assert value("T7", "B", "clip", "R@1") == 23.4
    assert value("T7", "J", "DTW, background kept", "R@5") == 95.0
    assert value("T9", "Norton", "alignment", "recall") == 46.9


def _ours(**kw):
    base = dict(setting="zero-shot", method="ours", variant="corrected", value=50.0)
    return {**base, **kw}


def test_compare_with_paper_matches_table_measure_setting_metric():
    ours = pd.DataFrame([
        _ours(table="T1", measure="DTW", metric="R@1"),
        _ours(table="T1", measure="OT", metric="R@1"),  # no paper number
        _ours(table="T2", measure="Cap. Avg.", metric="R@5"),
        _ours(table="T5", measure="clip", metric="R@10", setting="fine-tuned"),
        _ours(table="T6", measure="QA", metric="accuracy"),
        _ours(table="T4", measure="frame accuracy", metric="frame_accuracy", setting="zero-shot"),
        _ours(table="T7", measure="DTW, background removed", metric="R@1", method="E"),
        _ours(table="T8", measure="+ Faulty Negative Exploitation", metric="relative_to_line1"),
        _ours(table="T1", measure="DTW", metric="MR"),
    ])
    out = compare_with_paper(ours)
    got = out.paper_value.tolist()
    want = [88.7, math.nan, 94.7, 66.8, 77.1, math.nan, 88.1, 1.057, math.nan]
    for g, w in zip(got, want):
        assert (math.isnan(g) and math.isnan(w)) or g == w
    assert out.delta.iloc[0] == pytest.approx(50.0 - 88.7)
    assert out.paper_source.iloc[0].startswith("S1+S2")
    assert list(ours.columns) == list(out.columns[: len(ours.columns)])


def test_compare_with_baseline_method():
    ours = pd.DataFrame([_ours(table="T1", measure="DTW", metric="R@1"),
                         _ours(table="T9", measure="alignment", metric="recall")])
    out = compare_with_paper(ours, method="VideoCLIP")
    assert out.paper_value.tolist() == [56.0, 44.4]
    assert out.paper_method.iloc[0].startswith("VideoCLIP")
    assert compare_with_paper(ours, method="TempCLR").paper_value.tolist() == [83.5, 44.1]


def test_bad_inputs():
    with pytest.raises(ValueError, match="table: expected one of"):
        paper_table("T10")
    with pytest.raises(ValueError, match="missing"):
        compare_with_paper(pd.DataFrame({"table": ["T1"]}))
    with pytest.raises(ValueError, match="results: expected a pandas DataFrame"):
        compare_with_paper([{"table": "T1"}])
