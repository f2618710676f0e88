# %% [markdown]
# # COIN action segmentation
#
# > Frame accuracy.
#
# **Type:** how-to
#
# **Inputs:** the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at `paths.data_root`
#
# **Outputs:** `results/t4_coin.csv` + `.json` under `artifacts`, a figure under `{out_dir}/figures/`

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
coin_steps = 20  # head updates on the synthetic corpus (real data: the official COIN schedule)

# %%
from nortonkit.lab.reports import environment_report, notebook_paths

print(environment_report(device=device))
paths = notebook_paths(artifacts, out_dir, data_root, checkpoint, dataset, smoke)
paths

# %% [markdown]
# Evaluate with `nortonkit.lab.evaluate.run_task('coin')` (Norton Table 4). The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.paper import compare_with_paper

results = run_task('coin', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,), dataset=dataset,
                   **({'steps': coin_steps} if dataset == 'synthetic' and not smoke else {}))
save_results(results, paths.results, 't4_coin', results.attrs.get("meta", {}))
compared = compare_with_paper(results)
compared

# %% [markdown]
# Ours beside the paper's numbers (red marks). A tiny model trained for minutes on synthetic data is not expected to match them: the point is the pipeline.

# %%
from nortonkit.lab.reports import paper_bars
from nortonkit.lab.viz import plot_recall_bars

ours, paper = paper_bars(compared)
fig = plot_recall_bars(ours, paper, title='T4: COIN frame accuracy')

# %%
fig.savefig(paths.figures / "t4_coin.png", dpi=120)
assert (paths.results / "t4_coin.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))
