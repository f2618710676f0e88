"""Evaluation protocols of Norton's tables (the lab): scores and metrics, never training.

:mod:`nortonkit.eval.tasks` holds the protocols (video-paragraph retrieval with and without
background, clip retrieval, MSR-VTT QA, COIN, HTM-Align), as the official scripts compute them
and as corrected; the runner that loads a checkpoint, fine-tunes where a table needs it and
writes results is :mod:`nortonkit.lab.evaluate` (``python -m nortonkit.lab.evaluate``).
"""
