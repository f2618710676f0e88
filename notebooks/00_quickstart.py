# %% [markdown]
# # Quickstart: Norton's operations on one synthetic video
#
# > Similarity, DTW, optimal transport and the prompt bucket in five cells.
#
# **Type:** tutorial
#
# **Inputs:** nothing (an in-memory synthetic video)
#
# **Outputs:** three figures under `{out_dir}/figures/`

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
# A narrated video from the synthetic generator, with noisy captions: some are irrelevant, some are spoken before or after their step (Norton Sec. 1).

# %%
from nortonkit.synthetic.example import synthetic_example
from nortonkit.lab.explore import explore_alignment
from nortonkit.lab.explore_examples import example_from_synthetic

video = synthetic_example(seed=seed, n_steps=5)
example = example_from_synthetic(video)
result = explore_alignment(example, alpha=1.0, bucket_quantile=0.3, eps=0.1)
print(len(video.captions), "captions;", int((video.aligned_step_per_caption < 0).sum()),
      "irrelevant")

# %% [markdown]
# Clip-caption similarity (Eq. 5) and the DTW path on the cost `-similarity`.

# %%
from nortonkit.lab.viz import plot_alignment_path, plot_plan, plot_similarity

fig_sim = plot_similarity(result.similarity, example.clip_labels, example.caption_labels)
fig_dtw = plot_alignment_path(-result.similarity, result.dtw_path, truth=example.truth)

# %% [markdown]
# Norton's plan with the alignable prompt bucket (Eq. 6): the right column and the bottom row are the mass each clip and caption sends to the bucket. Red outlines mark the true pairs.

# %%
fig_plan = plot_plan(result.bucket_plan, truth=example.truth, row_bucket=result.clip_to_bucket,
                     col_bucket=result.caption_to_bucket, title="plan with prompt bucket")
result.agreement

# %% [markdown]
# A fixed 2 x 2 problem: entropic OT (Eq. 2-3) has uniform marginals and puts its mass on the diagonal; DTW of the identity path costs the trace.

# %% keep_output=true
# NBVAL_CHECK_OUTPUT
import torch

from nortonkit.alignment import dtw
from nortonkit.transport import sinkhorn

scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
plan = sinkhorn(scores, eps=0.5, n_iters=100).plan
print([round(x, 4) for x in plan.sum(1).tolist()], round(float(plan[0, 0]), 4))
print(round(float(dtw(-scores[None]).cost[0]), 4))

# %%
for name, fig in {"quickstart_similarity": fig_sim, "quickstart_dtw": fig_dtw,
                  "quickstart_plan": fig_plan}.items():
    fig.savefig(paths.figures / f"{name}.png", dpi=120)
assert abs(float(plan.sum()) - 1.0) < 1e-5
assert (paths.figures / "quickstart_plan.png").is_file()
