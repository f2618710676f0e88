"""Convert a released VideoCLIP / Norton fairseq checkpoint into a nortonkit checkpoint.

Usage::

    python -m nortonkit.convert checkpoint_best.pt checkpoints/norton_bert_base
    python -m nortonkit.convert videoclip.pt out/videoclip --official
    python -m nortonkit.convert coin_ft.pt out/coin --set trainable='"all"'

The fairseq file is read without executing pickled code and loaded strictly (see
:mod:`nortonkit.checkpoint`); the output directory holds ``model.safetensors`` and
``config.json`` (resolved :class:`~nortonkit.encoders.EncoderConfig` plus the source file's
name, sha256, format and update count). Exit status 0 on success, 1 on a load or write error,
2 on bad arguments.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .checkpoint import checkpoint_hash, load_fairseq_checkpoint, save_checkpoint
from .encoders import EncoderConfig

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    """The command-line interface of ``python -m nortonkit.convert``.

    Examples
    --------
    >>> build_parser().parse_args(["in.pt", "out", "--set", "dropout=0.0"]).set
    ['dropout=0.0']
    """
    parser = argparse.ArgumentParser(
        prog="python -m nortonkit.convert",
        description="Convert a fairseq VideoCLIP/Norton checkpoint (.pt) into a nortonkit "
        "checkpoint directory (model.safetensors + config.json). Pickled code is never run.",
    )
    parser.add_argument("source", type=Path, help="fairseq checkpoint file (.pt)")
    parser.add_argument("output", type=Path, help="checkpoint directory to write")
    parser.add_argument(
        "--official",
        action="store_true",
        help="record the released training setting (fixed temperature, "
        "LayerNorm-only) instead of the paper's learnable temperature",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an EncoderConfig field; VALUE is JSON (e.g. "
        "num_heads=12, trainable='\"all\"', clip_logit_scale=null); repeatable",
    )
    parser.add_argument(
        "--non-strict",
        action="store_true",
        help="report missing/unexpected keys instead of failing",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing nortonkit checkpoint at OUTPUT"
    )
    return parser


def _overrides(items: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set: expected KEY=VALUE, got {item!r}")
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw  # bare words are strings: trainable=all
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the converter; return the exit status (0 ok, 1 load/write error, 2 bad arguments).

    Examples
    --------
    >>> main(["/nonexistent/ckpt.pt", "/tmp/out"])  # prints the reason on stderr
    1
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        overrides = _overrides(args.set)
    except ValueError as e:
        parser.error(str(e))

    try:
        if not args.source.is_file():
            raise FileNotFoundError(f"{args.source}: checkpoint file not found")
        if args.official:
            official = EncoderConfig.official()
            overrides = {
                "trainable": official.trainable,
                "seq_logit_scale_learnable": official.seq_logit_scale_learnable,
                "clip_logit_scale": official.clip_logit_scale,
                **overrides,
            }
        loaded = load_fairseq_checkpoint(args.source, strict=not args.non_strict, config=overrides)
        meta = loaded.metadata
        source = {
            "path": args.source.name,
            "sha256": checkpoint_hash(args.source),
            "format": meta.get("format"),
            "num_updates": meta.get("num_updates"),
            "ignored_keys": list(loaded.ignored_keys),
            "missing_keys": list(loaded.missing_keys),
            "unexpected_keys": list(loaded.unexpected_keys),
        }
        out = save_checkpoint(
            args.output,
            loaded.model,
            loaded.config,
            metadata={
                "converted_from": source,
                "fairseq_args": meta.get("args"),
                "fairseq_cfg": meta.get("cfg"),
            },
            overwrite=args.force,
        )
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    n = sum(p.numel() for p in loaded.model.parameters())
    digest = json.loads((out / "config.json").read_text())["weights_sha256"]
    print(f"wrote {out} ({n:,} parameters, weights sha256 {digest[:12]}...)")
    for label, keys in (
        ("ignored legacy keys", loaded.ignored_keys),
        ("missing keys", loaded.missing_keys),
        ("unexpected keys", loaded.unexpected_keys),
    ):
        if keys:
            print(f"{label} ({len(keys)}): {', '.join(keys)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
