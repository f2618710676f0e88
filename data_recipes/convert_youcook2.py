"""Check released YouCookII evaluation files and place them in nortonkit's data-root layout.

Inputs: ``youcookii_annotations_trainval.json`` (YouCookII annotations), ``youcook_val.pkl``
(the clip list of the VideoCLIP/howto100m release: a list of ``{"id": "<vid>_<clip>", ...}``)
and a folder of per-video S3D features ``<vid>.npy``. Every record is resolved against the
annotations and every needed feature file is validated (shape, dtype, NaN) before it is
copied (or linked) to ``youcook/``. Re-runs skip files that are already in place.

Example::

    python data_recipes/convert_youcook2.py --root data \\
        --annotations /raw/youcookii_annotations_trainval.json \\
        --val-pkl /raw/youcook_val.pkl --features /raw/youcook_s3d
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
)
from nortonkit.data.layout import DataRoot
from nortonkit.data.youcook import load_youcook_full_videos, load_youcook_paragraphs
from nortonkit.io import safe_pickle_load


def build_parser() -> argparse.ArgumentParser:
    return converter_parser("convert_youcook2.py", __doc__, "youcook", [
        ("--annotations", "youcookii_annotations_trainval.json", True),
        ("--val-pkl", "youcook_val.pkl (list of clip records)", True),
    ])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    recs = safe_pickle_load(args.val_pkl)
    if not isinstance(recs, list):
        raise ValueError(f"{args.val_pkl}: expected a list of dicts, got {type(recs).__name__}")
    vids = []
    for i, r in enumerate(recs):
        if not isinstance(r, dict) or not isinstance(r.get("id"), str) or "_" not in r["id"]:
            raise ValueError(f"{args.val_pkl}: record {i}: expected a dict with "
                             "'id' = '<video_id>_<clip_idx>'")
        vid = r["id"].rpartition("_")[0]
        if vid not in vids:
            vids.append(vid)
    install_file(args.annotations, root.youcook_annotations)
    install_file(args.val_pkl, root.youcook_val_pkl)
    missing = install_converter_features(args, root.youcook_features, vids, "youcook")
    par = load_youcook_paragraphs(root, expected_dim=args.dim)
    full = load_youcook_full_videos(root, expected_dim=args.dim)
    print(f"{root.youcook_features.parent}: {len(par.video_ids)} videos, "
          f"{len(par.clips.captions)} clips (paper: 436 / 3,350); "
          f"{len(missing)} videos of the pickle have no features; "
          f"clips grouped contiguously: {par.contiguous}; "
          f"{sum(full.text_lengths)} captions for background-kept retrieval")
    return 0


if __name__ == "__main__":
    sys.exit(main())
