"""Evaluation protocols of Norton's tables (the lab): scores and metrics, never training.

=================  =======  =====================================================================
module             tables   holds
=================  =======  =====================================================================
``common``         all      the two variants, the text token budget, batched clip and caption
                            encoding, padded groups
``paragraph``      T1-T2    YouCookII video-paragraph retrieval, background removed and kept:
                            Cap. Avg., DTW, OTAM, plain OT, Norton's bucketed OT (Eq. 6)
``clip``           T3       YouCookII clip-caption retrieval; retrieval rows of any matrix
``msrvtt``         T5-T6    MSR-VTT text-to-video retrieval and multiple-choice QA
``coin``           T4       COIN action segmentation: per-second predictions, zero-shot
``htm_align``      T9       HTM-Align alignment recall and ROC AUC
``splits``         T4-T6    the validation split carved from training data for fine-tuning
=================  =======  =====================================================================

Each protocol is computed as the official scripts compute it and as corrected. The runner that
loads a checkpoint, fine-tunes where a table needs it and writes results is
:mod:`nortonkit.lab.evaluate` (``python -m nortonkit.lab.evaluate``).
"""
