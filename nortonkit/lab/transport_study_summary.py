"""Reading the transport study's runs: mean ± std over seeds, the table and the paper's claims.

:func:`summarize` reduces the tidy runs of :func:`nortonkit.lab.transport_study.transport_sweep`
to ``mean, std, n`` per (knob, level, method, metric); :func:`summary_table` lays one metric
out as ``mean ± std`` strings; :func:`compare_methods` calls a difference real only beyond
twice the combined standard deviation; :func:`paper_claims` checks the claims of Norton Fig. 1
and Fig. 3 (App. G) against the sweep and :func:`claims_markdown` writes them as a paragraph.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from .transport_study import METHODS

__all__ = [
    "summarize",
    "summary_table",
    "compare_methods",
    "paper_claims",
    "claims_markdown",
]


def summarize(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, sample std and count over seeds per (knob, level, method, metric).

    Returns
    -------
    pandas.DataFrame
        ``knob, level, method, metric, mean, std, n, note``: ``n`` counts the seeds with a
        defined value; ``mean`` is NaN only when none is defined, ``std`` when ``n < 2``, and
        ``note`` then says why.

    Examples
    --------
    >>> runs = pd.DataFrame(dict(knob="k", level=0.0, method="ot", seed=[0, 1],
    ...                          metric="accuracy", value=[0.5, 0.7], note=""))
    >>> summarize(runs)[["mean", "n"]].round(3).values.tolist()
    [[0.6, 2.0]]
    """
    need = {"knob", "level", "method", "seed", "metric", "value", "note"}
    if not isinstance(runs, pd.DataFrame) or not need <= set(runs.columns):
        got = list(runs.columns) if isinstance(runs, pd.DataFrame) else type(runs).__name__
        raise ValueError(f"runs: expected a DataFrame with columns {sorted(need)}, got {got}")
    rows = []
    for (knob, level, method, metric), g in runs.groupby(["knob", "level", "method", "metric"],
                                                          sort=False):
        vals = g["value"].dropna()
        notes = sorted(set(g.loc[g["value"].isna(), "note"]))
        note = "; ".join(notes)
        if len(vals) == 1:
            note = "; ".join(filter(None, [note, "std undefined: one seed"]))
        rows.append(dict(knob=knob, level=level, method=method, metric=metric,
                         mean=vals.mean() if len(vals) else math.nan,
                         std=vals.std(ddof=1) if len(vals) > 1 else math.nan, n=len(vals),
                         note=note))
    return pd.DataFrame(rows)


def summary_table(summary: pd.DataFrame, metric: str = "accuracy",
                  scale: float = 100.0) -> pd.DataFrame:
    """``mean ± std`` strings of one metric, index (knob, level), one column per method.

    >>> s = pd.DataFrame(dict(knob="k", level=0.0, method=["dtw", "ot"], metric="accuracy",
    ...                       mean=[0.5, 0.6], std=[0.1, 0.05], n=5, note=""))
    >>> summary_table(s).values.tolist()
    [['50.0 ± 10.0', '60.0 ± 5.0']]
    """
    sub = summary[summary["metric"] == metric]
    if sub.empty:
        raise ValueError(f"metric: expected one of {sorted(set(summary['metric']))}, "
                         f"got {metric!r}")
    cell = sub.apply(lambda r: "undefined" if r["n"] == 0 else
                     f"{r['mean'] * scale:.1f} ± {np.nan_to_num(r['std']) * scale:.1f}", axis=1)
    table = sub.assign(cell=cell).pivot(index=["knob", "level"], columns="method", values="cell")
    return table[[m for m in METHODS if m in table.columns]]


def _stat(summary: pd.DataFrame, knob: str, level: float, method: str,
          metric: str) -> tuple[float, float, int] | None:
    row = summary[(summary["knob"] == knob) & np.isclose(summary["level"], level)
                  & (summary["method"] == method) & (summary["metric"] == metric)]
    if row.empty or row["n"].iloc[0] == 0:
        return None
    return float(row["mean"].iloc[0]), float(row["std"].iloc[0]), int(row["n"].iloc[0])


def compare_methods(summary: pd.DataFrame, a: str, b: str, metric: str = "accuracy",
                    knob: str = "default", level: float = 0.0) -> dict[str, Any]:
    r"""Is ``a`` better than ``b``? Real only beyond twice the combined standard deviation.

    Returns ``delta = mean_a - mean_b``, ``sigma = sqrt(std_a^2 + std_b^2)`` and ``verdict``:
    ``"a > b"`` if ``delta > 2 sigma``, ``"a < b"`` if ``delta < -2 sigma``, ``"tie"``
    otherwise, ``"unresolved"`` with fewer than two seeds, ``"missing"`` if not swept.

    >>> s = pd.DataFrame(dict(knob="default", level=0.0, method=["norton", "dtw"],
    ...                       metric="accuracy", mean=[0.8, 0.5], std=[0.05, 0.05], n=5))
    >>> compare_methods(s, "norton", "dtw")["verdict"]
    'norton > dtw'
    """
    sa, sb = _stat(summary, knob, level, a, metric), _stat(summary, knob, level, b, metric)
    if sa is None or sb is None:
        return dict(delta=math.nan, sigma=math.nan, verdict="missing", a=sa, b=sb)
    delta = sa[0] - sb[0]
    if min(sa[2], sb[2]) < 2:
        return dict(delta=delta, sigma=math.nan, verdict="unresolved", a=sa, b=sb)
    sigma = math.hypot(sa[1], sb[1])
    verdict = f"{a} > {b}" if delta > 2 * sigma else f"{a} < {b}" if delta < -2 * sigma \
        else "tie"
    return dict(delta=delta, sigma=sigma, verdict=verdict, a=sa, b=sb)


