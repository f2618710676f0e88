# %% [markdown]
# # Report: every table, ours beside the paper's
#
# > Collects the results of notebooks 30-45 and the noise sweep.
#
# **Type:** reference
#
# **Inputs:** `{artifacts}/results/*.csv`, `{out_dir}/robustness_summary.csv`
#
# **Outputs:** `{out_dir}/tables.md`

# %% tags=["parameters"]
# Parameters: papermill overrides any of them (`make demo`, `make reproduce`).
data_root = None  # real data root (None: the synthetic corpus under artifacts)
checkpoint = None  # checkpoint to evaluate (None: the one 20_pretrain writes)
device = "cpu"  # "cpu" or "cuda"
dataset = "synthetic"  # "synthetic" or "real"
smoke = False  # True: smoke sizes, seconds per notebook
seed = 0
out_dir = "../reports"  # figures and tables.md
artifacts = "../artifacts"  # corpus, runs and results (gitignored)
profile = "demo"  # study profile of nortonkit.lab.study.PROFILES: "demo" (reduced) or "full"
study_dir = None  # where 40, 55 and 60 write the study (None: {artifacts}/study)

# %%
from nortonkit.lab.reports import environment_report, notebook_paths

print(environment_report(device=device))
paths = notebook_paths(artifacts, out_dir, data_root, checkpoint, dataset, smoke)
paths

# %%
from nortonkit.lab.reports import beside_paper
from nortonkit.lab.reports import collect_results

results = collect_results(paths.results)
compared = beside_paper(results, dataset) if len(results) else results
compared

# %%
from pathlib import Path

import pandas as pd

from nortonkit.lab.reports import write_tables_md

from nortonkit.lab.study import paper_table, summarize

study = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
methods = study / "methods_runs.csv"
extras = ({"Post-trained methods (mean ± std over seeds)":
           paper_table(summarize(pd.read_csv(methods))).reset_index(names="method")}
          if methods.is_file() else {})
written = write_tables_md(paths.results, paths.tables_md, extras=extras, dataset=dataset)
print(written.read_text()[:1500])

# %%
text = paths.tables_md.read_text()
assert text.startswith("# ") and (len(results) == 0 or "## T" in text)
print("tables.md written:", paths.tables_md.is_file())
