"""The paper's reported numbers, shipped with the package, and our results beside them.

``nortonkit/paper_tables.json`` holds every table of Norton (ICLR 2024) plus the TempCLR and
VideoCLIP tables it compares with; each row carries its ``source`` (which text conversions of
the paper agree on it), each table its ``notes``. :func:`paper_table` returns one table as
stored, :func:`paper_rows` the same in the tidy long format of :mod:`nortonkit.lab.evaluate`
(one row per method, setting, measure and metric), and :func:`compare_with_paper` puts each of
our result rows beside the matching paper row.

Matching: our rows carry ``table`` (``"T1"`` ... ``"T9"``, Norton's table numbers), ``measure``
(``"Cap. Avg."``, ``"DTW"``, ``"OTAM"``, ``"OT (plain)"``, ``"OT (Norton bucket)"``,
``"clip"``, ``"QA"``, ...; the paper reports no OT measure), ``setting``
(``"zero-shot"`` / ``"fine-tuned"`` where the table has both) and ``metric`` (``"R@1"``,
``"accuracy"``, ``"frame_accuracy"``, ``"recall"``, ...). The paper row is the one of the chosen
method (``"Norton (Ours)"`` by default; a prefix such as ``"VideoCLIP"`` or ``"TempCLR"``
selects a baseline) with the same measure, setting and metric. Table 7 rows are matched by
their letter (our ``method`` column holds the preset name ``"A"`` ... ``"J"``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from typing import Any

import pandas as pd

__all__ = [
    "TABLE_KEYS",
    "NORTON",
    "paper_tables",
    "paper_table",
    "paper_rows",
    "compare_with_paper",
]

#: Norton's table numbers -> keys of ``paper_tables.json``.
TABLE_KEYS: dict[str, str] = {
    "T1": "norton_t1_video_paragraph_retrieval_youcook2_bg_removed",
    "T2": "norton_t2_video_paragraph_retrieval_youcook2_bg_kept",
    "T3": "norton_t3_clip_caption_retrieval_youcook2",
    "T4": "norton_t4_coin_action_segmentation",
    "T5": "norton_t5_msrvtt_text_to_video_retrieval",
    "T6": "norton_t6_msrvtt_videoqa",
    "T7": "norton_t7_ablation_youcook2",
    "T8": "norton_t8_training_time_per_epoch",
    "T9": "norton_t9_htm_align",
}
NORTON = "Norton (Ours)"

# columns that describe a row rather than hold a number
_ID_COLUMNS = {"method", "measure", "setting", "feature", "model", "FNE", "softmax_alpha",
               "APB_p", "line", "approach", "dataset", "variant", "TFS", "note", "source"}
# Table 7 columns -> (measure, metric) of our ablation rows
_T7_COLUMNS = {
    "clip_R@1": ("clip", "R@1"),
    "clip_R@5": ("clip", "R@5"),
    "video_woB_DTW_R@1": ("DTW, background removed", "R@1"),
    "video_woB_DTW_R@5": ("DTW, background removed", "R@5"),
    "video_wB_DTW_R@1": ("DTW, background kept", "R@1"),
    "video_wB_DTW_R@5": ("DTW, background kept", "R@5"),
}
_MEASURES = {"T3": "clip", "T4": "frame accuracy", "T5": "clip", "T6": "QA", "T9": "alignment"}


@lru_cache(maxsize=1)
def paper_tables() -> dict[str, Any]:
    """Every stored table, keyed as in ``paper_tables.json`` (read once, from package data).

    Examples
    --------
    >>> len(paper_tables()) >= 9
    True
    """
    text = resources.files("nortonkit").joinpath("paper_tables.json").read_text("utf-8")
    return json.loads(text)


def _key(table: str) -> str:
    key = TABLE_KEYS.get(table, table)
    tables = paper_tables()
    if key not in tables:
        raise ValueError(
            f"table: expected one of {sorted(TABLE_KEYS)} or a key of paper_tables.json "
            f"({', '.join(sorted(tables))}), got {table!r}"
        )
    return key


def paper_table(key: str) -> dict[str, Any]:
    """One table as stored: ``title``, ``columns``, ``rows`` (each with ``source``), ``sources``.

    Parameters
    ----------
    key : ``"T1"`` ... ``"T9"`` (Norton's tables) or any key of ``paper_tables.json``.

    Returns
    -------
    dict (a copy; editing it does not change the stored table).

    Notes
    -----
    Norton (ICLR 2024) Tables 1-9; reported numbers only, with the sources and notes of
    ``paper_tables.json``.

    Examples
    --------
    >>> t = paper_table("T9")
    >>> t["columns"], [r["recall"] for r in t["rows"] if r["method"] == "Norton (Ours)"]
    (['method', 'recall'], [46.9])
    """
    return json.loads(json.dumps(paper_tables()[_key(key)]))


def _setting(table: str, row: dict[str, Any]) -> str:
    s = str(row.get("setting", "")).lower()
    if "fine-tuned" in s or "supervised" in s:
        return "fine-tuned"
    if "zero-shot" in s:
        return "zero-shot"
    if table == "T4":
        return "fine-tuned"  # Table 4 compares fine-tuned models (its notes in paper_tables.json)
    if table in ("T1", "T2", "T3", "T9"):
        return "zero-shot"
    return s


def paper_rows(table_key: str) -> Any:
    """One paper table in the tidy long format of :mod:`nortonkit.lab.evaluate`.

    Parameters
    ----------
    table_key : ``"T1"`` ... ``"T9"`` or a key of ``paper_tables.json``.

    Returns
    -------
    pandas.DataFrame with columns ``table``, ``method``, ``setting``, ``measure``, ``metric``,
    ``value`` (as printed in the paper, percent for recalls and accuracies), ``source``.

    Notes
    -----
    Norton Tables 1-9 (``paper_tables.json``). Table 7's columns become ``measure`` / ``metric``
    pairs such as ``("DTW, background kept", "R@1")``; Table 8 reports minutes per epoch and
    ``relative_to_line1``.

    Examples
    --------
    >>> df = paper_rows("T1")
    >>> row = df[(df.method == "Norton (Ours)") & (df.measure == "DTW") & (df.metric == "R@1")]
    >>> float(row.value.iloc[0]), row.setting.iloc[0]
    (88.7, 'zero-shot')
    """

    key = _key(table_key)
    table = next((t for t, k in TABLE_KEYS.items() if k == key), key)
    data = paper_tables()[key]
    out = []
    for row in data["rows"]:
        method = str(row.get("method") or row.get("model") or row.get("approach")
                     or row.get("variant") or row.get("line"))
        base = dict(table=table, method=method, setting=_setting(table, row),
                    source=row.get("source", ""))
        for col in data["columns"]:
            if col in _ID_COLUMNS:
                continue
            value = row.get(col)
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if table == "T7":
                measure, metric = _T7_COLUMNS.get(col, (col, col))
            elif table == "T8":
                measure, metric = str(row.get("approach")), col
            else:
                measure = str(row.get("measure", _MEASURES.get(table, "")))
                metric = col
            out.append({**base, "measure": measure, "metric": metric, "value": float(value)})
    cols = ["table", "method", "setting", "measure", "metric", "value", "source"]
    return pd.DataFrame(out, columns=cols)


def _norm(s: Any) -> str:
    return " ".join(str(s).lower().replace(".", " ").split())


def _method_matches(paper_method: str, wanted: str) -> bool:
    return _norm(paper_method).startswith(_norm(wanted))


def compare_with_paper(results: Any, method: str = NORTON) -> Any:
    """Our results with the paper's number for the same table, measure, setting and metric.

    Parameters
    ----------
    results : pandas.DataFrame from :func:`nortonkit.lab.evaluate.run_task` (columns ``table``,
        ``measure``, ``metric``, ``value``; ``setting`` and ``method`` when present).
    method : the paper row to compare with: ``"Norton (Ours)"`` (default) or a prefix of
        another method's name (``"VideoCLIP"``, ``"TempCLR"``, ``"MIL-NCE"``, ...). Table 7
        rows are always matched by our ``method`` (the preset letter ``"A"`` ... ``"J"``), Table 8
        rows by their approach (our ``measure``).

    Returns
    -------
    pandas.DataFrame: ``results`` plus ``paper_method``, ``paper_value``, ``paper_source`` and
    ``delta`` (ours - paper); NaN where the paper has no such number (e.g. the OT measure, the
    COIN zero-shot setting, a method the table does not list).

    Notes
    -----
    Numbers from Norton Tables 1-9 with their sources (``paper_tables.json``). Our values are in
    percent, like the paper's; Table 8 compares ``relative_to_line1`` (minutes per epoch on an
    A100 are not comparable with seconds per step on this machine).

    Examples
    --------
    >>> import pandas as pd
    >>> ours = pd.DataFrame([dict(table="T9", setting="zero-shot", method="untrained",
    ...                           measure="alignment", metric="recall", value=20.0)])
    >>> out = compare_with_paper(ours)
    >>> float(out.paper_value.iloc[0]), float(out.delta.iloc[0])
    (46.9, -26.9)
    >>> float(compare_with_paper(ours, method="TempCLR").paper_value.iloc[0])
    44.1
    """

    if not isinstance(results, pd.DataFrame):
        raise ValueError(f"results: expected a pandas DataFrame, got {type(results).__name__}")
    missing = {"table", "measure", "metric", "value"} - set(results.columns)
    if missing:
        raise ValueError(f"results: expected columns table, measure, metric, value; "
                         f"missing {sorted(missing)}")
    if not isinstance(method, str) or not method.strip():
        raise ValueError(f"method: expected a method name or prefix, got {method!r}")
    cache: dict[str, Any] = {}
    p_method, p_value, p_source = [], [], []
    for row in results.itertuples(index=False):
        rec = row._asdict()
        table = str(rec["table"])
        if table not in TABLE_KEYS:
            p_method.append(None), p_value.append(float("nan")), p_source.append(None)
            continue
        if table not in cache:
            cache[table] = paper_rows(table)
        rows = cache[table]
        sel = (rows.measure.map(_norm) == _norm(rec["measure"])) & (rows.metric == rec["metric"])
        if table == "T7":
            letter = str(rec.get("method", "")).split("-")[0].strip()
            sel &= rows.method.str.match(rf"^{letter}\b") if letter else False
        elif table != "T8":  # Table 8 rows are matched by their approach (our measure)
            sel &= rows.method.map(lambda m: _method_matches(m, method))
            setting = rec.get("setting")
            if setting is not None and table in ("T4", "T5", "T6"):
                sel &= rows.setting == setting
        hit = rows[sel]
        if len(hit):
            p_method.append(hit.method.iloc[0])
            p_value.append(float(hit.value.iloc[0]))
            p_source.append(hit.source.iloc[0])
        else:
            p_method.append(None), p_value.append(float("nan")), p_source.append(None)
    out = results.copy()
    out["paper_method"] = p_method
    out["paper_value"] = p_value
    out["paper_source"] = p_source
    out["delta"] = (out["value"].astype(float) - out["paper_value"]).round(4)
    return out
