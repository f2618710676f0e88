"""The lab that runs the paper on the library: tables, studies, the explorer, reports, the demo.

=====================  =====================================================================
module                 holds
=====================  =====================================================================
``evaluate``           ``python -m nortonkit.lab.evaluate --task ...``: one table, one checkpoint
``registry``           the evaluation tasks: one spec (table, files, options) and runner each
``schedules``          the fine-tuning schedules of Tables 4-6 (official yamls, CPU ones)
``finetune``           the fine-tuning loop, seed aggregation, MSR-VTT and COIN fine-tuning
``ablations``          Table 7: each loss preset trained from scratch, then evaluated
``efficiency``         Table 8: seconds per training update of each line
``baselines``          ridge, oracle and linear InfoNCE baselines of the synthetic corpus
``robustness``         the studies' encoder measures: clip R@1, paragraph R@1, alignment recall
``study``              the two-stage study (stage 1, stage 2 per method, seeds, orderings, noise)
``transport_study``    DTW, OT and Norton's transport against the corpus's ground truth: the
                       sweeps over noise knobs, ``alpha`` / ``q`` / ``eps`` and seeds;
                       ``transport_study_align`` a seed's problems and their three alignments,
                       ``transport_study_summary`` mean ± std, the table, the paper's claims
``explore``            the alignment explorer's computations; ``explore_examples`` its examples
                       (synthetic world, data root, encoder), ``widgets`` its sliders
``viz``                every figure (the only drawing module with ``widgets``)
``paper``              the paper's numbers (package data ``paper_tables.json``)
``reports``            papermill batch of the notebooks and the results README
``demo``               ``python -m nortonkit.lab.demo``: the main job on the synthetic corpus
=====================  =====================================================================
"""
