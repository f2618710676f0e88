# %% [markdown]
# # Stage 1: VideoCLIP-style pre-training
#
# > The contrastive loss alone (Eq. 8, beta = 0) on the HowTo100M-like corpus: the synthetic VideoCLIP checkpoint every method post-trains from.
#
# **Type:** how-to
#
# **Inputs:** the corpus at `paths.data_root` (from `10_data_prep`)
#
# **Outputs:** the named checkpoint `{artifacts}/runs/pretrain/checkpoint_last` that notebooks 30-60 start from, training logs, a figure

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
max_steps = None  # updates of stage 1 (None: the yaml's 300)

# %%
from nortonkit.lab.reports import environment_report, notebook_paths

print(environment_report(device=device))
paths = notebook_paths(artifacts, out_dir, data_root, checkpoint, dataset, smoke)
paths

# %% [markdown]
# `nortonkit/configs/synthetic_stage1.yaml` re-rooted at this notebook's artifacts (why these values: `data_recipes/SYNTHETIC.md`). When papermill passes a `checkpoint` (e.g. the released VideoCLIP or Norton weights), training is skipped and that checkpoint is used instead.

# %%
import pandas as pd

from nortonkit.lab.reports import pretrain_config
from nortonkit.train.loop import fit

config = pretrain_config(paths, smoke=smoke, seed=seed, device=device, max_steps=max_steps)
run = fit(config) if checkpoint is None else None
log = pd.read_csv(paths.run_dir / "train_log.csv") if run else pd.DataFrame()
val = pd.read_csv(paths.run_dir / "val_log.csv") if run else pd.DataFrame()
log.tail(3)

# %% [markdown]
# Training loss (L_clip, 128 pairs per batch: chance is 2 ln 128 = 9.70) and the held-out in-batch loss and clip R@1 (chance 1/128).

# %%
from nortonkit.lab.viz import plot_training_curves

fig = plot_training_curves(log, ys=("loss_clip",)) if run else None
if fig is not None and len(val):
    ax = fig.axes[0]
    ax.plot(val["step"], val["val_loss"], "o-", ms=3, label="validation loss")
    ax.axhline(9.70, ls=":", color="grey", label="chance (2 ln 128)")
    ax.legend(fontsize=7)

# %%
from nortonkit.lab.evaluate import load_model

model = load_model(paths.checkpoint).model  # a nortonkit run or a released fairseq .pt
if fig is not None:
    fig.savefig(paths.figures / "pretrain_curves.png", dpi=120)
    assert run.step == config.train.max_steps and log["loss"].notna().all()
print("checkpoint:", paths.checkpoint.name, sum(p.numel() for p in model.parameters()) > 0)
