"""Where each dataset's files live under a data root, in the released layout.

The synthetic corpus is written in exactly this layout, and the readers read real data from it
too, so one ``data_root`` argument selects the embedded corpus or a user's real copy. Every path
can be overridden individually by the readers' keyword arguments.

::

    <root>/how2/how2_s3d_{train,val}.lst
        video id lists, one per line
    <root>/how2/sentencified_htm_1200k.json
        {vid: {start: [..], end: [..], text: [..]}}
    <root>/how2/feat_shard/{split}_{s}_{starts,data}.npy
        ShardedTensor: int64 offsets, (sum T, 512) fp16
    <root>/how2/feat_shard/{split}_meta.pkl
        {shard_idx: [video_id, ...]}
    <root>/how2/caps_shard/<CAPTION_PREFIX>{split}_{s}.{startends,caps_ids}_{starts,data}.npy
        float32 (n, 2) [start, end] seconds; int32 (n, 32) token ids padded with -1
    <root>/youcook/youcookii_annotations_trainval.json
        {"database": {vid: {"annotations": [...], "subset": ...}}}
    <root>/youcook/youcook_val.pkl
        list of {"id": "<vid>_<clip>", "caption": str, ...}
    <root>/youcook/youcook_validation_feature_fps30_512/<vid>.npy
    <root>/msrvtt/MSRVTT_JSFUSION_test.csv
        key,vid_key,video_id,sentence
    <root>/msrvtt/MSRVTT_train.{9k,7k}.csv
        column video_id
    <root>/msrvtt/MSRVTT_data.json
        {"videos": [...], "sentences": [{video_id, caption}]}
    <root>/msrvtt/MSR_MC_test.csv
        tab-separated: vid_key, a1..a5, answer
    <root>/msrvtt/msrvtt_feature_fps30_512/<video_id>.npy
    <root>/coin/COIN.json
        {"database": {vid: {subset, annotation: [...]}}}
    <root>/coin/coin_feature_fps30_512/<vid>.npy
    <root>/how2-align/htm_align.json
        {vid: [[alignable, start, end, text], ...]}
    <root>/how2-align/<vid>.npy
    <root>/ground_truth/
        synthetic corpus only: true alignments
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

__all__ = ["DataRoot", "CAPTION_PREFIX"]

CAPTION_PREFIX = "sentencified_htm_1200k.bert-base-uncased."


@dataclass(frozen=True)
class DataRoot:
    """Paths of every dataset file under one data root (see the module docstring).

    >>> DataRoot("/data").youcook_features
    PosixPath('/data/youcook/youcook_validation_feature_fps30_512')
    """

    root: Path

    def __init__(self, root: str | Path):
        object.__setattr__(self, "root", Path(root))

    # HowTo100M
    def how2_list(self, split: str) -> Path:
        return self.root / "how2" / f"how2_s3d_{split}.lst"

    @property
    def how2_captions_json(self) -> Path:
        return self.root / "how2" / "sentencified_htm_1200k.json"

    @property
    def how2_feature_shards(self) -> Path:
        return self.root / "how2" / "feat_shard"

    @property
    def how2_caption_shards(self) -> Path:
        return self.root / "how2" / "caps_shard"

    # YouCookII
    @property
    def youcook_annotations(self) -> Path:
        return self.root / "youcook" / "youcookii_annotations_trainval.json"

    @property
    def youcook_val_pkl(self) -> Path:
        return self.root / "youcook" / "youcook_val.pkl"

    @property
    def youcook_features(self) -> Path:
        return self.root / "youcook" / "youcook_validation_feature_fps30_512"

    # MSR-VTT
    @property
    def msrvtt_test_csv(self) -> Path:
        return self.root / "msrvtt" / "MSRVTT_JSFUSION_test.csv"

    def msrvtt_train_csv(self, size: str = "9k") -> Path:
        return self.root / "msrvtt" / f"MSRVTT_train.{size}.csv"

    @property
    def msrvtt_data_json(self) -> Path:
        return self.root / "msrvtt" / "MSRVTT_data.json"

    @property
    def msrvtt_qa_csv(self) -> Path:
        return self.root / "msrvtt" / "MSR_MC_test.csv"

    @property
    def msrvtt_features(self) -> Path:
        return self.root / "msrvtt" / "msrvtt_feature_fps30_512"

    # COIN
    @property
    def coin_json(self) -> Path:
        return self.root / "coin" / "COIN.json"

    @property
    def coin_features(self) -> Path:
        return self.root / "coin" / "coin_feature_fps30_512"

    # HTM-Align
    @property
    def htm_align_json(self) -> Path:
        return self.root / "how2-align" / "htm_align.json"

    @property
    def htm_align_features(self) -> Path:
        return self.root / "how2-align"

    # synthetic corpus only
    @property
    def ground_truth(self) -> Path:
        return self.root / "ground_truth"
