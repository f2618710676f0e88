"""Check released COIN files and place them in nortonkit's data-root layout.

Inputs: ``COIN.json`` (``{"database": {vid: {"subset", "annotation": [{"segment", "id",
"label"}]}}}``) and a folder of per-video S3D features ``<vid>.npy``. The JSON is parsed and
the label set built from the testing subset (778 step labels + background = 779 classes for
the released COIN), every available feature file is validated and copied (or linked) to
``coin/``. Videos without features are counted (the readers skip them, as the official code
does). Re-runs skip files already in place.

Example::

    python data_recipes/convert_coin.py --root data --json /raw/COIN.json \\
        --features /raw/coin_s3d
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.coin import load_coin
from nortonkit.data.features import install_features, install_file, read_json
from nortonkit.data.layout import DataRoot


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convert_coin.py", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="data root (files go to <root>/coin/)")
    p.add_argument("--json", required=True, help="COIN.json")
    p.add_argument("--features", required=True, help="folder of <video_id>.npy S3D features")
    p.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy",
                   help="how feature files are placed (copy)")
    p.add_argument("--dim", type=int, default=512, help="feature width (512)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    db = read_json(args.json)
    if not isinstance(db, dict) or not isinstance(db.get("database"), dict):
        raise ValueError(f"{args.json}: expected {{'database': {{video_id: ...}}}}")
    install_file(args.json, root.coin_json)
    root.coin_features.mkdir(parents=True, exist_ok=True)
    progress = None
    if not args.quiet:
        from tqdm.auto import tqdm

        progress = partial(tqdm, desc="coin features", unit="video")
    missing = install_features(args.features, root.coin_features, list(db["database"]),
                               expected_dim=args.dim, mode=args.mode, progress=progress,
                               what="coin videos")
    test = load_coin(root, subset="testing", expected_dim=args.dim)
    train = load_coin(root, subset="training", expected_dim=args.dim)
    print(f"{root.coin_json.parent}: {len(train)} training / {len(test)} testing videos with "
          f"features; n_classes = {test.n_classes} (released COIN: 779); "
          f"{len(missing)} videos have no features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
