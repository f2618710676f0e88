"""The synthetic HowTo100M-like world (the lab): a corpus whose ground truth is known.

:mod:`nortonkit.synthetic.corpus` generates it (``python data_recipes/synthetic.py``): steps
of recipes, S3D-like clip features, noisy ASR captions with known irrelevant, asynchronous,
skipped and reordered sentences, and the YouCookII-, MSR-VTT-, COIN- and HTM-Align-like test
sets, all written in the real datasets' formats so every reader and protocol runs on it.

================  ===========================================================================
module            holds
================  ===========================================================================
``config``        :class:`SyntheticConfig`, its :class:`NoiseConfig` knobs, the generator version
``vocabulary``    the real English words and sentence templates of the world
``world``         :class:`World`: tasks, step classes and their visual prototypes
``video``         one video's timeline plan and its per-second features
``narration``     noisy ASR sentences of a video, clean annotation sentences
``writing``       video ids, atomic JSON/CSV/``.npy`` writes, progress bars
``ground_truth``  the true alignments written beside the corpus, :func:`load_ground_truth`
``how2_writer``   the HowTo100M-like pre-training shards, streamed video by video
``eval_writers``  the YouCookII-, MSR-VTT-, COIN- and HTM-Align-like evaluation sets
``example``       :func:`synthetic_example`: one narrated video in memory
``corpus``        :func:`generate_corpus`, :func:`ensure_corpus`, the manifest, mismatches
================  ===========================================================================
"""
