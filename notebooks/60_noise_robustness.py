# %% [markdown]
# # Noise robustness, post-trained from the stage-1 checkpoint
#
# > VideoCLIP, TempCLR and Norton post-trained on corpora with more or fewer irrelevant captions (mean ± std over seeds).
#
# **Type:** explanation
#
# **Inputs:** the stage-1 checkpoint; corpora generated per level (same world)
#
# **Outputs:** `{study_dir}/noise_runs.csv`, a figure

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
# Each level of a noise knob gets its own corpus from the same world as stage 1 (same actions, objects and words), every other knob at its default. Every method post-trains from the stage-1 checkpoint with the same updates and evaluation; nothing is tuned to make any method win. The `demo` profile trains nothing here: it shows the committed `results/` of `make study`, and says so on the plot.

# %%
from pathlib import Path

import pandas as pd

from nortonkit.lab.study import PROFILES, noise_sweep, summarize

study = PROFILES["smoke" if smoke else profile]
out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
if study.noise:
    runs = noise_sweep(paths.checkpoint, Path(artifacts) / "noise" / study.name, study.noise,
                       study.noise_methods,
                       study.seeds, study.post_steps, corpus=study.corpus,
                       workers=study.workers, device=device, smoke=smoke)
    runs.to_csv(out / "noise_runs.csv", index=False)
    source = f"{study.name} profile, run here"
else:
    runs = pd.read_csv(Path("..") / "results" / "noise_runs.csv")
    source = "committed results/noise_runs.csv of make study (not rerun by this profile)"
summary = summarize(runs, by=("knob", "level", "method"))
summary.pivot_table(index=["knob", "level", "metric"], columns="method",
                    values="mean").round(1)

# %%
import matplotlib.pyplot as plt

from nortonkit.lab.viz import plot_noise_sweep

metrics = ("clip_r1", "paragraph_r1", "align_recall")
knobs = list(dict.fromkeys(runs["knob"]))
fig, axes = plt.subplots(1, len(metrics) * len(knobs), figsize=(13, 3.4), squeeze=False,
                         layout="constrained")
for j, (k, m) in enumerate((k, m) for k in knobs for m in metrics):
    df = runs[(runs["knob"] == k) & (runs["metric"] == m)].rename(columns={"level": k,
                                                                           "value": m})
    plot_noise_sweep(df, k, m, ax=axes[0, j])
fig.suptitle(f"mean ± std over {runs['seed'].nunique()} seeds; {source}", fontsize=9)

# %% [markdown]
# Norton against the best other method at each level, by the kit's rule: a difference is real beyond twice the combined std over seeds.

# %%
from nortonkit.lab.study import noise_verdicts

noise_verdicts(summary)

# %%
fig.savefig(paths.figures / "noise_robustness.png", dpi=120)
assert runs["value"].between(0, 100).all()
