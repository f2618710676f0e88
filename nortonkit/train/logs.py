"""The pre-training run's logs: CSV tables, TensorBoard scalars and stderr lines.

Three tables under the run directory, each rewritten atomically at every row (rank 0):
``train_log.csv`` (:data:`TRAIN_COLUMNS`, every ``train.log_every`` updates), ``val_log.csv``
(:data:`VAL_COLUMNS`) and ``retrieval_log.csv`` (:data:`RETRIEVAL_COLUMNS`, one row per epoch's
batch plan). A resumed run keeps the rows up to its checkpoint and drops the later ones, and its
TensorBoard writer (``tb/``) purges the events after the checkpoint's update.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..io import atomic_write

__all__ = ["RETRIEVAL_COLUMNS", "TRAIN_COLUMNS", "VAL_COLUMNS", "CsvTable", "RunLogs", "csv_value",
           "log_line"]

TRAIN_COLUMNS = ("step", "epoch", "lr", "loss", "loss_clip", "loss_video", "grad_norm",
                 "inv_tau_video", "inv_tau_clip", "bucket_value", "sec_per_step", "clips_per_sec")
VAL_COLUMNS = ("step", "epoch", "val_loss", "val_loss_clip", "val_loss_video", "val_clip_r1",
               "val_batches")
RETRIEVAL_COLUMNS = ("epoch", "mode", "n_batches", "n_videos", "n_effective", "coverage",
                     "n_short", "n_query_dropped", "n_centroids", "seconds")


class CsvTable:
    """A CSV file rewritten atomically at each flush (rank 0), mirrored to TensorBoard.

    Parameters
    ----------
    path : the CSV file.
    columns : its columns, in order; other keys of an added row are dropped.
    keep_until : when not None and ``path`` exists, its rows whose ``key`` is at most
        ``keep_until`` are read back (cells as int, float, None or str) and kept.
    key : the column ``keep_until`` compares (``"step"`` or ``"epoch"``).

    Attributes
    ----------
    rows : list of dict, one per row, keyed by ``columns``.
    """

    def __init__(self, path: Path, columns: Sequence[str], keep_until: int | None, key: str):
        self.path, self.columns, self.rows = path, tuple(columns), []
        if keep_until is not None and path.is_file():
            with open(path, newline="") as f:
                rows = [{k: _cell(v) for k, v in r.items()} for r in csv.DictReader(f)]
            self.rows = [r for r in rows if r[key] is not None and r[key] <= keep_until]

    def add(self, row: dict[str, Any]) -> None:
        """Append ``row`` (missing columns are None)."""
        self.rows.append({c: row.get(c) for c in self.columns})

    def flush(self) -> None:
        """Rewrite the file with the header and every row (None as an empty cell)."""
        with atomic_write(self.path, "w") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns)
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in self.rows)


class RunLogs:
    """The run's three tables (``tables["train"]``, ``["val"]``, ``["retrieval"]``) and scalars.

    Parameters
    ----------
    out_dir : the run directory.
    step, epoch, consumed : where the run starts (updates done, 1-based epoch, the epoch's
        batches consumed), as restored from a checkpoint or ``0, 1, 0``.
    resumed : True when the run continues from a checkpoint: the train and validation rows up
        to ``step`` and the retrieval rows of the epochs already planned are kept.
    tensorboard : write TensorBoard scalars under ``out_dir/tb`` (rank 0 only).
    """

    def __init__(self, out_dir: Path, step: int, epoch: int, consumed: int, resumed: bool,
                 tensorboard: bool):
        keep = step if resumed else 0
        self.tables = {
            "train": CsvTable(out_dir / "train_log.csv", TRAIN_COLUMNS, keep, "step"),
            "val": CsvTable(out_dir / "val_log.csv", VAL_COLUMNS, keep, "step"),
            "retrieval": CsvTable(out_dir / "retrieval_log.csv", RETRIEVAL_COLUMNS,
                                  epoch - (1 if consumed == 0 else 0) if resumed else 0,
                                  "epoch"),
        }
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter  # noqa: PLC0415 -- optional heavy dependency (tensorboard)

            self.writer = SummaryWriter(str(out_dir / "tb"), purge_step=step if step else None)

    def add(self, name: str, row: dict[str, Any], scalars: dict[str, Any], at: int) -> None:
        """Append ``row`` to table ``name``, rewrite its file and send ``scalars`` at ``at``.

        Parameters
        ----------
        name : ``"train"``, ``"val"`` or ``"retrieval"`` (also the TensorBoard prefix).
        row : the table row (values already rounded by :func:`csv_value`).
        scalars : the values for TensorBoard; the int and float ones other than ``step`` and
            ``epoch`` are written as ``<name>/<key>``.
        at : the TensorBoard step (the update count).
        """
        table = self.tables[name]
        table.add(row)
        table.flush()
        if self.writer is not None:
            for k, v in scalars.items():
                if isinstance(v, (int, float)) and k not in ("step", "epoch"):
                    self.writer.add_scalar(f"{name}/{k}", v, at)

    def close(self) -> None:
        """Close the TensorBoard writer, if any."""
        if self.writer is not None:
            self.writer.close()


def _cell(text: str) -> Any:
    """A CSV cell read back as int, float, None (empty) or str."""
    if text == "":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def csv_value(x: Any) -> Any:
    """A value as logged: floats (Python or numpy) rounded to 6 decimals, others unchanged.

    Examples
    --------
    >>> csv_value(np.float32(0.5)), csv_value(1 / 3), csv_value("fixed")
    (0.5, 0.333333, 'fixed')
    """
    return round(float(x), 6) if isinstance(x, (float, np.floating)) else x


def log_line(msg: str, bar: Any) -> None:
    """Write a log line to stderr, beside the progress bar; stdout stays for results.

    Parameters
    ----------
    msg : the line.
    bar : the tqdm bar being drawn, or None.
    """
    if bar is not None:
        bar.write(msg, file=sys.stderr)
    else:
        print(msg, file=sys.stderr, flush=True)
