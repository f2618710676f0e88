"""What determines a synthetic corpus: :class:`SyntheticConfig` and its :class:`NoiseConfig`.

:class:`NoiseConfig` holds one knob per kind of multi-granularity noisy correspondence named by
Norton (Sec. 1): asynchronous offsets, irrelevant sentences, unnarrated steps, filler words
inside sentences and background frames inside step clips, plus the visual noise and the script
deviations. The defaults follow HTM-Align (Han et al., 2022): about 30 % of the sentences are
visually alignable and about half of those (15 % of all) are naturally well aligned.

:class:`SyntheticConfig` adds the sizes of the world and of every dataset; a corpus is a function
of its config and :data:`GENERATOR_VERSION` only, and its manifest stores both.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..validation import check_choice, check_int_at_least

__all__ = ["GENERATOR_VERSION", "NoiseConfig", "SyntheticConfig", "describe_config"]

GENERATOR_VERSION = "1"  # bump whenever the same config would write different bytes


def _check_rate(name: str, value: float, *, closed: bool = False) -> None:
    hi_ok = value <= 1.0 if closed else value < 1.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        0.0 <= value and hi_ok
    ):
        want = "[0, 1]" if closed else "[0, 1)"
        raise ValueError(f"{name}: expected a number in {want}, got {value!r}")


def _check_nonneg(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
        math.isfinite(value) and value >= 0
    ):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class NoiseConfig:
    """Knobs of the multi-granularity noisy correspondence (Norton Sec. 1), with defaults.

    Coarse-grained (clip-caption) noise acts on the narration of the HowTo100M-like and
    HTM-Align-like videos; fine-grained noise acts on words and frames. Visual noise acts on
    every dataset's features.

    Examples
    --------
    >>> NoiseConfig().irrelevant_rate
    0.7
    >>> NoiseConfig(irrelevant_rate=1.0)
    Traceback (most recent call last):
    ...
    ValueError: irrelevant_rate: expected a number in [0, 1), got 1.0
    """

    # -- coarse grained: irrelevant misalignment --
    # fraction of all ASR sentences with no visual counterpart (chatter, or mentions of an
    # object that is not being acted on). 0.7 -> about 30 % of sentences alignable, the
    # HTM-Align finding (Han et al. 2022; Norton Sec. 1).
    irrelevant_rate: float = 0.7
    # fraction of irrelevant sentences that mention one of the task's objects (harder to
    # reject than plain chatter: "i got this onion at the store").
    irrelevant_mention_rate: float = 0.4
    # fraction of the video's steps that get no sentence at all (visual content without text).
    unnarrated_rate: float = 0.25
    # probability that a narrated step gets a second sentence describing it.
    extra_sentence_rate: float = 0.3
    # -- coarse grained: asynchronous misalignment --
    # fraction of alignable sentences spoken before or after their action (TAN: about half of
    # the alignable sentences, i.e. 15 % of all, are naturally well aligned).
    async_rate: float = 0.5
    # magnitude of an asynchronous offset, uniform in [async_min_s, async_max_s] seconds.
    async_min_s: float = 3.0
    async_max_s: float = 20.0
    # probability that an asynchronous sentence comes *before* the action ("explain, then do").
    async_lead_prob: float = 0.6
    # -- fine grained: word level --
    # mean number of filler words ("um", "you know", ...) inserted per sentence (Poisson).
    filler_words_mean: float = 2.0
    # probability of a trailing context phrase with no visual counterpart ("in a bowl").
    context_rate: float = 0.4
    # -- fine grained: frame level --
    # fraction of the seconds inside step segments replaced by background (cutaway) frames.
    cutaway_rate: float = 0.1
    # -- visual (every dataset) --
    # norm of the per-second isotropic noise relative to the unit prototype. With the defaults
    # a second's cosine to its own step prototype is about 0.3 and to the next second about
    # 0.8, the order of magnitude of S3D features of one shot.
    frame_noise: float = 3.0
    # AR(1) coefficient of that noise over seconds (0: independent seconds).
    temporal_smoothness: float = 0.8
    # weight of a per-video style vector (camera, lighting) added to every second.
    style_weight: float = 0.5
    # weight of the video's scene clutter (its task's objects, visible all the time) added to
    # every second, steps and background alike.
    clutter_weight: float = 0.5
    # -- script deviations (every dataset) --
    # probability that a step of the task script is skipped in a given video.
    step_skip_rate: float = 0.15
    # probability that a step is done on another object of the domain in a given video
    # (ingredient substitution: "chop the shallot" for "chop the onion").
    step_variant_rate: float = 0.2

    def __post_init__(self) -> None:
        _check_rate("irrelevant_rate", self.irrelevant_rate)
        for name in ("irrelevant_mention_rate", "unnarrated_rate", "extra_sentence_rate",
                     "async_rate", "async_lead_prob", "context_rate", "cutaway_rate"):
            _check_rate(name, getattr(self, name), closed=True)
        _check_rate("temporal_smoothness", self.temporal_smoothness)
        _check_rate("step_skip_rate", self.step_skip_rate)
        _check_rate("step_variant_rate", self.step_variant_rate, closed=True)
        for name in ("async_min_s", "async_max_s", "filler_words_mean", "frame_noise",
                     "style_weight", "clutter_weight"):
            _check_nonneg(name, getattr(self, name))
        if self.async_max_s < self.async_min_s:
            raise ValueError(
                f"async_max_s: expected >= async_min_s = {self.async_min_s}, "
                f"got {self.async_max_s}"
            )


@dataclass(frozen=True)
class SyntheticConfig:
    """Everything that determines a synthetic corpus (the manifest stores it).

    Use :meth:`preset` for the named sizes. Two configs that compare equal generate identical
    bytes.

    Examples
    --------
    >>> cfg = SyntheticConfig.preset("smoke", seed=3)
    >>> cfg.seed, cfg.how2_train, cfg.dim
    (3, 48, 512)
    >>> SyntheticConfig(how2_train=0)
    Traceback (most recent call last):
    ...
    ValueError: how2_train: expected an integer >= 1, got 0
    """

    seed: int = 0  # master seed: the whole corpus is a function of it
    dim: int = 512  # feature dimension (S3D: 512)
    n_tasks: int = 120  # instructional tasks in the world (HowTo100M: 23k, COIN: 180)
    min_steps: int = 5  # steps per task script, inclusive range
    max_steps: int = 10
    # prototype weights: action, object, step-specific and domain parts
    action_weight: float = 1.0
    object_weight: float = 1.0
    step_weight: float = 0.6
    domain_weight: float = 0.5
    # HowTo100M-like pre-training set
    how2_train: int = 800  # videos in how2_s3d_train.lst
    how2_val: int = 64  # videos in how2_s3d_val.lst
    how2_shard_size: int = 256  # videos per feature/caption shard (official: 4096)
    how2_min_duration_s: int = 60  # video length range in seconds
    how2_max_duration_s: int = 240
    # YouCookII-like evaluation set
    youcook_val: int = 120  # validation videos with features (real: 436)
    youcook_train: int = 120  # training-subset annotations without features, as released
    youcook_recipes: int = 24  # cooking tasks used (real: 89 recipes, ~5 val videos each)
    youcook_min_duration_s: int = 60
    youcook_max_duration_s: int = 240
    # MSR-VTT-like retrieval and multiple-choice QA
    msrvtt_test: int = 200  # JSFUSION test videos, one sentence each (real: 1000)
    msrvtt_train: int = 400  # training videos (train.9k = all, train.7k = first 7010/9000)
    msrvtt_captions: int = 20  # captions per video in MSRVTT_data.json (real: 20)
    # COIN-like action segmentation
    coin_videos: int = 150
    coin_tasks: int = 30  # tasks used; every step class appears in the testing subset
    coin_test_fraction: float = 0.3
    # HTM-Align-like alignment set
    htm_align_videos: int = 20  # real: 80
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed: expected an integer >= 0, got {self.seed!r}")
        check_int_at_least("dim", self.dim, 8)
        for name in ("n_tasks", "how2_train", "how2_val", "how2_shard_size", "youcook_val",
                     "youcook_recipes", "msrvtt_test", "msrvtt_train", "msrvtt_captions",
                     "coin_tasks", "htm_align_videos"):
            check_int_at_least(name, getattr(self, name), 1)
        check_int_at_least("youcook_train", self.youcook_train, 0)
        check_int_at_least("min_steps", self.min_steps, 2)
        check_int_at_least("max_steps", self.max_steps, self.min_steps)
        check_int_at_least("msrvtt_test", self.msrvtt_test, 5)  # 4 distractors per question
        for prefix in ("how2", "youcook"):
            lo = check_int_at_least(f"{prefix}_min_duration_s",
                                    getattr(self, f"{prefix}_min_duration_s"), 20)
            check_int_at_least(f"{prefix}_max_duration_s",
                               getattr(self, f"{prefix}_max_duration_s"), lo)
        for name in ("action_weight", "object_weight", "step_weight", "domain_weight"):
            _check_nonneg(name, getattr(self, name))
        if not 0.0 < self.coin_test_fraction < 1.0:
            raise ValueError(
                f"coin_test_fraction: expected a number in (0, 1), got {self.coin_test_fraction!r}"
            )
        n_test = _coin_n_test(self)
        if n_test < self.coin_tasks:
            raise ValueError(
                f"coin_videos: expected round(coin_videos * coin_test_fraction) >= coin_tasks = "
                f"{self.coin_tasks} (every step class must appear in the testing subset), got "
                f"{n_test} testing videos"
            )
        if self.coin_tasks > self.n_tasks or self.youcook_recipes > self.n_tasks:
            raise ValueError(
                f"n_tasks: expected >= coin_tasks and youcook_recipes "
                f"({self.coin_tasks}, {self.youcook_recipes}), got {self.n_tasks}"
            )
        if not isinstance(self.noise, NoiseConfig):
            raise ValueError(f"noise: expected a NoiseConfig, got {type(self.noise).__name__}")

    @classmethod
    def preset(cls, size: str = "default", seed: int = 0, scale: int | None = None,
               **overrides: Any) -> SyntheticConfig:
        """A named size: ``"default"`` (~15 s to generate) or ``"smoke"`` (~2 s).

        ``scale`` sets the number of HowTo100M-like training videos (streamed to disk; shards
        of 4096 videos from 16384 videos on, as released). Other fields via ``overrides``.

        >>> SyntheticConfig.preset("default", scale=20000).how2_shard_size
        4096
        """
        check_choice("size", size, ("default", "smoke"))
        kw: dict[str, Any] = {}
        if size == "smoke":
            kw = dict(
                n_tasks=24, how2_train=48, how2_val=16, how2_shard_size=16,
                how2_min_duration_s=40, how2_max_duration_s=90, youcook_val=16,
                youcook_train=8, youcook_recipes=4, youcook_min_duration_s=40,
                youcook_max_duration_s=90, msrvtt_test=16, msrvtt_train=24, msrvtt_captions=5,
                coin_videos=20, coin_tasks=4, htm_align_videos=4,
            )
        if scale is not None:
            check_int_at_least("scale", scale, 1)
            kw["how2_train"] = scale
            if scale >= 16384:
                kw["how2_shard_size"] = 4096
        kw.update(overrides)
        return cls(seed=seed, **kw)


def _coin_n_test(cfg: SyntheticConfig) -> int:
    return int(round(cfg.coin_videos * cfg.coin_test_fraction))


def _config_record(cfg: SyntheticConfig) -> dict[str, Any]:
    return json.loads(json.dumps(dataclasses.asdict(cfg)))


def describe_config(record: Mapping[str, Any]) -> str:
    """A short description of a corpus config record (``manifest["config"]``).

    Configs made by :meth:`SyntheticConfig.preset` are named by the options of
    ``data_recipes/synthetic.py`` (``size``, ``scale``, ``shard-size``, ``seed``); others are
    described by their seed and number of HowTo100M-like training videos.

    Examples
    --------
    >>> describe_config(_config_record(SyntheticConfig.preset("smoke", scale=40)))
    'size=smoke scale=40 seed=0'
    >>> describe_config(_config_record(SyntheticConfig.preset("default", seed=3)))
    'size=default seed=3'
    """
    seed, n, shard = record.get("seed"), record.get("how2_train"), record.get("how2_shard_size")
    for size in ("default", "smoke"):
        for scale in (None, n):
            for over in ({}, {"how2_shard_size": shard}):
                try:
                    cand = SyntheticConfig.preset(size, seed=seed, scale=scale, **over)
                except (TypeError, ValueError):
                    continue
                if _config_record(cand) == dict(record):
                    text = f"size={size}"
                    text += f" scale={n}" if scale is not None else ""
                    text += f" shard-size={shard}" if over else ""
                    return f"{text} seed={seed}"
    return f"a custom config (seed={seed}, how2_train={n})"
