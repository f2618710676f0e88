# %% [markdown]
# # YouCookII clip-caption retrieval
#
# > Caption -> clip recall, zero-shot.
#
# **Type:** how-to
#
# **Inputs:** the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at `paths.data_root`
#
# **Outputs:** `results/t3_youcook_clip.csv` + `.json` under `artifacts`, a figure under `{out_dir}/figures/`

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
# Norton Table 3 step by step: read the YouCookII clips with their sentences, encode both with the checkpoint, score every caption against every clip (dot products of the pooled vectors; the truth is the diagonal), then rank: R@1/5/10 and median rank, with ties counted against the model (`corrected`) and broken as the released evaluation does (`official-compatible`).

# %%
import pandas as pd

from nortonkit.data.youcook import load_youcook_clips
from nortonkit.lab.evaluate import load_model, resolve_data_root
from nortonkit.eval.clip import retrieval_rows
from nortonkit.eval.common import encode_captions, encode_clips

model = load_model(paths.checkpoint, device, seed).model
clips = load_youcook_clips(resolve_data_root(paths.data_root, smoke),
                           expected_dim=model.config.video_feature_dim)
video = encode_clips(model, clips.video, clips.video_mask, device)
text = encode_captions(model, clips.captions, device)
scores = text @ video.T  # (captions, clips)
steps = pd.DataFrame(retrieval_rows(scores))
steps.pivot_table(index="variant", columns="metric", values="value")

# %% [markdown]
# The same table in one call, `nortonkit.lab.evaluate.run_task('youcook_clip')`, saved with its metadata (options, checkpoint hash, data root, versions). The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.reports import beside_paper

results = run_task('youcook_clip', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,))
save_results(results, paths.results, 't3_youcook_clip', results.attrs.get("meta", {}))
compared = beside_paper(results, dataset)
compared

# %% [markdown]
# With `dataset='real'` the paper's numbers stand beside ours as red marks; on the synthetic corpus they are left out, since numbers measured on other data are not comparable.

# %%
from nortonkit.lab.reports import paper_bars
from nortonkit.lab.viz import plot_recall_bars

ours, paper = paper_bars(compared)
fig = plot_recall_bars(ours, paper, title='T3: clip retrieval')

# %%
fig.savefig(paths.figures / "t3_youcook_clip.png", dpi=120)
assert (paths.results / "t3_youcook_clip.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
assert results["value"].tolist() == steps["value"].tolist()  # the steps above, row by row
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))
