"""The lab that runs the paper on the library: tables, studies, the explorer, reports, the demo.

=====================  =====================================================================
module                 holds
=====================  =====================================================================
``evaluate``           ``python -m nortonkit.lab.evaluate --task ...``: one table, one checkpoint
``finetune``           MSR-VTT and COIN fine-tuning, Table 7 ablations, Table 8 timing
``baselines``          ridge, oracle and linear InfoNCE baselines of the synthetic corpus
``robustness``         the studies' encoder measures: clip R@1, paragraph R@1, alignment recall
``study``              the two-stage study (stage 1, stage 2 per method, seeds, orderings, noise)
``transport_study``    DTW, OT and Norton's transport against the corpus's ground truth
``explore``            the alignment explorer's computations; ``widgets`` its sliders
``viz``                every figure (the only drawing module with ``widgets``)
``paper``              the paper's numbers (package data ``paper_tables.json``)
``reports``            papermill batch of the notebooks and the results README
``demo``               ``python -m nortonkit.lab.demo``: the main job on the synthetic corpus
=====================  =====================================================================
"""
