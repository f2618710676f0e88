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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.coin import load_coin
from nortonkit.data.features import (
    converter_parser,
    install_converter_features,
    install_file,
    read_json,
)
from nortonkit.data.layout import DataRoot


def build_parser() -> argparse.ArgumentParser:
    return converter_parser("convert_coin.py", __doc__, "coin", [
        ("--json", "COIN.json", True),
    ])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    db = read_json(args.json)
    if not isinstance(db, dict) or not isinstance(db.get("database"), dict):
        raise ValueError(f"{args.json}: expected {{'database': {{video_id: ...}}}}")
    install_file(args.json, root.coin_json)
    root.coin_features.mkdir(parents=True, exist_ok=True)
    missing = install_converter_features(args, root.coin_features, list(db["database"]), "coin")
    test = load_coin(root, subset="testing", expected_dim=args.dim)
    train = load_coin(root, subset="training", expected_dim=args.dim)
    print(f"{root.coin_json.parent}: {len(train)} training / {len(test)} testing videos with "
          f"features; n_classes = {test.n_classes} (released COIN: 779); "
          f"{len(missing)} videos have no features")
    return 0


if __name__ == "__main__":
    sys.exit(main())
