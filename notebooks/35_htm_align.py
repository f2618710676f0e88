# %% [markdown]
# # HTM-Align
#
# > Recall of alignable sentences (32 s windows, 8 s step).
#
# **Type:** how-to
#
# **Inputs:** the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at `paths.data_root`
#
# **Outputs:** `results/t9_htm_align.csv` + `.json` under `artifacts`, a figure under `{out_dir}/figures/`

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
# Norton Table 9 step by step: for each HTM-Align video, encode its 32-s windows (8-s step) frame by frame and its sentences, average each sentence's cosine with each second over the windows that contain both, and count an alignable sentence as recalled when its best second lies inside its annotated segment (micro-average over sentences).

# %%
from nortonkit.data.htm_align import load_htm_align
from nortonkit.eval.htm_align import htm_align_scores
from nortonkit.lab.evaluate import load_model, resolve_data_root
from nortonkit.metrics import alignment_recall

model = load_model(paths.checkpoint, device, seed).model
data = load_htm_align(resolve_data_root(paths.data_root, smoke),
                      expected_dim=model.config.video_feature_dim)
recalls = [alignment_recall(htm_align_scores(model, video, device)[None], video.segments[None],
                            text_mask=video.alignable[None]) for video in data]
steps = 100 * sum(r.hits for r in recalls) / sum(r.n for r in recalls)  # sentences x seconds
steps

# %% [markdown]
# The same recall, and the ROC AUC of alignable against unalignable sentences, in one call, `nortonkit.lab.evaluate.run_task('htm_align')` (Norton Table 9). The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.reports import beside_paper

results = run_task('htm_align', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,))
save_results(results, paths.results, 't9_htm_align', results.attrs.get("meta", {}))
compared = beside_paper(results, dataset)
compared

# %% [markdown]
# With `dataset='real'` the paper's numbers stand beside ours as red marks; on the synthetic corpus they are left out, since numbers measured on other data are not comparable.

# %%
from nortonkit.lab.reports import paper_bars
from nortonkit.lab.viz import plot_recall_bars

ours, paper = paper_bars(compared)
fig = plot_recall_bars(ours, paper, title='T9: HTM-Align recall')

# %%
fig.savefig(paths.figures / "t9_htm_align.png", dpi=120)
assert (paths.results / "t9_htm_align.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
assert results.query("metric == 'recall'")["value"].tolist() == [steps, steps]  # as above
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))