def _pct(s: tuple[float, float, int] | None) -> str:
    return "n/a" if s is None else f"{100 * s[0]:.1f} ± {100 * np.nan_to_num(s[1]):.1f}"


def _drop(summary: pd.DataFrame, knob: str, method: str) -> dict[str, Any] | None:
    """Accuracy at the lowest minus at the highest level of ``knob`` (a real drop > 2 sigma)."""
    levels = sorted(summary.loc[summary["knob"] == knob, "level"].unique())
    if len(levels) < 2:
        return None
    lo = _stat(summary, knob, levels[0], method, "accuracy")
    hi = _stat(summary, knob, levels[-1], method, "accuracy")
    if lo is None or hi is None:
        return None
    sigma = math.hypot(lo[1], hi[1])
    real = bool(min(lo[2], hi[2]) >= 2 and lo[0] - hi[0] > 2 * sigma)
    return dict(lo=lo, hi=hi, levels=(levels[0], levels[-1]), real=real)


def paper_claims(summary: pd.DataFrame) -> pd.DataFrame:
    """The claims of Norton Fig. 1 and Fig. 3 (App. G), checked against the sweep.

    Returns
    -------
    pandas.DataFrame
        ``claim, verdict, evidence``: verdict ``"holds"``, ``"does not hold"``, ``"no real
        difference"`` (within twice the combined std) or ``"not tested"`` (not in the sweep).

    Notes
    -----
    Claims: Norton beats DTW and vanilla OT at the default noise (Fig. 3); OT follows
    asynchronous and reordered narration better than DTW (Fig. 1, right); Norton beats vanilla
    OT when most captions are irrelevant, because OT must place every caption (App. G); the
    bucket keeps Norton's accuracy as the irrelevant rate grows while DTW's drops (Fig. 1); the
    bucket's precision for irrelevant captions beats the irrelevant share (sending at random).
    """
    rows = []

    def pair(claim: str, a: str, b: str, knob: str, level: float | None,
             metric: str = "accuracy", b_metric: str | None = None) -> None:
        if level is None:
            rows.append(dict(claim=claim, verdict="not tested", evidence=f"{knob} not swept"))
            return
        sub = summary
        if b_metric is not None:  # compare a metric of method a with another of the same rows
            own = summary[summary["method"] == a]
            sub = pd.concat([own[own["metric"] == metric],
                             own[own["metric"] == b_metric].assign(method=b, metric=metric)])
        c = compare_methods(sub, a, b, metric, knob, level)
        verdict = {"missing": "not tested", "unresolved": "no real difference",
                   "tie": "no real difference", f"{a} > {b}": "holds"}.get(c["verdict"],
                                                                         "does not hold")
        where = "default noise" if knob == "default" else f"{knob} = {level:g}"
        rows.append(dict(claim=claim, verdict=verdict, evidence=(
            f"{where}: {a} {_pct(c['a'])} vs {b} {_pct(c['b'])} (% {metric}; difference "
            f"{100 * c['delta']:+.1f}, 2 sigma = {200 * np.nan_to_num(c['sigma']):.1f})")))

    def top(knob: str) -> float | None:
        levels = summary.loc[summary["knob"] == knob, "level"]
        return None if levels.empty else float(levels.max())

    pair("Norton aligns captions better than DTW", "norton", "dtw", "default", 0.0)
    pair("Norton aligns captions better than vanilla OT", "norton", "ot", "default", 0.0)
    pair("OT follows reordered narration better than DTW", "ot", "dtw", "reorder_rate",
         top("reorder_rate"))
    pair("OT follows asynchronous narration better than DTW", "ot", "dtw", "async_rate",
         top("async_rate"))
    pair("With mostly irrelevant captions the bucket beats vanilla OT", "norton", "ot",
         "irrelevant_rate", top("irrelevant_rate"))
    n, d = _drop(summary, "irrelevant_rate", "norton"), _drop(summary, "irrelevant_rate", "dtw")
    claim = "Norton's bucket keeps caption accuracy as the irrelevant rate grows, DTW does not"
    if n is None or d is None:
        rows.append(dict(claim=claim, verdict="not tested", evidence="irrelevant_rate not swept"))
    else:
        verdict = "holds" if (not n["real"] and d["real"]) else "does not hold"
        lv = "irrelevant_rate {:g} -> {:g}".format(*n["levels"])
        rows.append(dict(claim=claim, verdict=verdict, evidence=(
            f"{lv}: Norton {_pct(n['lo'])} -> {_pct(n['hi'])} (real drop: {n['real']}), DTW "
            f"{_pct(d['lo'])} -> {_pct(d['hi'])} (real drop: {d['real']})")))
    pair("The bucket catches irrelevant captions better than chance", "norton", "chance",
         "default", 0.0, metric="bucket_precision", b_metric="irrelevant_share")
    return pd.DataFrame(rows)


def claims_markdown(claims: pd.DataFrame, n_seeds: int | None = None) -> str:
    """The claims table as a markdown paragraph with a bullet per claim.

    >>> c = pd.DataFrame(dict(claim=["x"], verdict=["holds"], evidence=["1 vs 2"]))
    >>> text = claims_markdown(c, 5)
    >>> text.splitlines()[0][:50]
    "**The paper's claims on this corpus** (5 seeds; a "
    >>> text.splitlines()[-1]
    '- **holds**: x. 1 vs 2'
    """
    seeds = "" if n_seeds is None else f"{n_seeds} seeds; "
    head = (f"**The paper's claims on this corpus** ({seeds}a difference is real beyond twice "
            "the combined std):\n")
    lines = [f"- **{r.verdict}**: {r.claim}. {r.evidence}" for r in claims.itertuples()]
    return head + "\n" + "\n".join(lines)
