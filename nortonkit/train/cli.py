"""Command line of pre-training: ``python -m nortonkit.train --config <yaml> [key=value ...]``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence

from .config import (
    load_config,
)
from .loop import fit

__all__ = ["main"]


# ----------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``python -m nortonkit.train --config run.yaml [section.key=value ...]``."""
    parser = argparse.ArgumentParser(
        prog="python -m nortonkit.train",
        description="Norton pre-training (one process, or one per GPU under torchrun).",
    )
    parser.add_argument("--config", required=True, help="YAML file (e.g. nortonkit/configs/"
                        "tiny_synthetic.yaml)")
    parser.add_argument("overrides", nargs="*", help="section.key=value, e.g. optim.lr=1e-4")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config, args.overrides)
    except (ValueError, FileNotFoundError) as e:
        parser.error(str(e))
    result = fit(config)
    if int(os.environ.get("RANK", "0")) == 0:
        where = result.last_checkpoint or result.out_dir
        print(f"done: {result.step} updates, epoch {result.epoch}; checkpoint {where}", flush=True)
    return 0
