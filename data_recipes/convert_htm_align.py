"""Check released HTM-Align files and place them in nortonkit's data-root layout.

Inputs: TAN's ``htm_align.json`` (``{vid: [[alignable, start, end, text], ...]}``, 80 videos)
and a folder of per-video S3D features ``<vid>.npy``. Every row is parsed and every feature
file validated, then copied (or linked) to ``how2-align/``. Re-runs skip files already in
place.

Example::

    python data_recipes/convert_htm_align.py --root data --json /raw/htm_align.json \\
        --features /raw/htm_align_s3d
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.features import (
    converter_parser,
    install_converter_features,
    install_file,
    read_json,
)
from nortonkit.data.htm_align import load_htm_align
from nortonkit.data.layout import DataRoot


def build_parser() -> argparse.ArgumentParser:
    return converter_parser("convert_htm_align.py", __doc__, "how2-align", [
        ("--json", "htm_align.json", True),
    ])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    data = read_json(args.json)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{args.json}: expected a non-empty {{video_id: [[alignable, start, "
                         "end, text], ...]}}")
    install_file(args.json, root.htm_align_json)
    missing = install_converter_features(args, root.htm_align_features, sorted(data),
                                         "htm-align")
    ds = load_htm_align(root, expected_dim=args.dim,
                        on_missing="skip" if len(missing) else "raise")
    n_sent = sum(len(t) for t, _, _ in ds.annotations.values())
    print(f"{root.htm_align_json.parent}: {len(ds)} videos, {n_sent} sentences, "
          f"{ds.n_alignable} alignable (paper: 80 videos, 49k sentences); "
          f"{len(missing)} videos have no features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
