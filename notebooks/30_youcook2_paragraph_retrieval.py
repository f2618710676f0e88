# %% [markdown]
# # YouCookII video-paragraph retrieval
#
# > Cap. Avg., DTW and OTAM, background removed and kept.
#
# **Type:** how-to
#
# **Inputs:** the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at `paths.data_root`
#
# **Outputs:** `results/t1_t2_youcook_paragraph.csv` + `.json` under `artifacts`, a figure under `{out_dir}/figures/`

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
# Norton Table 1 (background removed) step by step: read each YouCookII video's annotated clips and their sentences, encode both with the checkpoint, gather them into one paragraph and one clip sequence per video, score every paragraph against every video with each sequence measure (Cap. Avg., DTW, OTAM, plain OT, Norton's bucketed OT), then rank the videos of each paragraph: R@1/5/10.
#
# Both variants appear: the corrected measures and the official-compatible ones (`nortonkit.compat`), so the effect of the released code's quirks is visible.

# %%
import pandas as pd

from nortonkit.data.youcook import load_youcook_paragraphs
from nortonkit.lab.evaluate import load_model, resolve_data_root
from nortonkit.eval.common import encode_captions, encode_clips, pad_groups
from nortonkit.eval.paragraph import paragraph_rows, paragraph_scores

model = load_model(paths.checkpoint, device, seed).model
par = load_youcook_paragraphs(resolve_data_root(paths.data_root, smoke),
                              expected_dim=model.config.video_feature_dim)
clip_vectors = encode_clips(model, par.clips.video, par.clips.video_mask, device)
caption_vectors = encode_captions(model, par.clips.captions, device)
text, text_mask = pad_groups(caption_vectors, par.blocks)  # (videos, captions, H)
video, video_mask = pad_groups(clip_vectors, par.blocks)  # (videos, clips, H)
scores = paragraph_scores(text, text_mask, video, video_mask, background=False)
steps = pd.DataFrame(paragraph_rows(scores))
steps.pivot_table(index=["measure", "variant"], columns="metric", values="value", sort=False)

# %% [markdown]
# Tables 1 and 2 in one call, `nortonkit.lab.evaluate.run_task('youcook_paragraph')`, saved with its metadata: Table 2 scores 16-s windows of the whole videos, background kept. The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.reports import beside_paper

results = run_task('youcook_paragraph', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,))
save_results(results, paths.results, 't1_t2_youcook_paragraph', results.attrs.get("meta", {}))
compared = beside_paper(results, dataset)
compared

# %% [markdown]
# With `dataset='real'` the paper's numbers stand beside ours as red marks; on the synthetic corpus they are left out, since numbers measured on other data are not comparable.

# %%
from nortonkit.lab.reports import paper_bars
from nortonkit.lab.viz import plot_recall_bars

ours, paper = paper_bars(compared, table='T1', measure='DTW', variant='corrected')
fig = plot_recall_bars(ours, paper, title='T1: DTW, background removed')

# %%
fig.savefig(paths.figures / "t1_t2_youcook_paragraph.png", dpi=120)
assert (paths.results / "t1_t2_youcook_paragraph.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
assert results.query("table == 'T1'")["value"].tolist() == steps["value"].tolist()
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))
