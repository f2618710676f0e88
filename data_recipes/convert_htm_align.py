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
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.features import install_features, install_file, read_json
from nortonkit.data.htm_align import load_htm_align
from nortonkit.data.layout import DataRoot


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convert_htm_align.py", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="data root (files go to <root>/how2-align/)")
    p.add_argument("--json", required=True, help="htm_align.json")
    p.add_argument("--features", required=True, help="folder of <video_id>.npy S3D features")
    p.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy",
                   help="how feature files are placed (copy)")
    p.add_argument("--dim", type=int, default=512, help="feature width (512)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    data = read_json(args.json)
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{args.json}: expected a non-empty {{video_id: [[alignable, start, "
                         "end, text], ...]}}")
    install_file(args.json, root.htm_align_json)
    progress = None
    if not args.quiet:
        from tqdm.auto import tqdm

        progress = partial(tqdm, desc="htm-align features", unit="video")
    missing = install_features(args.features, root.htm_align_features, sorted(data),
                               expected_dim=args.dim, mode=args.mode, progress=progress,
                               what="htm-align videos")
    ds = load_htm_align(root, expected_dim=args.dim,
                        on_missing="skip" if len(missing) else "raise")
    n_sent = sum(len(t) for t, _, _ in ds.annotations.values())
    print(f"{root.htm_align_json.parent}: {len(ds)} videos, {n_sent} sentences, "
          f"{ds.n_alignable} alignable (paper: 80 videos, 49k sentences); "
          f"{len(missing)} videos have no features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
