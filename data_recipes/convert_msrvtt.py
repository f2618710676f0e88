"""Check released MSR-VTT files and place them in nortonkit's data-root layout.

Inputs (any subset may be given): the JSFUSION 1k-A test csv (``key,vid_key,video_id,
sentence``), the 9k and 7k training lists (``video_id``), ``MSRVTT_data.json`` (``sentences``
with ``video_id``/``caption``), the multiple-choice test ``MSR_MC_test.csv`` (tab-separated:
``vid_key``, ``a1..a5``, ``answer``) and a folder of per-video S3D features
``<video_id>.npy``. Each table is parsed and checked, each needed feature file validated, and
everything copied (or linked) to ``msrvtt/``. Re-runs skip files already in place.

Example::

    python data_recipes/convert_msrvtt.py --root data --features /raw/msrvtt_s3d \\
        --test-csv /raw/MSRVTT_JSFUSION_test.csv --train-9k /raw/MSRVTT_train.9k.csv \\
        --train-7k /raw/MSRVTT_train.7k.csv --data-json /raw/MSRVTT_data.json \\
        --qa-csv /raw/MSR_MC_test.csv
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
    read_table,
)
from nortonkit.data.layout import DataRoot
from nortonkit.data.msrvtt import (
    MSRVTTTrainDataset,
    load_msrvtt_qa,
    load_msrvtt_test,
    read_msrvtt_captions,
)


def build_parser() -> argparse.ArgumentParser:
    return converter_parser("convert_msrvtt.py", __doc__, "msrvtt", [
        ("--test-csv", "MSRVTT_JSFUSION_test.csv", False),
        ("--train-9k", "MSRVTT_train.9k.csv", False),
        ("--train-7k", "MSRVTT_train.7k.csv", False),
        ("--data-json", "MSRVTT_data.json (captions of the training videos)", False),
        ("--qa-csv", "MSR_MC_test.csv (tab-separated multiple choice)", False),
    ])


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    root = DataRoot(args.root)
    if (args.train_9k or args.train_7k) and not args.data_json:
        raise SystemExit("--train-9k/--train-7k need --data-json (the training captions)")
    vids: list[str] = []
    if args.test_csv:
        vids += [r["video_id"].strip() for r in read_table(args.test_csv, ["video_id", "sentence"])]
        install_file(args.test_csv, root.msrvtt_test_csv)
    if args.data_json:
        read_msrvtt_captions(args.data_json)
        install_file(args.data_json, root.msrvtt_data_json)
    for size, path in (("9k", args.train_9k), ("7k", args.train_7k)):
        if path:
            vids += [r["video_id"].strip() for r in read_table(path, ["video_id"])]
            install_file(path, root.msrvtt_train_csv(size))
    if args.qa_csv:
        rows = read_table(args.qa_csv, ["vid_key", "a1", "a2", "answer"], sep="\t")
        vids += [r["vid_key"].strip().replace("msr", "video", 1) for r in rows]
        install_file(args.qa_csv, root.msrvtt_qa_csv)
    if not vids:
        raise SystemExit("nothing to convert: give at least one of --test-csv, --train-9k, "
                         "--train-7k, --qa-csv")
    vids = list(dict.fromkeys(vids))
    missing = install_converter_features(args, root.msrvtt_features, vids, "msrvtt")
    if len(missing):
        print(f"warning: {missing.summary()} (the readers raise on these unless "
              "on_missing='skip')")
    on_missing = "skip" if len(missing) else "raise"
    report = [f"{len(vids)} videos"]
    if args.test_csv:
        t = load_msrvtt_test(root, expected_dim=args.dim, on_missing=on_missing)
        report.append(f"test: {len(t.captions)} pairs (paper: 1,000)")
    for size, path in (("9k", args.train_9k), ("7k", args.train_7k)):
        if path:
            ds = MSRVTTTrainDataset(root, size=size, dup=1, expected_dim=args.dim,
                                    on_missing=on_missing)
            report.append(f"train {size}: {len(ds.video_ids)} videos")
    if args.qa_csv:
        q = load_msrvtt_qa(root, expected_dim=args.dim, on_missing=on_missing)
        report.append(f"QA: {len(q.answers)} questions x {len(q.candidates[0])} candidates")
    print(f"{root.msrvtt_features.parent}: " + "; ".join(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
