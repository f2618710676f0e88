"""Convert released HowTo100M files into nortonkit's data-root layout.

Two steps, each idempotent (a finished output is detected and skipped unless ``--force``):

``features``
    a folder of per-video S3D features ``<video_id>.npy`` (float16 ``(T, 512)``) plus a video
    list -> ``how2/feat_shard/{split}_{s}_{starts,data}.npy`` and ``{split}_meta.pkl``
    (4096 videos per shard). Missing or unreadable files are skipped and counted.
``captions``
    TAN's ``sentencified_htm_1200k.json`` ``{vid: {start, end, text}}`` ->
    ``how2/caps_shard/sentencified_htm_1200k.bert-base-uncased.{split}_{s}.*.npy``, following
    the feature shards of the same split. Each caption string is cut to its first 96
    characters, tokenised with bert-base-uncased WordPiece (no special tokens), truncated to 32
    tokens and padded with -1.

Examples::

    python data_recipes/convert_howto100m.py features --root data \\
        --feature-dir /raw/feat_how2_s3d --list /raw/how2_s3d_val.lst --split val
    python data_recipes/convert_howto100m.py captions --root data \\
        --json /raw/sentencified_htm_1200k.json --split val
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout

from nortonkit.data.features import install_file
from nortonkit.data.howto100m import (
    ShardedCaptions,
    ShardedFeatures,
    read_video_list,
    shard_feature_dir,
    write_caption_shards,
)
from nortonkit.data.layout import CAPTION_PREFIX, DataRoot


def _progress(args: argparse.Namespace, desc: str, unit: str):
    if args.quiet:
        return None
    from tqdm.auto import tqdm

    return partial(tqdm, desc=desc, unit=unit)


def _features(args: argparse.Namespace) -> int:
    root = DataRoot(args.root) if args.root else None
    out = Path(args.out) if args.out else root.how2_feature_shards
    meta = out / f"{args.split}_meta.pkl"
    ids = read_video_list(args.list)
    if root is not None and Path(args.list).resolve() != root.how2_list(args.split).resolve():
        install_file(args.list, root.how2_list(args.split))
    if meta.exists() and not args.force:
        feats = ShardedFeatures(out, args.split, expected_dim=args.dim)
        print(f"{meta}: already converted ({len(feats)} videos); use --force to redo")
        return 0
    res = shard_feature_dir(args.feature_dir, ids, out, args.split, args.shard_size,
                            expected_dim=args.dim, progress=_progress(args, "sharding", "video"))
    ShardedFeatures(out, args.split, expected_dim=args.dim)  # read back: every shard checks out
    print(f"{out}: {res.n_videos} videos, {res.n_rows} seconds in {res.n_shards} shard(s); "
          f"{len(res.skipped)} of {len(ids)} listed videos skipped")
    return 0


def _captions(args: argparse.Namespace) -> int:
    from nortonkit.data.features import read_json
    from nortonkit.data.text import load_tokenizer

    root = DataRoot(args.root) if args.root else None
    if args.meta is None and root is None:
        raise SystemExit("captions: give --root or --meta")
    meta = Path(args.meta) if args.meta else root.how2_feature_shards / f"{args.split}_meta.pkl"
    out = Path(args.out) if args.out else root.how2_caption_shards
    if not args.force:
        try:
            caps = ShardedCaptions(out, args.split, meta, prefix=args.prefix)
        except (FileNotFoundError, ValueError):
            caps = None  # missing or partial: (re)write
        shards = sorted(out.glob(f"{args.prefix}{args.split}_*.npy"))
        fresh = all(p.stat().st_mtime >= Path(meta).stat().st_mtime for p in shards)
        if caps is not None and fresh:
            print(f"{out}: {args.split} caption shards already complete ({len(caps)} videos); "
                  "use --force to redo")
            return 0
    captions = read_json(args.json)
    tok = load_tokenizer(args.tokenizer)
    res = write_caption_shards(captions, tok, meta, out, args.split, prefix=args.prefix,
                               source=str(args.json),
                               progress=_progress(args, "tokenising", "shard"))
    ShardedCaptions(out, args.split, meta, prefix=args.prefix)
    print(f"{out}: {res.n_rows} captions of {res.n_videos} videos in {res.n_shards} shard(s); "
          f"{len(res.skipped)} videos without captions")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="convert_howto100m.py",
        description="Shard HowTo100M features and pre-tokenise its sentencified captions "
                    "into the nortonkit data-root layout.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    f = sub.add_parser("features", help="per-video .npy folder -> feature shards")
    f.add_argument("--feature-dir", required=True, help="folder of <video_id>.npy features")
    f.add_argument("--list", required=True, help="video list, one id per line (how2_s3d_*.lst)")
    f.add_argument("--split", required=True, help="split name: train or val")
    f.add_argument("--shard-size", type=int, default=4096, help="videos per shard (4096)")
    f.add_argument("--dim", type=int, default=512, help="feature width (512)")
    c = sub.add_parser("captions", help="sentencified_htm_1200k.json -> caption shards")
    c.add_argument("--json", required=True, help="sentencified_htm_1200k.json")
    c.add_argument("--split", required=True, help="split name: train or val")
    c.add_argument("--meta", help="feature-shard meta .pkl (default: from --root)")
    c.add_argument("--tokenizer", help="local bert-base-uncased tokenizer folder (default: the "
                                       "offline copy of the same vocabulary)")
    c.add_argument("--prefix", default=CAPTION_PREFIX, help="caption shard file prefix")
    for p in (f, c):
        p.add_argument("--root", help="data root (outputs go to its how2/ folders)")
        p.add_argument("--out", help="output folder (overrides --root)")
        p.add_argument("--force", action="store_true", help="redo even if outputs exist")
        p.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "features" and not (args.root or args.out):
        raise SystemExit("features: give --root or --out")
    if args.command == "captions" and not (args.root or args.out):
        raise SystemExit("captions: give --root or --out")
    return _features(args) if args.command == "features" else _captions(args)


if __name__ == "__main__":
    sys.exit(main())
