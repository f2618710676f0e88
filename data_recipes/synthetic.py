"""Write the synthetic noisy instructional-video corpus in the released dataset layouts.

Usage::

    python data_recipes/synthetic.py --out data/synthetic             # default size (~15 s)
    python data_recipes/synthetic.py --out data/smoke --size smoke    # CI size (~3 s)
    python data_recipes/synthetic.py --out data/scale --scale 100000  # 100k HowTo100M-like

A thin wrapper over :func:`nortonkit.synthetic.corpus.generate_corpus`; see
``data_recipes/SYNTHETIC.md``. Re-running with the same arguments does nothing (the corpus'
``manifest.json`` records its config). A folder that holds a corpus of another configuration
is refused with exit status 2 and nothing changed; ``--overwrite`` replaces it on purpose (the
new corpus is written beside the old one and renamed into place once complete).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nortonkit.synthetic.config import SyntheticConfig, describe_config  # noqa: E402
from nortonkit.synthetic.corpus import (  # noqa: E402
    CorpusMismatchError,
    generate_corpus,
    load_manifest,
)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="synthetic.py",
        description="Generate the synthetic HowTo100M / YouCookII / MSR-VTT / COIN / HTM-Align "
        "corpus (features, captions, annotations and ground truth) under one data root.",
    )
    ap.add_argument("--out", required=True, help="data root to write (empty or synthetic)")
    ap.add_argument("--seed", type=int, default=0, help="master seed (default 0)")
    ap.add_argument("--size", default="default", choices=("default", "smoke"),
                    help="named size (default: %(default)s)")
    ap.add_argument("--scale", type=int, default=None, metavar="N",
                    help="number of HowTo100M-like training videos (streamed to disk)")
    ap.add_argument("--shard-size", type=int, default=None, metavar="N",
                    help="videos per HowTo100M shard (default: 256, or 4096 from 16384 videos)")
    ap.add_argument("--overwrite", action="store_true",
                    help="replace a corpus of another configuration already in --out (without "
                    "it, such a folder is refused and left as it is)")
    ap.add_argument("--quiet", action="store_true", help="no progress bars")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {} if args.shard_size is None else {"how2_shard_size": args.shard_size}
    try:
        config = SyntheticConfig.preset(args.size, seed=args.seed, scale=args.scale, **overrides)
    except ValueError as e:
        print(f"synthetic.py: error: {e}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    try:
        before = load_manifest(args.out)
        root = generate_corpus(args.out, config, progress=not args.quiet,
                               overwrite=args.overwrite)
    except CorpusMismatchError as e:
        print(f"synthetic.py: error: {e.describe('--overwrite', '--out')}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"synthetic.py: error: {e}", file=sys.stderr)
        return 2
    manifest = load_manifest(root.root)
    reused = before is not None and before == manifest
    verb = "already up to date" if reused else f"written in {time.perf_counter() - t0:.1f} s"
    if before is not None and not reused:
        verb += f" (replacing the corpus {describe_config(before.get('config') or {})})"
    print(f"{root.root}: synthetic corpus {verb}")
    print(json.dumps(manifest["counts"], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
