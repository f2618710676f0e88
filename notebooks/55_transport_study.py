# %% [markdown]
# # Transport against the ground truth
#
# > How accurately DTW, vanilla OT and Norton's bucketed OT align captions with clips, as each noise knob and alpha, p, eps vary; no training.
#
# **Type:** explanation
#
# **Inputs:** nothing (in-memory synthetic videos, oracle text embeddings)
#
# **Outputs:** `{study_dir}/alignment_accuracy.json`, `transport_runs.csv`, a figure

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

# %% [markdown]
# The synthetic world knows which seconds each caption describes and which captions describe nothing. With the oracle text embedding of each caption and the frame features of its clip, each method aligns every sequence of K = 8 consecutive (clip, caption) pairs (`nortonkit.lab.transport_study`). Accuracy: the fraction of captions with a true clip whose assigned clip is a true one; bucket precision and recall: of irrelevant captions sent to the bucket. Mean ± std over 5 seeds.

# %%
from pathlib import Path

from nortonkit.lab.study import write_json
from nortonkit.lab.transport_study import SMOKE_SWEEP, default_accuracy, transport_sweep

out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
accuracy = default_accuracy(seeds=range(2 if smoke else 5))
write_json(accuracy, out / "alignment_accuracy.json")
runs = transport_sweep(**SMOKE_SWEEP) if smoke else transport_sweep(seeds=range(5))
runs.to_csv(out / "transport_runs.csv", index=False)
accuracy

# %% [markdown]
# The same alignments with the stage-1 checkpoint's encoders in place of the oracle (same videos and seeds): how much of the transport's accuracy a trained dual encoder keeps.

# %%
import pandas as pd

from nortonkit.lab.evaluate import load_model

trained = default_accuracy(seeds=range(2 if smoke else 5), model=load_model(paths.checkpoint).model)
write_json(trained, out / "alignment_accuracy_trained.json")
pd.concat({"oracle encoders": pd.DataFrame(accuracy).T,
           "stage-1 checkpoint": pd.DataFrame(trained).T})

# %%
from nortonkit.lab.transport_study_summary import summarize, summary_table

summary = summarize(runs)
summary_table(summary)

# %%
from IPython.display import Markdown

from nortonkit.lab.transport_study_summary import claims_markdown, paper_claims

Markdown(claims_markdown(paper_claims(summary), n_seeds=runs["seed"].nunique()))

# %%
from nortonkit.lab.viz import plot_transport_sweep

fig = plot_transport_sweep(runs)
fig.suptitle(f"caption accuracy, mean ± std over {runs['seed'].nunique()} seeds", fontsize=10)
fig.savefig(paths.figures / "transport_study.png", dpi=110)
assert set(accuracy) == set(trained) == {"dtw", "ot", "norton"}
