"""The synthetic HowTo100M-like world (the lab): a corpus whose ground truth is known.

:mod:`nortonkit.synthetic.corpus` generates it (``python data_recipes/synthetic.py``): steps
of recipes, S3D-like clip features, noisy ASR captions with known irrelevant, asynchronous,
skipped and reordered sentences, and the YouCookII-, MSR-VTT-, COIN- and HTM-Align-like test
sets, all written in the real datasets' formats so every reader and protocol runs on it.
"""
