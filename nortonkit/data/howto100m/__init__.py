"""HowTo100M pre-training data: feature and caption shards, the clip sampler and the batch stream.

Files (``docs/protocols.md`` §5.2-5.3, layout in :class:`nortonkit.data.layout.DataRoot`)::

    feat_shard/{split}_{s}_starts.npy     int64 offsets, length n_videos + 1
    feat_shard/{split}_{s}_data.npy       float16 (sum T, 512), videos concatenated
    feat_shard/{split}_meta.pkl           {shard_idx: [video_id, ...]} (plain dict pickle)
    caps_shard/<prefix>{split}_{s}.startends_{starts,data}.npy   float32 (sum n_caps, 2)
    caps_shard/<prefix>{split}_{s}.caps_ids_{starts,data}.npy    int32 (sum n_caps, 32), pad -1

Writers stream (at most one video in memory for features, one shard for captions) and are
atomic; readers memory-map. :func:`sample_video_clips` is the VideoCLIP/Norton sampler
(Norton App. B, "Data sampling", steps 1-3; ``docs/protocols.md`` §5.4) and
:class:`How2Dataset` yields whole batches of ``videos_per_batch`` videos (§5.5).

==================  ========================================================================
module              holds
==================  ========================================================================
``shard_files``     what both shard kinds share (:class:`ShardWriteResult`, offsets, checks)
                    and the video lists (:func:`read_video_list`)
``feature_shards``  :func:`write_feature_shards`, :func:`shard_feature_dir`,
                    :class:`ShardedFeatures`
``caption_shards``  :func:`write_caption_shards`, :class:`ShardedCaptions`
``sampling``        :func:`sample_video_clips` (:class:`VideoClips`), :func:`build_clip_batch`
                    (:class:`ClipBatch`)
``dataset``         :func:`plan_batches`, :class:`How2Dataset`
==================  ========================================================================
"""

from .caption_shards import ShardedCaptions, write_caption_shards
from .dataset import How2Dataset, plan_batches
from .feature_shards import ShardedFeatures, shard_feature_dir, write_feature_shards
from .sampling import ClipBatch, VideoClips, build_clip_batch, sample_video_clips
from .shard_files import ShardWriteResult, read_video_list

__all__ = [
    "ShardWriteResult",
    "write_feature_shards",
    "shard_feature_dir",
    "ShardedFeatures",
    "write_caption_shards",
    "ShardedCaptions",
    "read_video_list",
    "VideoClips",
    "sample_video_clips",
    "ClipBatch",
    "build_clip_batch",
    "plan_batches",
    "How2Dataset",
]
