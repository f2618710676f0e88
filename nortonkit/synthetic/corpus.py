"""A synthetic noisy instructional-video corpus, written in the released file formats.

The corpus stands in for HowTo100M (pre-training), YouCookII, MSR-VTT (retrieval and
multiple-choice QA), COIN and HTM-Align when the real data is absent (CI, notebooks, tests,
scaling runs). Every file is written in exactly the layout of :mod:`nortonkit.data.layout`, so the
readers cannot tell it from a real copy, and the true alignments are saved next to it under
``DataRoot.ground_truth``.

World model
-----------
An instructional *task* ("make spicy pancakes") is an ordered script of *steps*; a step is an
(action, object) pair of real English words ("whisk the eggs"), so captions go through the real
bert-base-uncased WordPiece tokenizer. Each step has a visual prototype with structure shared
between steps with the same action, object or domain::

    p_s = normalise(w_a * a[action] + w_o * o[object] + w_s * u[s] + w_d * d[domain])

A video is one 512-d L2-normalised float16 feature per second (like S3D): the seconds of a step
are ``normalise(p_s + gamma * c_video + kappa * clutter_video + sigma * eps_t)`` with a video
style ``c_video``, the video's scene clutter (its objects, visible throughout) and AR(1) noise
``eps_t``; background segments (intros, talking heads, b-roll) lie between the steps, and a
video may skip steps of its task's script or do a step on another object.

Noisy correspondence
--------------------
The narration is generated with every kind of multi-granularity noisy correspondence named by
Norton (Sec. 1), each an explicit :class:`NoiseConfig` knob: asynchronous offsets, irrelevant
sentences, unnarrated steps, filler words inside sentences and background frames inside step
clips. The defaults follow HTM-Align (Han et al., 2022): about 30 % of the sentences are
visually alignable and about half of those (15 % of all) are naturally well aligned.

Determinism and streaming
-------------------------
Everything is a function of the seed. Each video draws from its own
``SeedSequence([seed, dataset, split, index])``, so videos are generated one at a time, in any
order, and written shard by shard: memory does not grow with the number of videos.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..data.layout import DataRoot
from ..io import atomic_save_npy, atomic_write
from ..validation import check_choice, check_int_at_least

__all__ = [
    "CorpusMismatchError",
    "GENERATOR_VERSION",
    "MANIFEST_NAME",
    "NoiseConfig",
    "SyntheticConfig",
    "SyntheticExample",
    "World",
    "build_world",
    "generate_corpus",
    "ensure_corpus",
    "describe_config",
    "load_manifest",
    "load_ground_truth",
    "synthetic_example",
]

GENERATOR_VERSION = "1"  # bump whenever the same config would write different bytes
MANIFEST_NAME = "manifest.json"
_PARTIAL_NAME = ".synthetic_partial.json"
_NEW_NAME = ".synthetic_new"  # a corpus being generated, renamed into place once complete
_OLD_NAME = ".synthetic_old"  # the replaced corpus, deleted once the new one is in place


def _save_npy(path: Path, array: np.ndarray) -> None:
    """Bulk feature write; the manifest written last marks the corpus complete."""
    atomic_save_npy(path, array, fsync=False)


_DATASET_DIRS = ("how2", "youcook", "msrvtt", "coin", "how2-align", "ground_truth")

# --------------------------------------------------------------------------------------------
# Vocabulary: real English words. Actions are (base, gerund, third person) triples.
# Action forms, object words, fillers, contexts and chatter are disjoint (tested), so every
# caption can be parsed back into its (action, object) pair by the oracle text embedding.
# --------------------------------------------------------------------------------------------


def _verbs(spec: str) -> tuple[tuple[str, str, str], ...]:
    return tuple(tuple(v.split("/")) for v in spec.split())  # type: ignore[misc]


_DOMAINS: dict[str, dict[str, Any]] = {
    "cooking": dict(
        share=0.5,
        actions=_verbs(
            "chop/chopping/chops slice/slicing/slices dice/dicing/dices mince/mincing/minces "
            "whisk/whisking/whisks stir/stirring/stirs pour/pouring/pours add/adding/adds "
            "mix/mixing/mixes fold/folding/folds knead/kneading/kneads bake/baking/bakes "
            "fry/frying/fries boil/boiling/boils simmer/simmering/simmers grate/grating/grates "
            "peel/peeling/peels season/seasoning/seasons sprinkle/sprinkling/sprinkles "
            "spread/spreading/spreads mash/mashing/mashes blend/blending/blends "
            "drain/draining/drains rinse/rinsing/rinses flip/flipping/flips heat/heating/heats "
            "melt/melting/melts crack/cracking/cracks marinate/marinating/marinates "
            "garnish/garnishing/garnishes toss/tossing/tosses squeeze/squeezing/squeezes "
            "coat/coating/coats grill/grilling/grills roast/roasting/roasts cut/cutting/cuts "
            "roll/rolling/rolls"
        ),
        objects=(
            "onion garlic eggs butter flour dough sugar milk tomato pepper chicken rice pasta "
            "cheese carrot potato sauce oil salt bread lettuce lemon batter cream water beef "
            "shrimp mushrooms spinach noodles broth ginger cucumber avocado bacon honey vinegar "
            "yogurt chocolate apple"
        ).split(),
        contexts=(
            "in a bowl", "in the pan", "with a knife", "until golden", "for five minutes",
            "into small pieces", "on a wooden board", "in the pot", "with a spoon",
            "until smooth", "over the top", "in the oven", "on the stove", "a little bit",
        ),
        task_verbs=("make", "cook", "prepare"),
        task_mods=("easy", "spicy", "classic", "homemade", "quick", "healthy", "vegan", "simple"),
        task_things=(
            "pancakes", "omelette", "fried rice", "tomato soup", "banana bread", "lasagna",
            "pad thai", "guacamole", "apple pie", "chocolate cake", "caesar salad", "beef stew",
            "garlic shrimp", "chicken curry", "french toast", "pizza", "burritos", "ramen",
            "meatballs", "brownies", "cookies", "lemonade", "hummus", "risotto", "tacos",
            "dumplings", "chili", "muffins", "noodle soup", "potato salad",
        ),
    ),
    "diy": dict(
        share=0.2,
        actions=_verbs(
            "drill/drilling/drills screw/screwing/screws sand/sanding/sands "
            "paint/painting/paints glue/gluing/glues measure/measuring/measures "
            "mark/marking/marks saw/sawing/saws hammer/hammering/hammers "
            "attach/attaching/attaches remove/removing/removes tighten/tightening/tightens "
            "loosen/loosening/loosens clean/cleaning/cleans wipe/wiping/wipes "
            "install/installing/installs level/leveling/levels seal/sealing/seals "
            "clamp/clamping/clamps unscrew/unscrewing/unscrews polish/polishing/polishes "
            "replace/replacing/replaces"
        ),
        objects=(
            "shelf tire pipe wood nail hinge bolt frame tile drawer door faucet cable bracket "
            "panel plank handle wall fence chain"
        ).split(),
        contexts=(
            "on both sides", "with a screwdriver", "along the edge", "very carefully",
            "from the top", "into place", "at the corner", "with some pliers", "until it is tight",
            "a few times",
        ),
        task_verbs=("fix", "build", "repair", "assemble", "mount"),
        task_mods=("old", "simple", "small", "new", "wooden", "broken"),
        task_things=(
            "leaky faucet", "bookshelf", "ceiling fan", "bike chain", "garden fence",
            "kitchen cabinet", "picture frame", "bench", "coffee table", "tool box", "closet door",
            "flat tire", "window blind", "desk",
        ),
    ),
    "crafts": dict(
        share=0.15,
        actions=_verbs(
            "sew/sewing/sews stitch/stitching/stitches knit/knitting/knits "
            "thread/threading/threads tie/tying/ties wrap/wrapping/wraps draw/drawing/draws "
            "trace/tracing/traces pin/pinning/pins iron/ironing/irons braid/braiding/braids "
            "fold/folding/folds cut/cutting/cuts glue/gluing/glues paint/painting/paints"
        ),
        objects=(
            "paper fabric button ribbon yarn needle card bead string felt pattern sleeve hem "
            "collar envelope"
        ).split(),
        contexts=(
            "in half", "along the line", "on the table", "at the top", "around the edge",
            "with scissors", "nice and neat", "like so",
        ),
        task_verbs=("make", "create", "design"),
        task_mods=("cute", "simple", "colorful", "tiny", "festive"),
        task_things=(
            "greeting card", "friendship bracelet", "tote bag", "pillow cover", "scarf",
            "paper lantern", "origami crane", "quilt", "bookmark", "wall hanging", "gift box",
            "ornament",
        ),
    ),
    "garden": dict(
        share=0.15,
        actions=_verbs(
            "plant/planting/plants dig/digging/digs prune/pruning/prunes trim/trimming/trims "
            "rake/raking/rakes spray/spraying/sprays scrub/scrubbing/scrubs mow/mowing/mows "
            "repot/repotting/repots fertilize/fertilizing/fertilizes mulch/mulching/mulches "
            "sweep/sweeping/sweeps vacuum/vacuuming/vacuums dust/dusting/dusts mop/mopping/mops "
            "rinse/rinsing/rinses wipe/wiping/wipes clean/cleaning/cleans"
        ),
        objects=(
            "soil seeds roots leaves hedge lawn sink floor window carpet shower roses seedlings "
            "bushes gutter grass bathtub counter stairs"
        ).split(),
        contexts=(
            "in the backyard", "around the base", "every few days", "in the morning",
            "with a hose", "from left to right", "all the way", "really well",
        ),
        task_verbs=("grow", "start", "refresh", "deep clean", "care for"),
        task_mods=("small", "new", "messy", "shady", "sunny"),
        task_things=(
            "vegetable garden", "rose bush", "herb garden", "bathroom", "kitchen", "compost bin",
            "raised bed", "succulents", "patio", "balcony garden",
        ),
    ),
}

_FILLERS = (
    "um", "uh", "so", "like", "you know", "basically", "really", "just", "okay", "alright",
    "actually", "kind of", "pretty much", "very", "well", "right", "now", "here", "guys",
)
_STEP_TEMPLATES = (
    "now we {a} the {o}", "you want to {a} the {o}", "go ahead and {a} the {o}",
    "i'm going to {a} the {o}", "next {a} the {o}", "then you {a} the {o}", "just {a} the {o}",
    "we're gonna {a} the {o}", "let's {a} the {o}", "you need to {a} the {o}",
    "i like to {a} the {o}", "what you do is {a} the {o}", "{a} the {o}",
    "make sure you {a} the {o}",
)
_CHATTER = (
    "hi everyone welcome back to my channel", "don't forget to subscribe",
    "thanks so much for watching", "this is my grandmother's favorite",
    "i hope you guys enjoy this video", "it's a tense moment", "let me know in the comments below",
    "my kids absolutely love this", "that's it for today", "i'll see you next time",
    "this is so easy", "it smells amazing in here", "today is a beautiful day",
    "my camera is a little shaky", "please like this video", "i learned this from my dad",
    "we'll talk about that later", "sorry about the noise", "this is the fun part",
    "okay so where was i", "i've been doing this for years", "my phone is ringing",
    "check out my other videos", "it's been a long week", "that looks really good",
    "let's take a quick break", "you can find the link below", "i know it's a lot",
    "bear with me here", "as you can see it's pretty simple",
)
_MENTION_TEMPLATES = (
    "i got this {o} at the store", "the {o} is really important here",
    "you can use any kind of {o}", "i love {o}", "this {o} was on sale",
    "my {o} is a little old", "some people don't like {o}", "make sure your {o} is fresh",
)
_TASK_MENTION = ("today i'm going to show you how to {t}", "this is how i {t}")
_MSRVTT_TEMPLATES = (
    "a person is {g} the {o}", "someone {t} the {o}", "a man {t} some {o}",
    "a woman is {g} {o}", "a video of someone {g} the {o}", "a person {t} the {o} on camera",
    "a guy is {g} some {o}", "a lady {t} the {o}", "someone is {g} the {o} in a video",
    "a clip of a person {g} {o}", "a tutorial on {g} the {o}", "hands {g} the {o}",
)
# stop words stripped from youcook_val.pkl captions (the released pickle stores them so)
_STOPWORDS = frozenset(
    "the a an in on into with of to until for and over it is some at from by".split()
)
_BACKGROUND_KINDS = ("intro", "talking", "broll", "outro")


# --------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# The world: vocabulary, tasks, step classes and their visual prototypes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Task:
    """An instructional task: a name, a domain and an ordered script of step-class ids."""

    name: str
    domain: str
    steps: tuple[int, ...]


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.maximum(n, 1e-12)


def _unit_vectors(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    return _normalise(rng.standard_normal((n, dim))).astype(np.float32)


@dataclass(frozen=True, eq=False)
class World:
    """Vocabulary, tasks, step classes and visual prototypes shared by every dataset.

    Attributes
    ----------
    actions, objects : tuple of str
        Base-form action verbs and object nouns.
    tasks : tuple of Task
    steps : tuple of (int, int)
        Step classes as (action index, object index), in order of first use; the step id is
        the position.
    step_domain : tuple of int
        Domain index of each step class.
    action_vecs, object_vecs, domain_vecs, background_vecs : numpy.ndarray
        Unit vectors, shapes (A, D), (O, D), (n_domains, D) and (n_background_kinds, D).
    prototypes : numpy.ndarray, shape (S, D)
        float32 unit step prototypes.
    """

    seed: int
    dim: int
    domains: tuple[str, ...]
    actions: tuple[str, ...]
    action_forms: tuple[tuple[str, str, str], ...]
    objects: tuple[str, ...]
    tasks: tuple[Task, ...]
    steps: tuple[tuple[int, int], ...]
    step_domain: tuple[int, ...]
    action_vecs: np.ndarray
    object_vecs: np.ndarray
    domain_vecs: np.ndarray
    background_vecs: np.ndarray
    prototypes: np.ndarray
    weights: tuple[float, float, float, float]

    def step_text(self, step: int) -> str:
        """``"<action> the <object>"`` for a step class id."""
        a, o = self.steps[step]
        return f"{self.actions[a]} the {self.objects[o]}"

    def embed_text(self, text: str) -> np.ndarray:
        """Oracle text embedding (a perfect bag-of-words encoder of this world), shape (D,).

        The first action word (any form) and the first object word are looked up: a known
        step gives its exact prototype, an unknown pair ``normalise(w_a a + w_o o)``, a lone
        object or action its unit vector, and a sentence without either the zero vector.
        """
        words = text.lower().replace(",", " ").split()
        a_idx = next((_ACTION_LOOKUP[w] for w in words if w in _ACTION_LOOKUP), None)
        o_idx = next((_OBJECT_LOOKUP[w] for w in words if w in _OBJECT_LOOKUP), None)
        a = None if a_idx is None else self.actions.index(a_idx)
        o = None if o_idx is None else self.objects.index(o_idx)
        if a is not None and o is not None:
            step = self._step_index.get((a, o))
            if step is not None:
                return self.prototypes[step].copy()
            wa, wo = self.weights[0], self.weights[1]
            v = wa * self.action_vecs[a] + wo * self.object_vecs[o]
            return _normalise(v).astype(np.float32)
        if o is not None:
            return self.object_vecs[o].copy()
        if a is not None:
            return self.action_vecs[a].copy()
        return np.zeros(self.dim, np.float32)

    @property
    def _step_index(self) -> dict[tuple[int, int], int]:
        cache = self.__dict__.get("_step_index_cache")
        if cache is None:
            cache = {s: i for i, s in enumerate(self.steps)}
            object.__setattr__(self, "_step_index_cache", cache)
        return cache

    def variants(self, step: int) -> list[int]:
        """Step classes of the same domain with the same action on another object."""
        cache = self.__dict__.get("_variant_cache")
        if cache is None:
            cache = {}
            for k, (a, _) in enumerate(self.steps):
                cache.setdefault((a, self.step_domain[k]), []).append(k)
            object.__setattr__(self, "_variant_cache", cache)
        a = self.steps[step][0]
        return [k for k in cache[(a, self.step_domain[step])] if k != step]

    def background_vector(self, kind: int, domain: int) -> np.ndarray:
        """Background prototype of a kind (intro, talking, b-roll, outro) in a domain, (D,)."""
        wd = self.weights[3]
        return _normalise(self.background_vecs[kind] + wd * self.domain_vecs[domain])


# lookups from every written form to the base word (forms are shared across domains)
_ACTION_LOOKUP: dict[str, str] = {}
_OBJECT_LOOKUP: dict[str, str] = {}
for _spec in _DOMAINS.values():
    for _forms in _spec["actions"]:
        for _f in _forms:
            _ACTION_LOOKUP[_f] = _forms[0]
    for _o in _spec["objects"]:
        _OBJECT_LOOKUP[_o] = _o


def _seq(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *keys]))


# stream tags for SeedSequence keys
_TAG_WORLD, _TAG_HOW2, _TAG_YOUCOOK, _TAG_MSRVTT, _TAG_COIN, _TAG_ALIGN, _TAG_EXAMPLE = range(7)


def _task_names(rng: np.random.Generator, spec: dict[str, Any]) -> list[str]:
    names = []
    for v in spec["task_verbs"]:
        for m in spec["task_mods"]:
            for t in spec["task_things"]:
                names.append(f"{v} {m} {t}")
    order = rng.permutation(len(names))
    return [names[i] for i in order]


def build_world(config: SyntheticConfig | None = None) -> World:
    """Build the vocabulary, tasks, step classes and prototypes for a config.

    Parameters
    ----------
    config : SyntheticConfig, optional
        Uses ``seed``, ``dim``, ``n_tasks``, ``min_steps``, ``max_steps`` and the prototype
        weights. Default: ``SyntheticConfig()``.

    Returns
    -------
    World
        ``prototypes`` has shape (S, D) with S the number of distinct step classes.

    Notes
    -----
    Step prototype (unit norm), sharing structure between steps with the same action, object or
    domain so that the step classes are not trivially separable:

    .. math:: p_s = \\frac{w_a a_{act(s)} + w_o o_{obj(s)} + w_s u_s + w_d d_{dom(s)}}
              {\\lVert w_a a_{act(s)} + w_o o_{obj(s)} + w_s u_s + w_d d_{dom(s)} \\rVert}

    Examples
    --------
    >>> w = build_world(SyntheticConfig.preset("smoke"))
    >>> w.prototypes.shape[1], len(w.tasks)
    (512, 24)
    >>> w.step_text(w.tasks[0].steps[0]) in " ".join(w.step_text(s) for s in w.tasks[0].steps)
    True
    """
    cfg = config or SyntheticConfig()
    rng = _seq(cfg.seed, _TAG_WORLD)
    domains = tuple(_DOMAINS)
    actions: list[str] = []
    forms: list[tuple[str, str, str]] = []
    objects: list[str] = []
    for spec in _DOMAINS.values():
        for f in spec["actions"]:
            if f[0] not in actions:
                actions.append(f[0])
                forms.append(f)
        for o in spec["objects"]:
            if o not in objects:
                objects.append(o)
    dim = cfg.dim
    action_vecs = _unit_vectors(rng, len(actions), dim)
    object_vecs = _unit_vectors(rng, len(objects), dim)
    domain_vecs = _unit_vectors(rng, len(domains), dim)
    background_vecs = _unit_vectors(rng, len(_BACKGROUND_KINDS), dim)

    # tasks: domains in proportion to their share, names unique, scripts of unique steps
    shares = np.array([_DOMAINS[d]["share"] for d in domains])
    counts = np.floor(shares / shares.sum() * cfg.n_tasks).astype(int)
    counts[np.argsort(-shares)[: cfg.n_tasks - counts.sum()]] += 1
    names = {d: _task_names(rng, _DOMAINS[d]) for d in domains}
    steps: list[tuple[int, int]] = []
    step_domain: list[int] = []
    step_index: dict[tuple[int, int], int] = {}
    tasks: list[Task] = []
    for k in range(cfg.n_tasks):
        # interleave domains so that the first tasks cover every domain
        d = _interleaved_domain(k, counts)
        spec = _DOMAINS[domains[d]]
        dom_actions = [actions.index(f[0]) for f in spec["actions"]]
        dom_objects = [objects.index(o) for o in spec["objects"]]
        n_obj = int(rng.integers(3, 7))
        task_objects = rng.choice(dom_objects, size=min(n_obj, len(dom_objects)), replace=False)
        n_steps = int(rng.integers(cfg.min_steps, cfg.max_steps + 1))
        script: list[int] = []
        tries = 0
        while len(script) < n_steps and tries < 1000:
            tries += 1
            pair = (int(rng.choice(dom_actions)), int(rng.choice(task_objects)))
            if pair not in step_index:
                step_index[pair] = len(steps)
                steps.append(pair)
                step_domain.append(d)
            sid = step_index[pair]
            if sid not in script:
                script.append(sid)
        name_list = names[domains[d]]
        name = name_list[len([t for t in tasks if t.domain == domains[d]]) % len(name_list)]
        tasks.append(Task(name=name, domain=domains[d], steps=tuple(script)))

    weights = (cfg.action_weight, cfg.object_weight, cfg.step_weight, cfg.domain_weight)
    step_vecs = _unit_vectors(rng, len(steps), dim)
    a_idx = np.array([s[0] for s in steps])
    o_idx = np.array([s[1] for s in steps])
    proto = (weights[0] * action_vecs[a_idx] + weights[1] * object_vecs[o_idx]
             + weights[2] * step_vecs + weights[3] * domain_vecs[np.array(step_domain)])
    return World(
        seed=cfg.seed, dim=dim, domains=domains, actions=tuple(actions),
        action_forms=tuple(forms), objects=tuple(objects), tasks=tuple(tasks),
        steps=tuple(steps), step_domain=tuple(step_domain), action_vecs=action_vecs,
        object_vecs=object_vecs, domain_vecs=domain_vecs, background_vecs=background_vecs,
        prototypes=_normalise(proto).astype(np.float32), weights=weights,
    )


def _interleaved_domain(k: int, counts: np.ndarray) -> int:
    """Domain of task ``k`` when tasks of each domain are spread evenly over the task list."""
    # position of each task of domain d: (j + 0.5) / counts[d]; sort all positions
    keys = sorted(
        ((j + 0.5) / c, d) for d, c in enumerate(counts) for j in range(int(c))
    )
    return keys[k][1]


# --------------------------------------------------------------------------------------------
# One video: a timeline plan (cheap) and its rendered features
# --------------------------------------------------------------------------------------------


@dataclass
class _Sentence:
    text: str
    start: float
    end: float
    step: int  # index into the plan's steps, -1 = irrelevant
    offset: float  # applied offset (s) w.r.t. the synchronous position; 0 if irrelevant
    asynchronous: bool
    fillers: int
    mention: bool = False


@dataclass
class _Plan:
    task: int
    domain: int
    duration: int
    steps: list[tuple[int, int, int]]  # (step class id, start, end) in integer seconds [s, e)
    backgrounds: list[tuple[int, int, int]]  # (kind, start, end)
    cutaways: list[tuple[int, int]]  # [s, e) background seconds inside steps
    sentences: list[_Sentence] = field(default_factory=list)


def _timeline(world: World, task: int, rng: np.random.Generator, noise: NoiseConfig,
              min_s: int, max_s: int, skip: bool = True, step_range: tuple[float, float] = (6, 20),
              gap_max: float = 12.0, edge: tuple[float, float] = (3, 15),
              script: list[int] | None = None) -> _Plan:
    """Integer-second timeline: intro, steps separated by background gaps, outro, cutaways.

    Piece lengths are drawn, then scaled together so the video lasts ``[min_s, max_s]`` s.
    """
    t = world.tasks[task]
    script = list(t.steps) if script is None else list(script)
    if skip and noise.step_skip_rate > 0:
        keep = rng.random(len(script)) >= noise.step_skip_rate
        if keep.sum() < min(2, len(script)):
            keep[rng.choice(len(script), size=min(2, len(script)), replace=False)] = True
        script = [s for s, k in zip(script, keep) if k]
    if noise.step_variant_rate > 0:
        swap = rng.random(len(script)) < noise.step_variant_rate
        for j in np.flatnonzero(swap):
            options = [v for v in world.variants(script[j]) if v not in script]
            if options:
                script[j] = options[int(rng.random() * len(options))]
    n = len(script)
    step_d = rng.uniform(*step_range, size=n)
    gap_d = np.where(rng.random(n - 1) < 0.3, 0.0, rng.uniform(1.0, gap_max, size=n - 1))
    intro, outro = rng.uniform(*edge, size=2)
    pieces = [intro]
    for i in range(n):
        pieces.append(step_d[i])
        if i < n - 1:
            pieces.append(gap_d[i])
    pieces.append(outro)
    total = float(sum(pieces))
    target = float(np.clip(total, min_s, max_s))
    bounds = np.round(np.cumsum([0.0, *pieces]) * (target / total)).astype(int)
    duration = int(bounds[-1])
    steps, backgrounds = [], []
    for j in range(len(pieces)):
        s, e = int(bounds[j]), int(bounds[j + 1])
        if j % 2 == 1:  # odd pieces are steps
            steps.append((script[j // 2], s, max(e, s + 1)))
        elif e > s:
            kind = 0 if j == 0 else (3 if j == len(pieces) - 1 else int(rng.integers(1, 3)))
            backgrounds.append((kind, s, e))
    # steps may not overlap after the max(e, s+1) guard: shift the tail if needed
    fixed = []
    cursor = 0
    for sid, s, e in steps:
        s = max(s, cursor)
        e = max(e, s + 1)
        fixed.append((sid, s, e))
        cursor = e
    duration = max(duration, cursor)
    cutaways = []
    if noise.cutaway_rate > 0:
        for _, s, e in fixed:
            hit = np.flatnonzero(rng.random(e - s) < noise.cutaway_rate)
            for sec in (s + int(h) for h in hit):
                if cutaways and cutaways[-1][1] == sec:
                    cutaways[-1] = (cutaways[-1][0], sec + 1)
                else:
                    cutaways.append((sec, sec + 1))
    return _Plan(task=task, domain=world.domains.index(t.domain), duration=duration,
                 steps=fixed, backgrounds=backgrounds, cutaways=cutaways)


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.random() * len(options))]


def _insert_fillers(words: list[str], rng: np.random.Generator, mean: float) -> tuple[str, int]:
    k = int(rng.poisson(mean)) if mean > 0 else 0
    if k:
        u = rng.random((k, 2))
        for pos, which in u:
            words.insert(int(pos * (len(words) + 1)), _FILLERS[int(which * len(_FILLERS))])
    return " ".join(words), k


def _speech_seconds(n_words: int, rng: np.random.Generator) -> float:
    """ASR sentence duration: 2-3 words per second, clipped to [1, 10] s."""
    return min(10.0, max(1.0, n_words / (2.0 + rng.random())))


def _narrate(world: World, plan: _Plan, rng: np.random.Generator, noise: NoiseConfig) -> None:
    """Add ASR sentences with every kind of coarse- and word-level noise to ``plan``."""
    T = plan.duration
    domain = _DOMAINS[world.domains[plan.domain]]
    sentences: list[_Sentence] = []
    narrated = rng.random(len(plan.steps)) >= noise.unnarrated_rate
    if not narrated.any():
        narrated[rng.integers(len(plan.steps))] = True
    for pos, (sid, s, e) in enumerate(plan.steps):
        if not narrated[pos]:
            continue
        n_sent = 1 + int(rng.random() < noise.extra_sentence_rate)
        a, o = world.steps[sid]
        for _ in range(n_sent):
            tmpl = _pick(rng, _STEP_TEMPLATES)
            words = tmpl.format(a=world.actions[a], o=world.objects[o]).split()
            if rng.random() < noise.context_rate:
                words += _pick(rng, domain["contexts"]).split()
            text, k = _insert_fillers(words, rng, noise.filler_words_mean)
            dur = _speech_seconds(len(words), rng)
            u = rng.random(4)
            sync = s + u[0] * max(0.0, e - dur - s)
            asynchronous = bool(u[1] < noise.async_rate)
            delta = 0.0
            if asynchronous:
                mag = noise.async_min_s + u[2] * (noise.async_max_s - noise.async_min_s)
                delta = -mag if u[3] < noise.async_lead_prob else mag
            start = round(min(max(sync + delta, 0.0), max(0.0, T - dur)), 2)
            sentences.append(_Sentence(text, start, round(min(T, start + dur), 2), pos,
                                       round(start - sync, 2), asynchronous, k))
    n_rel = len(sentences)
    r = noise.irrelevant_rate
    expected = n_rel * r / (1.0 - r)
    n_irr = int(np.floor(expected)) + int(rng.random() < expected - np.floor(expected))
    task_objects = sorted({world.steps[sid][1] for sid, _, _ in plan.steps})
    task_name = world.tasks[plan.task].name
    for _ in range(n_irr):
        mention = bool(rng.random() < noise.irrelevant_mention_rate)
        if mention and rng.random() < 0.2:
            tmpl = _pick(rng, _TASK_MENTION)
            words = tmpl.format(t=task_name).split()
        elif mention:
            o = world.objects[task_objects[int(rng.random() * len(task_objects))]]
            words = _pick(rng, _MENTION_TEMPLATES).format(o=o).split()
        else:
            words = _pick(rng, _CHATTER).split()
        text, k = _insert_fillers(words, rng, noise.filler_words_mean)
        dur = _speech_seconds(len(words), rng)
        start = round(rng.random() * max(0.0, T - dur), 2)
        sentences.append(_Sentence(text, start, round(min(T, start + dur), 2), -1, 0.0, False,
                                   k, mention))
    sentences.sort(key=lambda x: (x.start, x.end))
    plan.sentences = sentences


def _render(world: World, plan: _Plan, rng: np.random.Generator, noise: NoiseConfig) -> np.ndarray:
    """Features of a plan: (T, D) float16, L2-normalised rows, one per second."""
    T, D = plan.duration, world.dim
    base = np.empty((T, D), np.float32)
    talking = world.background_vector(1, plan.domain)
    base[:] = talking  # any second not covered below is background
    for kind, s, e in plan.backgrounds:
        base[s:e] = world.background_vector(kind, plan.domain)
    for sid, s, e in plan.steps:
        base[s:e] = world.prototypes[sid]
    for s, e in plan.cutaways:
        base[s:e] = talking
    eta = rng.standard_normal((T, D), dtype=np.float32) / np.float32(math.sqrt(D))
    rho = noise.temporal_smoothness
    if rho > 0:
        # AR(1) eps_t = rho eps_{t-1} + sqrt(1 - rho^2) eta_t as a log-step scan of
        # eps_t = sum_s rho^(t-s) b_s (elementwise only: identical bytes on every machine)
        eta[1:] *= np.float32(math.sqrt(1.0 - rho * rho))
        k = 1
        while k < T:
            eta[k:] = eta[k:] + np.float32(rho**k) * eta[:-k]  # right side read before write
            k *= 2
    style = _unit_vectors(rng, 1, D)[0]
    objects = sorted({world.steps[sid][1] for sid, _, _ in plan.steps})
    clutter = _normalise(world.object_vecs[objects].sum(0))
    scene = np.float32(noise.style_weight) * style + np.float32(noise.clutter_weight) * clutter
    x = base + scene.astype(np.float32) + np.float32(noise.frame_noise) * eta
    return _normalise(x).astype(np.float16)


def _frame_steps(plan: _Plan) -> np.ndarray:
    lab = np.full(plan.duration, -1, np.int64)
    for pos, (_, s, e) in enumerate(plan.steps):
        lab[s:e] = pos
    for s, e in plan.cutaways:
        lab[s:e] = -1
    return lab


# --------------------------------------------------------------------------------------------
# Video ids
# --------------------------------------------------------------------------------------------


def _youtube_id(seed: int, tag: str, i: int) -> str:
    """An 11-character YouTube-like id (URL-safe base64), deterministic in (seed, tag, i)."""
    digest = hashlib.blake2b(f"{seed}:{tag}:{i}".encode(), digest_size=9).digest()
    vid = base64.urlsafe_b64encode(digest).decode()[:11]
    return ("x" + vid[1:]) if vid[0] == "-" else vid  # ids never start with "-" (CLI-safe)


def _unique_ids(seed: int, tag: str, n: int) -> list[str]:
    ids = [_youtube_id(seed, tag, i) for i in range(n)]
    if len(set(ids)) != n:  # pragma: no cover - 2**66 id space
        raise RuntimeError(f"video id collision in {tag}")
    return ids


# --------------------------------------------------------------------------------------------
# Small helpers for streaming JSON and progress
# --------------------------------------------------------------------------------------------


class _JsonObjectWriter:
    """Write one JSON object ``{key: value, ...}`` entry by entry to an open text file."""

    def __init__(self, f: Any):
        self.f = f
        self.first = True
        f.write("{")

    def add(self, key: str, value: Any) -> None:
        self.f.write(("" if self.first else ", ") + json.dumps(key) + ": " + json.dumps(value))
        self.first = False

    def close(self) -> None:
        self.f.write("}\n")


def _write_json(path: Path, obj: Any) -> None:
    with atomic_write(path, "w") as f:
        json.dump(obj, f)
        f.write("\n")


ProgressFactory = Callable[..., Iterable[Any]]


def _progress(progress: bool | ProgressFactory) -> ProgressFactory:
    if callable(progress):
        return progress
    if progress:
        try:
            from tqdm.auto import tqdm
        except ImportError:  # pragma: no cover - tqdm is a declared dependency
            return lambda it, **kw: it
        return lambda it, **kw: tqdm(it, **kw)
    return lambda it, **kw: it


# --------------------------------------------------------------------------------------------
# Ground-truth records
# --------------------------------------------------------------------------------------------


def _gt_record(world: World, plan: _Plan, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = dict(extra)
    rec.update(
        task=plan.task,
        task_name=world.tasks[plan.task].name,
        duration=plan.duration,
        steps=[[sid, s, e] for sid, s, e in plan.steps],
        step_texts=[world.step_text(sid) for sid, _, _ in plan.steps],
        cutaways=[[s, e] for s, e in plan.cutaways],
    )
    if plan.sentences:
        ss = plan.sentences
        rec["sentences"] = dict(
            step=[x.step for x in ss],
            segment=[None if x.step < 0 else plan.steps[x.step][1:] for x in ss],
            offset=[x.offset if x.step >= 0 else None for x in ss],
            asynchronous=[x.asynchronous for x in ss],
            irrelevant=[x.step < 0 for x in ss],
            mention=[x.mention for x in ss],
            fillers=[x.fillers for x in ss],
        )
    return rec


# --------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------


def _how2_plan(world: World, cfg: SyntheticConfig, split_code: int, i: int,
               tag: int = _TAG_HOW2) -> tuple[_Plan, np.random.Generator]:
    ss = np.random.SeedSequence([cfg.seed, tag, split_code, i])
    plan_seq, render_seq = ss.spawn(2)
    rng = np.random.default_rng(plan_seq)
    task = int(rng.integers(len(world.tasks)))
    plan = _timeline(world, task, rng, cfg.noise, cfg.how2_min_duration_s,
                     cfg.how2_max_duration_s)
    _narrate(world, plan, rng, cfg.noise)
    return plan, np.random.default_rng(render_seq)


class _LazyCaptions(Mapping):
    """``{video_id: {start, end, text}}`` re-planned on access (plans are cheap, no features)."""

    def __init__(self, world: World, cfg: SyntheticConfig, split_code: int, ids: list[str]):
        self.world, self.cfg, self.split_code = world, cfg, split_code
        self.index = {v: i for i, v in enumerate(ids)}

    def __getitem__(self, vid: str) -> dict[str, list]:
        plan, _ = _how2_plan(self.world, self.cfg, self.split_code, self.index[vid])
        return _caption_entry(plan)

    def __contains__(self, vid: object) -> bool:
        return vid in self.index

    def __iter__(self) -> Iterator[str]:
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


def _caption_entry(plan: _Plan) -> dict[str, list]:
    ss = plan.sentences
    return dict(start=[x.start for x in ss], end=[x.end for x in ss], text=[x.text for x in ss])


def _write_how2(root: DataRoot, world: World, cfg: SyntheticConfig, tokenizer: Any,
                bar: ProgressFactory, counts: dict[str, Any]) -> None:
    from ..data.howto100m import write_caption_shards, write_feature_shards

    n_sent = n_align = n_sync = 0
    with atomic_write(root.how2_captions_json, "w") as fj, \
            atomic_write(root.ground_truth / "how2.json", "w") as fg:
        caps_json, gt_json = _JsonObjectWriter(fj), _JsonObjectWriter(fg)
        for split_code, (split, n) in enumerate((("train", cfg.how2_train),
                                                 ("val", cfg.how2_val))):
            ids = _unique_ids(cfg.seed, f"how2-{split}", n)
            with atomic_write(root.how2_list(split), "w") as f:
                f.writelines(v + "\n" for v in ids)

            def items(ids: list[str] = ids, split_code: int = split_code,
                      split: str = split) -> Iterator[tuple[str, np.ndarray]]:
                nonlocal n_sent, n_align, n_sync
                for i, vid in enumerate(bar(ids, desc=f"how2 {split}", unit="video")):
                    plan, render_rng = _how2_plan(world, cfg, split_code, i)
                    caps_json.add(vid, _caption_entry(plan))
                    gt_json.add(vid, _gt_record(world, plan, split=split))
                    n_sent += len(plan.sentences)
                    n_align += sum(x.step >= 0 for x in plan.sentences)
                    n_sync += sum(x.step >= 0 and not x.asynchronous for x in plan.sentences)
                    yield vid, _render(world, plan, render_rng, cfg.noise)

            written = write_feature_shards(items(), root.how2_feature_shards, split,
                                           shard_size=cfg.how2_shard_size, dim=cfg.dim)
            write_caption_shards(_LazyCaptions(world, cfg, split_code, ids), tokenizer,
                                 written.meta, root.how2_caption_shards, split,
                                 source=str(root.how2_captions_json))
            counts[f"how2_{split}_videos"] = n
        caps_json.close()
        gt_json.close()
    counts["how2_sentences"] = n_sent
    counts["how2_alignable_fraction"] = round(n_align / max(n_sent, 1), 4)
    counts["how2_well_aligned_fraction"] = round(n_sync / max(n_sent, 1), 4)


def _eval_plan(world: World, cfg: SyntheticConfig, tag: int, i: int, task: int,
               skip: bool = True, narrate: bool = False, durations: tuple[int, int] | None = None,
               variants: bool = True, **timeline_kw: Any) -> tuple[_Plan, np.random.Generator]:
    ss = np.random.SeedSequence([cfg.seed, tag, 0, i])
    plan_seq, render_seq = ss.spawn(2)
    rng = np.random.default_rng(plan_seq)
    lo, hi = durations or (cfg.how2_min_duration_s, cfg.how2_max_duration_s)
    noise = cfg.noise if variants else dataclasses.replace(cfg.noise, step_variant_rate=0.0)
    plan = _timeline(world, task, rng, noise, lo, hi, skip=skip, **timeline_kw)
    if narrate:
        _narrate(world, plan, rng, cfg.noise)
    return plan, np.random.default_rng(render_seq)


def _describe(world: World, sid: int, rng: np.random.Generator, context_rate: float) -> str:
    """A clean human annotation sentence for a step (YouCookII style, lower case)."""
    a, o = world.steps[sid]
    words = [world.actions[a], "the", world.objects[o]]
    contexts = _DOMAINS[world.domains[world.step_domain[sid]]]["contexts"]
    if rng.random() < context_rate:
        words += contexts[rng.integers(len(contexts))].split()
    return " ".join(words)


def _write_youcook(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                   counts: dict[str, Any]) -> None:
    cooking = [k for k, t in enumerate(world.tasks) if t.domain == "cooking"]
    recipes = cooking[: cfg.youcook_recipes]
    if len(recipes) < cfg.youcook_recipes:
        recipes = list(range(cfg.youcook_recipes))  # fewer cooking tasks than recipes: any task
    database: dict[str, Any] = {}
    records: list[dict[str, Any]] = []
    gt: dict[str, Any] = {}
    ids_val = _unique_ids(cfg.seed, "youcook-val", cfg.youcook_val)
    ids_train = _unique_ids(cfg.seed, "youcook-train", cfg.youcook_train)
    dur = (cfg.youcook_min_duration_s, cfg.youcook_max_duration_s)
    for subset, ids, offset in (("validation", ids_val, 0), ("training", ids_train, 1 << 20)):
        for i, vid in enumerate(bar(ids, desc=f"youcook {subset}", unit="video")):
            task = recipes[i % len(recipes)]
            plan, render_rng = _eval_plan(world, cfg, _TAG_YOUCOOK, offset + i, task,
                                          durations=dur)
            text_rng = _seq(cfg.seed, _TAG_YOUCOOK, 2, offset + i)
            anns = []
            for j, (sid, s, e) in enumerate(plan.steps):
                anns.append(dict(segment=[s, e], id=j,
                                 sentence=_describe(world, sid, text_rng, cfg.noise.context_rate)))
            database[vid] = dict(
                duration=float(plan.duration), subset=subset, recipe_type=str(101 + task),
                annotations=anns, video_url=f"https://www.youtube.com/watch?v={vid}",
            )
            if subset != "validation":
                continue
            for j, ann in enumerate(anns):
                caption = " ".join(w for w in ann["sentence"].split() if w not in _STOPWORDS)
                records.append(dict(id=f"{vid}_{j}", caption=caption, video_id=vid,
                                    start=ann["segment"][0], end=ann["segment"][1]))
            _save_npy(root.youcook_features / f"{vid}.npy",
                            _render(world, plan, render_rng, cfg.noise))
            gt[vid] = _gt_record(world, plan, subset=subset)
    _write_json(root.youcook_annotations, {"database": database})
    import pickle

    with atomic_write(root.youcook_val_pkl, "wb") as f:
        pickle.dump(records, f, protocol=4)
    _write_json(root.ground_truth / "youcook.json", gt)
    counts["youcook_val_videos"] = len(ids_val)
    counts["youcook_val_clips"] = len(records)
    counts["youcook_train_annotations"] = len(ids_train)


def _msrvtt_caption(world: World, sid: int, rng: np.random.Generator) -> str:
    a, o = world.steps[sid]
    base, ger, third = world.action_forms[a]
    tmpl = _MSRVTT_TEMPLATES[rng.integers(len(_MSRVTT_TEMPLATES))]
    return tmpl.format(g=ger, t=third, o=world.objects[o])


def _write_msrvtt(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                  counts: dict[str, Any]) -> None:
    n_train, n_test = cfg.msrvtt_train, cfg.msrvtt_test
    videos, sentences, gt = [], [], {}
    test_rows, test_caps = [], {}
    for i in bar(range(n_train + n_test), desc="msrvtt", unit="video"):
        is_test = i >= n_train
        vid = f"video{7010 + i - n_train}" if is_test else f"video{i}"
        rng = _seq(cfg.seed, _TAG_MSRVTT, 1, i)
        task = int(rng.integers(len(world.tasks)))
        t = world.tasks[task]
        k = min(int(rng.integers(1, 3)), len(t.steps))
        first = int(rng.integers(0, len(t.steps) - k + 1))
        plan, render_rng = _eval_plan(world, cfg, _TAG_MSRVTT, i, task, skip=False,
                                      durations=(10, 30), step_range=(5, 15), gap_max=3,
                                      edge=(0, 3), script=list(t.steps[first:first + k]))
        main = max(range(len(plan.steps)), key=lambda j: plan.steps[j][2] - plan.steps[j][1])
        caps, cap_step = [], []
        for _ in range(cfg.msrvtt_captions):
            j = main if (len(plan.steps) == 1 or rng.random() < 0.8) else int(
                rng.integers(len(plan.steps)))
            caps.append(_msrvtt_caption(world, plan.steps[j][0], rng))
            cap_step.append(j)
        videos.append({"category": world.domains.index(t.domain), "url":
                       f"https://www.youtube.com/watch?v={_youtube_id(cfg.seed, 'msrvtt', i)}",
                       "video_id": vid, "start time": 0.0, "end time": float(plan.duration),
                       "split": "test" if is_test else "train", "id": i})
        for c in caps:
            sentences.append({"caption": c, "video_id": vid, "sen_id": len(sentences)})
        _save_npy(root.msrvtt_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan, split="test" if is_test else "train")
        rec["caption_step"] = cap_step
        gt[vid] = rec
        if is_test:
            j = int(rng.integers(len(caps)))
            test_rows.append((f"ret{i - n_train}", f"msr{7010 + i - n_train}", vid, caps[j]))
            test_caps[vid] = [c for c2, c in enumerate(caps) if c2 != j] or caps
    _write_json(root.msrvtt_data_json, {"info": {"description": "synthetic MSR-VTT-like set",
                                                 "version": GENERATOR_VERSION},
                                        "videos": videos, "sentences": sentences})
    _write_csv(root.msrvtt_test_csv, ("key", "vid_key", "video_id", "sentence"), test_rows)
    train_ids = [f"video{i}" for i in range(n_train)]
    _write_csv(root.msrvtt_train_csv("9k"), ("video_id",), [(v,) for v in train_ids])
    n7 = max(1, int(round(n_train * 7010 / 9000)))
    _write_csv(root.msrvtt_train_csv("7k"), ("video_id",), [(v,) for v in train_ids[:n7]])
    # multiple-choice QA: the true caption among 4 captions of other test videos
    qa_rng = _seq(cfg.seed, _TAG_MSRVTT, 2)
    test_ids = [r[2] for r in test_rows]
    qa_rows, answers = [], {}
    for vid in test_ids:
        others = [v for v in test_ids if v != vid]
        picks = qa_rng.choice(len(others), size=4, replace=False)
        cands = [test_caps[others[p]][qa_rng.integers(len(test_caps[others[p]]))]
                 for p in picks]
        answer = int(qa_rng.integers(5))
        cands.insert(answer, test_caps[vid][qa_rng.integers(len(test_caps[vid]))])
        qa_rows.append((f"msr{vid.removeprefix('video')}", *cands, str(answer)))
        answers[vid] = answer
    _write_csv(root.msrvtt_qa_csv, ("vid_key", "a1", "a2", "a3", "a4", "a5", "answer"), qa_rows,
               delimiter="\t")
    for vid, a in answers.items():
        gt[vid]["qa_answer"] = a
    _write_json(root.ground_truth / "msrvtt.json", gt)
    counts["msrvtt_train_videos"] = n_train
    counts["msrvtt_test_videos"] = n_test
    counts["msrvtt_qa_questions"] = len(qa_rows)


def _write_csv(path: Path, header: tuple[str, ...], rows: list[tuple[str, ...]],
               delimiter: str = ",") -> None:
    import csv

    with atomic_write(path, "w") as f:
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _write_coin(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                counts: dict[str, Any]) -> None:
    # tasks spread over the task list (every domain), step class ids 1..K in script order
    tasks = [int(k) for k in np.linspace(0, len(world.tasks) - 1, cfg.coin_tasks).round()]
    tasks = list(dict.fromkeys(tasks))
    label_id: dict[int, int] = {}
    for k in tasks:
        for sid in world.tasks[k].steps:
            label_id.setdefault(sid, len(label_id) + 1)
    n_test = _coin_n_test(cfg)
    ids = _unique_ids(cfg.seed, "coin", cfg.coin_videos)
    database, gt = {}, {}
    for i, vid in enumerate(bar(ids, desc="coin", unit="video")):
        subset = "testing" if i < n_test else "training"
        task = tasks[i % len(tasks)]
        # the first testing video of each task shows every step: all labels occur in testing
        full = i < len(tasks)
        # COIN annotates each task's own step list: no substituted steps
        plan, render_rng = _eval_plan(world, cfg, _TAG_COIN, i, task, skip=not full,
                                      variants=False, durations=(40, 180), step_range=(4, 14),
                                      gap_max=8)
        anns = [dict(segment=[float(s), float(e)], id=str(label_id[sid]),
                     label=world.step_text(sid)) for sid, s, e in plan.steps]
        database[vid] = {
            "recipe_type": task, "class": world.tasks[task].name, "subset": subset,
            "start": 0.0, "end": float(plan.duration), "duration": float(plan.duration),
            "video_url": f"https://www.youtube.com/embed/{vid}", "annotation": anns,
        }
        _save_npy(root.coin_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan, subset=subset)
        rec["labels"] = [label_id[sid] for sid, _, _ in plan.steps]
        gt[vid] = rec
    _write_json(root.coin_json, {"database": database})
    _write_json(root.ground_truth / "coin.json",
                {"videos": gt, "id2label": {str(v): world.step_text(k)
                                            for k, v in label_id.items()}})
    counts["coin_videos"] = len(ids)
    counts["coin_testing_videos"] = n_test
    counts["coin_step_classes"] = len(label_id)


def _write_htm_align(root: DataRoot, world: World, cfg: SyntheticConfig, bar: ProgressFactory,
                     counts: dict[str, Any]) -> None:
    ids = _unique_ids(cfg.seed, "htm-align", cfg.htm_align_videos)
    anno, gt = {}, {}
    n_align = n_sent = 0
    for i, vid in enumerate(bar(ids, desc="htm-align", unit="video")):
        rng = _seq(cfg.seed, _TAG_ALIGN, 1, i)
        task = int(rng.integers(len(world.tasks)))
        plan, render_rng = _eval_plan(world, cfg, _TAG_ALIGN, i, task, narrate=True)
        rows = []
        for x in plan.sentences:
            if x.step >= 0:  # alignable: the annotators' corrected (true) segment
                _, s, e = plan.steps[x.step]
                rows.append([1, float(s), float(e), x.text])
            else:  # not alignable: the original ASR timestamps
                rows.append([0, x.start, x.end, x.text])
        anno[vid] = rows
        n_sent += len(rows)
        n_align += sum(r[0] for r in rows)
        _save_npy(root.htm_align_features / f"{vid}.npy",
                        _render(world, plan, render_rng, cfg.noise))
        rec = _gt_record(world, plan)
        rec["asr"] = [[x.start, x.end] for x in plan.sentences]
        gt[vid] = rec
    _write_json(root.htm_align_json, anno)
    _write_json(root.ground_truth / "htm_align.json", gt)
    counts["htm_align_videos"] = len(ids)
    counts["htm_align_sentences"] = n_sent
    counts["htm_align_alignable_fraction"] = round(n_align / max(n_sent, 1), 4)


def _write_world(root: DataRoot, world: World) -> None:
    _write_json(root.ground_truth / "world.json", dict(
        domains=list(world.domains), actions=[list(f) for f in world.action_forms],
        objects=list(world.objects),
        tasks=[dict(name=t.name, domain=t.domain, steps=list(t.steps)) for t in world.tasks],
        steps=[dict(action=world.actions[a], object=world.objects[o],
                    domain=world.domains[d], text=world.step_text(k))
               for k, ((a, o), d) in enumerate(zip(world.steps, world.step_domain))],
        weights=list(world.weights),
    ))
    _save_npy(root.ground_truth / "prototypes.npy", world.prototypes)


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def load_manifest(out_dir: str | Path) -> dict[str, Any] | None:
    """The manifest of a finished synthetic corpus, or None when there is none (or half-written).

    >>> load_manifest("/nonexistent") is None
    True
    """
    path = Path(out_dir) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        m = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not a readable manifest (JSON error: {e})") from None
    if not isinstance(m, dict) or m.get("kind") != "nortonkit-synthetic":
        raise ValueError(f"{path}: expected a nortonkit synthetic-corpus manifest, got {m!r:.80}")
    return m


def load_ground_truth(out_dir: str | Path, dataset: str) -> dict[str, Any]:
    """The ground-truth JSON of one dataset of a synthetic corpus.

    ``dataset`` is one of ``"how2"``, ``"youcook"``, ``"msrvtt"``, ``"coin"``, ``"htm_align"``,
    ``"world"``. Per video: ``steps`` ([step id, start, end] true segments, seconds
    ``[start, end)``), ``cutaways`` and, for narrated videos, ``sentences`` (parallel to the
    caption list: ``step`` index or -1, ``segment``, ``offset`` (s, negative = spoken early),
    ``asynchronous``, ``irrelevant``, ``mention``, ``fillers``).
    """
    check_choice("dataset", dataset, ("how2", "youcook", "msrvtt", "coin", "htm_align", "world"))
    path = DataRoot(out_dir).ground_truth / f"{dataset}.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: ground-truth file not found (generate the corpus first)")
    return json.loads(path.read_text())


def _flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in record.items():
        if isinstance(v, Mapping):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


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


class CorpusMismatchError(ValueError):
    """``out_dir`` holds a finished synthetic corpus of another configuration.

    Raised by :func:`generate_corpus` before anything is written: a corpus is never replaced
    silently (one of 100k videos takes hours to make).

    Attributes
    ----------
    root : Path
        The data root.
    existing : dict
        The manifest of the corpus that is there.
    requested : dict
        The config record that was asked for.
    existing_text, requested_text : str
        :func:`describe_config` of each, with its generator version when they differ.
    differences : list of str
        ``"field: existing vs requested"`` for each differing config field.
    """

    def __init__(self, root: Path, existing: Mapping[str, Any], requested: Mapping[str, Any]):
        self.root = Path(root)
        self.existing = dict(existing)
        self.requested = dict(requested)
        old = self.existing.get("config")
        old = old if isinstance(old, Mapping) else {}
        self.existing_text = describe_config(old)
        self.requested_text = describe_config(self.requested)
        old_version = self.existing.get("generator_version")
        if old_version != GENERATOR_VERSION:
            self.existing_text += f" (generator version {old_version})"
            self.requested_text += f" (generator version {GENERATOR_VERSION})"
        a, b = _flatten(old), _flatten(self.requested)
        self.differences = [f"{k}: {a.get(k, '(absent)')!r} vs {b.get(k, '(absent)')!r}"
                            for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
        super().__init__(self.describe("overwrite=True"))

    def describe(self, option: str, name: str = "out_dir") -> str:
        """The error message for argument ``name``, naming ``option`` as the way to replace it."""
        counts = self.existing.get("counts")
        videos = counts.get("how2_train_videos") if isinstance(counts, Mapping) else None
        made = self.existing.get("seconds")
        about = ", ".join(x for x in (
            f"{videos} HowTo100M-like training videos" if videos is not None else "",
            f"generated in {made} s" if made is not None else "") if x)
        want = self.requested.get("how2_train")
        diff = "; ".join(self.differences[:6])
        if len(self.differences) > 6:
            diff += f"; and {len(self.differences) - 6} more"
        return (
            f"{name}: {self.root} already holds a synthetic corpus of another configuration; "
            f"refusing to replace it\n"
            f"  existing:  {self.existing_text}{f' ({about})' if about else ''}\n"
            f"  requested: {self.requested_text} ({want} HowTo100M-like training videos)\n"
            f"  differing fields (existing vs requested): {diff or 'none'}\n"
            f"Use {option} to replace it on purpose, or choose another folder."
        )


def _holds_other_content(out: Path) -> bool:
    """True when ``out`` holds files but no synthetic corpus (finished or half-written)."""
    if not out.exists():
        return False
    if not out.is_dir():
        return True
    if (out / MANIFEST_NAME).is_file() or (out / _PARTIAL_NAME).is_file():
        return False
    return any(p.name not in (_NEW_NAME, _OLD_NAME) for p in out.iterdir())


def _install(new: Path, out: Path, wanted: dict[str, Any]) -> None:
    """Move the complete corpus in ``new`` into ``out`` (renames only), manifest last.

    From the first rename until the manifest is in place, the partial marker says the corpus is
    half-written, so a process killed in between leaves a corpus that is redone, never used.
    """
    _write_json(out / _PARTIAL_NAME, {"config": wanted, "generator_version": GENERATOR_VERSION})
    with contextlib.suppress(FileNotFoundError):
        (out / MANIFEST_NAME).unlink()
    old = out / _OLD_NAME
    shutil.rmtree(old, ignore_errors=True)
    old.mkdir()
    for name in _DATASET_DIRS:
        if (out / name).exists():
            os.replace(out / name, old / name)
        if (new / name).exists():
            os.replace(new / name, out / name)
    os.replace(new / MANIFEST_NAME, out / MANIFEST_NAME)
    (out / _PARTIAL_NAME).unlink()
    shutil.rmtree(new, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)


def generate_corpus(
    out_dir: str | Path,
    config: SyntheticConfig | None = None,
    progress: bool | ProgressFactory = True,
    overwrite: bool = False,
) -> DataRoot:
    """Write the whole synthetic corpus (all five datasets plus ground truth) under ``out_dir``.

    Parameters
    ----------
    out_dir : path-like
        Data root; created if needed. It must be empty, or hold a synthetic corpus (finished or
        half-written); any other content is refused rather than overwritten.
    config : SyntheticConfig, optional
        Default ``SyntheticConfig()`` (the "default" size).
    progress : bool or callable
        Show tqdm progress bars, or a factory ``f(iterable, desc=..., unit=...)``.
    overwrite : bool
        Replace a finished corpus of another configuration (or generator version) instead of
        raising :class:`CorpusMismatchError`.

    Returns
    -------
    DataRoot
        Paths of every file (the layout of :mod:`nortonkit.data.layout`).

    Raises
    ------
    CorpusMismatchError
        ``out_dir`` holds a finished corpus of another configuration and ``overwrite`` is
        False; nothing is changed. The message names both configurations.
    ValueError
        ``out_dir`` holds something other than a synthetic corpus.

    Notes
    -----
    Idempotent: when ``out_dir/manifest.json`` records the same config and generator version,
    nothing is written. The corpus is generated in ``out_dir/.synthetic_new`` and renamed into
    place once complete (the manifest, which records config, counts and version, last), so the
    corpus under ``out_dir`` is always either finished or marked half-written; a half-written
    one is redone. Other files in ``out_dir`` are kept. HowTo100M-like videos are generated one
    at a time and written shard by shard, so memory stays flat as ``how2_train`` grows.

    The noisy correspondence follows Norton Sec. 1 (asynchronous, irrelevant, fine-grained);
    the default irrelevant rate reproduces HTM-Align's 30 % alignable sentences.

    Examples
    --------
    >>> import tempfile
    >>> root = generate_corpus(tempfile.mkdtemp(), SyntheticConfig.preset("smoke"), progress=False)
    >>> load_manifest(root.root)["counts"]["how2_train_videos"]
    48
    >>> sorted(p.name for p in root.root.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['coin', 'ground_truth', 'how2', 'how2-align', 'manifest.json', 'msrvtt', 'youcook']
    >>> generate_corpus(root.root, SyntheticConfig.preset("smoke", scale=40), progress=False)
    Traceback (most recent call last):
    ...
    nortonkit.synthetic.corpus.CorpusMismatchError: out_dir: ... already holds ...
    """
    cfg = config if config is not None else SyntheticConfig()
    if not isinstance(cfg, SyntheticConfig):
        raise ValueError(f"config: expected a SyntheticConfig, got {type(cfg).__name__}")
    if not isinstance(overwrite, bool):
        raise ValueError(f"overwrite: expected True or False, got {overwrite!r}")
    root = DataRoot(out_dir)
    out = root.root
    wanted = _config_record(cfg)
    existing = load_manifest(out)
    if existing is not None:
        if existing.get("generator_version") == GENERATOR_VERSION and \
                existing.get("config") == wanted:
            return root
        if not overwrite:
            raise CorpusMismatchError(out, existing, wanted)
    elif _holds_other_content(out):
        raise ValueError(
            f"out_dir: {out} is not empty and holds no synthetic corpus (no {MANIFEST_NAME} or "
            f"{_PARTIAL_NAME}); expected an empty folder or a synthetic corpus, refusing to "
            "overwrite"
        )
    out.mkdir(parents=True, exist_ok=True)
    if existing is None:  # empty or half-written: mark it ours before writing anything
        _write_json(out / _PARTIAL_NAME,
                    {"config": wanted, "generator_version": GENERATOR_VERSION})
    new = out / _NEW_NAME
    shutil.rmtree(new, ignore_errors=True)
    _write_into(DataRoot(new), cfg, wanted, progress)
    _install(new, out, wanted)
    return root


def _write_into(root: DataRoot, cfg: SyntheticConfig, wanted: dict[str, Any],
                progress: bool | ProgressFactory) -> None:
    """Generate every dataset of ``cfg`` under ``root`` (a fresh folder), the manifest last."""
    from ..data.text import load_tokenizer

    t0 = time.perf_counter()
    bar = _progress(progress)
    world = build_world(cfg)
    counts: dict[str, Any] = {"tasks": len(world.tasks), "step_classes": len(world.steps)}
    _write_world(root, world)
    _write_how2(root, world, cfg, load_tokenizer(), bar, counts)
    _write_youcook(root, world, cfg, bar, counts)
    _write_msrvtt(root, world, cfg, bar, counts)
    _write_coin(root, world, cfg, bar, counts)
    _write_htm_align(root, world, cfg, bar, counts)
    manifest = dict(kind="nortonkit-synthetic", generator_version=GENERATOR_VERSION,
                    config=wanted, counts=counts,
                    seconds=round(time.perf_counter() - t0, 2))
    _write_json(root.root / MANIFEST_NAME, manifest)


def ensure_corpus(out_dir: str | Path, size: str = "default", seed: int = 0,
                  progress: bool | ProgressFactory = False,
                  overwrite: bool = False) -> DataRoot:
    """Generate the named-size corpus under ``out_dir`` unless it is already there.

    Parameters
    ----------
    out_dir : path-like
        Data root.
    size : {"default", "smoke"}
        :meth:`SyntheticConfig.preset` size.
    seed : int
        Master seed.
    progress : bool or callable
        As in :func:`generate_corpus`.
    overwrite : bool
        As in :func:`generate_corpus`.

    Returns
    -------
    DataRoot

    Raises
    ------
    CorpusMismatchError
        ``out_dir`` holds a corpus of another configuration (see :func:`generate_corpus`).

    Notes
    -----
    Used by the notebooks (``SMOKE=True`` selects ``"smoke"``) and by training
    (``data.synthetic``, which uses a corpus of another configuration as it is); see
    :func:`generate_corpus`.

    Examples
    --------
    >>> import tempfile
    >>> d = tempfile.mkdtemp()
    >>> ensure_corpus(d, "smoke").youcook_val_pkl.is_file()
    True
    """
    return generate_corpus(out_dir, SyntheticConfig.preset(size, seed=seed), progress=progress,
                           overwrite=overwrite)


class SyntheticExample(NamedTuple):
    """One synthetic long video with its noisy narration and the true alignment.

    Attributes
    ----------
    features : Tensor, shape (T, D)
        float32 frame features, one per second, unit rows (rounded through float16 as stored).
    captions : list of str, length K
        ASR sentences in time order.
    caption_spans : Tensor, shape (K, 2)
        float32 ASR [start, end] in seconds.
    caption_features : Tensor, shape (K, D)
        Oracle text embeddings (:meth:`World.embed_text`); zero rows for pure chatter.
    aligned_step_per_caption : Tensor, shape (K,)
        int64 index into the steps, -1 for irrelevant captions.
    caption_offsets : Tensor, shape (K,)
        float32 applied asynchronous offset in seconds (0 for synchronous and irrelevant).
    step_spans : Tensor, shape (S, 2)
        int64 true [start, end) of each step in seconds.
    step_texts : list of str, length S
    step_prototypes : Tensor, shape (S, D)
        float32 unit visual prototypes of the steps.
    frame_step : Tensor, shape (T,)
        int64 step index of each second, -1 for background (including cutaways).
    """

    features: Tensor
    captions: list[str]
    caption_spans: Tensor
    caption_features: Tensor
    aligned_step_per_caption: Tensor
    caption_offsets: Tensor
    step_spans: Tensor
    step_texts: list[str]
    step_prototypes: Tensor
    frame_step: Tensor


def synthetic_example(
    seed: int = 0,
    n_steps: int = 6,
    noise: NoiseConfig | None = None,
    min_duration_s: int = 60,
    max_duration_s: int = 120,
    dim: int = 512,
) -> SyntheticExample:
    """Generate one narrated video in memory, for the alignment explorer and tutorials.

    Parameters
    ----------
    seed : int
        Seed of the world and of the video.
    n_steps : int
        Steps shown in the video (all narrated unless ``noise.unnarrated_rate`` > 0).
    noise : NoiseConfig, optional
        Default ``NoiseConfig()``; the step-skip knob is not applied (exactly ``n_steps``).
    min_duration_s, max_duration_s : int
        Range of the video length in seconds.
    dim : int
        Feature dimension D.

    Returns
    -------
    SyntheticExample
        ``features`` (T, D), ``captions`` (K), ``caption_spans`` (K, 2),
        ``aligned_step_per_caption`` (K,), ``step_spans`` (S, 2), ...

    Notes
    -----
    Same generator as the HowTo100M-like corpus (Norton Sec. 1 noise: asynchronous offsets,
    irrelevant sentences, filler words, cutaway frames). The similarity of a frame to its step's
    prototype is ``<x_t, p_s>``; with ``frame_noise``, ``style_weight`` and ``clutter_weight`` 0,
    equal their prototype up to float16 rounding.

    Examples
    --------
    >>> ex = synthetic_example(seed=0, n_steps=4, noise=NoiseConfig(irrelevant_rate=0.0))
    >>> ex.features.shape[1], len(ex.step_texts), bool((ex.aligned_step_per_caption >= 0).all())
    (512, 4, True)
    >>> bool(torch.allclose(ex.features.norm(dim=1), torch.ones(len(ex.features)), atol=1e-2))
    True
    """
    check_int_at_least("n_steps", n_steps, 1)
    if n_steps > 20:
        raise ValueError(f"n_steps: expected an integer in [1, 20], got {n_steps}")
    noise = noise if noise is not None else NoiseConfig()
    if not isinstance(noise, NoiseConfig):
        raise ValueError(f"noise: expected a NoiseConfig, got {type(noise).__name__}")
    check_int_at_least("min_duration_s", min_duration_s, 2 * n_steps)
    check_int_at_least("max_duration_s", max_duration_s, min_duration_s)
    cfg = SyntheticConfig(seed=seed, dim=dim, n_tasks=24, noise=noise, youcook_recipes=4,
                          coin_tasks=4, coin_videos=20)
    world = build_world(cfg)
    rng = _seq(seed, _TAG_EXAMPLE, n_steps)
    task = int(rng.integers(len(world.tasks)))
    # a script of exactly n_steps: the task's steps, then other steps of its domain
    t = world.tasks[task]
    same = [k for k, d in enumerate(world.step_domain) if world.domains[d] == t.domain]
    extra = [k for k in rng.permutation(same).tolist() if k not in t.steps]
    script = (list(t.steps) + extra)[:n_steps]
    plan = _timeline(world, task, rng, noise, min_duration_s, max_duration_s, skip=False,
                     script=script)
    _narrate(world, plan, rng, noise)
    feats = _render(world, plan, rng, noise).astype(np.float32)
    ss = plan.sentences
    cap_feats = np.stack([world.embed_text(x.text) for x in ss]) if ss else np.zeros((0, dim))
    return SyntheticExample(
        features=torch.from_numpy(feats),
        captions=[x.text for x in ss],
        caption_spans=torch.tensor([[x.start, x.end] for x in ss],
                                   dtype=torch.float32).reshape(-1, 2),
        caption_features=torch.from_numpy(cap_feats.astype(np.float32)),
        aligned_step_per_caption=torch.tensor([x.step for x in ss], dtype=torch.int64),
        caption_offsets=torch.tensor([x.offset if x.step >= 0 else 0.0 for x in ss],
                                     dtype=torch.float32),
        step_spans=torch.tensor([[s, e] for _, s, e in plan.steps], dtype=torch.int64),
        step_texts=[world.step_text(sid) for sid, _, _ in plan.steps],
        step_prototypes=torch.from_numpy(world.prototypes[[sid for sid, _, _ in plan.steps]]),
        frame_step=torch.from_numpy(_frame_steps(plan)),
    )
