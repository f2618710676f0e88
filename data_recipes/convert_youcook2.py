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
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.features import install_features, install_file
from nortonkit.data.layout import DataRoot
from nortonkit.data.youcook import load_youcook_full_videos, load_youcook_paragraphs
from nortonkit.io import safe_pickle_load


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="convert_youcook2.py", description=__doc__.split("\n")[0])
    p.add_argument("--root", required=True, help="data root (files go to <root>/youcook/)")
    p.add_argument("--annotations", required=True, help="youcookii_annotations_trainval.json")
    p.add_argument("--val-pkl", required=True, help="youcook_val.pkl (list of clip records)")
    p.add_argument("--features", required=True, help="folder of <video_id>.npy S3D features")
    p.add_argument("--mode", choices=("copy", "symlink", "hardlink"), default="copy",
                   help="how feature files are placed (copy)")
    p.add_argument("--dim", type=int, default=512, help="feature width (512)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    return p


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
    progress = None
    if not args.quiet:
        from tqdm.auto import tqdm

        progress = partial(tqdm, desc="youcook features", unit="video")
    missing = install_features(args.features, root.youcook_features, vids, expected_dim=args.dim,
                               mode=args.mode, progress=progress, what="youcook videos")
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
