# %% [markdown]
# # Stage 2: every method post-trained from the same checkpoint
#
# > VideoCLIP continued, TempCLR, Norton and the Table 7 rows A-J, over seeds, against linear baselines fitted on the same corpus.
#
# **Type:** explanation
#
# **Inputs:** the stage-1 checkpoint of `20_pretrain` (or `checkpoint`), the corpus
#
# **Outputs:** `{study_dir}/methods_runs.csv`, `methods_summary.csv`, `references.json`, a figure

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
trainable = "layernorm_only"  # stage-2 parameters: or "all"

# %%
from nortonkit.lab.reports import environment_report, notebook_paths

print(environment_report(device=device))
paths = notebook_paths(artifacts, out_dir, data_root, checkpoint, dataset, smoke)
paths

# %% [markdown]
# Norton's recipe (Sec. 4, App. A): start from VideoCLIP and post-train the LayerNorms only, with the method's loss. Every row here starts from the same stage-1 checkpoint with the same updates, batches and evaluation (`nortonkit/configs/synthetic_stage2.yaml`); only the loss preset changes (`nortonkit.train.presets`). `trainable = "all"` post-trains every parameter. The references are measured on this corpus: `ridge_asr` (a linear model fitted on the noisy ASR timestamps), `ridge_true` (the same on the true segments), the `oracle` text encoder, a linear dual encoder trained with InfoNCE, and the stage-1 checkpoint itself.

# %%
from pathlib import Path

from nortonkit.lab.baselines import youcook_baselines
from nortonkit.lab.evaluate import load_model
from nortonkit.lab.robustness import evaluate_encoder
from nortonkit.lab.study import PROFILES, write_json

study = PROFILES["smoke" if smoke else profile]
out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
stage1 = evaluate_encoder(load_model(paths.checkpoint).model, paths.data_root)
baselines = youcook_baselines(paths.data_root, study.corpus, infonce_steps=5 if smoke else 300)
refs = {m: {"clip_r1": baselines["youcook_clip_r1"][m],
            "paragraph_r1": baselines["youcook_paragraph_dtw_r1"][m]}
        for m in ("ridge_asr", "ridge_true", "oracle", "linear_infonce")}
write_json({"stage1": stage1, "baselines": baselines, "profile": study.name},
           out / "references.json")
study

# %%
import pandas as pd

from nortonkit.lab.study import run_methods, summarize

work = Path(artifacts) / "runs" / f"stage2-{study.name}-{trainable}"
runs = run_methods(paths.checkpoint, paths.data_root, work, study.methods, study.seeds,
                   study.post_steps, trainable=trainable, workers=study.workers,
                   synthetic=study.corpus if dataset == "synthetic" else None, device=device,
                   smoke=smoke)
if study.all_params_methods:  # the option: every parameter post-trained
    every = run_methods(paths.checkpoint, paths.data_root, work.with_name(work.name + "-all"),
                        study.all_params_methods, study.seeds, study.post_steps,
                        trainable="all", workers=study.workers, device=device, smoke=smoke)
    runs = pd.concat([runs, every.assign(method=every["method"] + " (all params)")])
summary = summarize(runs)
runs.to_csv(out / "methods_runs.csv", index=False)
summary.to_csv(out / "methods_summary.csv", index=False)

# %% [markdown]
# The table as the paper prints it: rows are methods, columns the metrics, mean ± std over seeds (n). Synthetic numbers are not comparable with the paper's and are not set beside them.

# %%
from nortonkit.lab.study import paper_table

paper_table(summary, refs, stage1)

# %%
import matplotlib.pyplot as plt

from nortonkit.lab.viz import plot_method_bars

label = (f"{study.name} profile: {len(study.seeds)} seeds, {study.post_steps} updates, "
         f"trainable={trainable}")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
for ax, metric in zip(axes, ("clip_r1", "paragraph_r1")):
    lines = {**{k: v[metric] for k, v in refs.items()}, "stage 1": stage1[metric]}
    plot_method_bars(summary, metric, lines, title=f"{metric} ({label})", ax=ax)

# %% [markdown]
# Which of the paper's orderings hold here, and the part of the noisy-to-clean gap (`ridge_true` - `ridge_asr`) that each method's post-training closes over the stage-1 checkpoint.

# %%
from IPython.display import Markdown

from nortonkit.lab.study import gap_closed, orderings, orderings_markdown

checks = orderings(summary)
Markdown(orderings_markdown(checks))

# %%
gap_closed(summary, refs, stage1)

# %%
fig.savefig(paths.figures / "methods.png", dpi=120)
assert runs["value"].between(0, 100).all() and set(study.methods) <= set(runs["method"])
assert (summary["n"] == len(study.seeds)).all()
print("methods x seeds:", len(study.methods), "x", len(study.seeds))
