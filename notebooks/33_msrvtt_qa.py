# %% [markdown]
# # MSR-VTT multiple-choice VideoQA
#
# > Zero-shot choice accuracy.
#
# **Type:** how-to
#
# **Inputs:** the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at `paths.data_root`
#
# **Outputs:** `results/t6_msrvtt_qa.csv` + `.json` under `artifacts`, a figure under `{out_dir}/figures/`

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
# Norton Table 6 (zero-shot) step by step: read each question's first 16 s of video and its candidate answers, encode the video and every candidate (77 word pieces, as the QA configuration allows), score the candidates by the dot product with the pooled video, and count the questions whose true answer scores highest (ties against the model in `corrected`, broken as the released evaluation does in `official-compatible`).

# %%
from nortonkit.data.msrvtt import load_msrvtt_qa
from nortonkit.eval.msrvtt import qa_scores
from nortonkit.lab.evaluate import load_model, resolve_data_root
from nortonkit.metrics import choice_accuracy

model = load_model(paths.checkpoint, device, seed).model
qa = load_msrvtt_qa(resolve_data_root(paths.data_root, smoke), max_video_len=16,
                    expected_dim=model.config.video_feature_dim)
scores = qa_scores(model, qa, device)  # (questions, candidates)
steps = {ties: 100 * choice_accuracy(scores, qa.answers, ties=ties)
         for ties in ("pessimistic", "official")}
steps

# %% [markdown]
# The same accuracy in one call, `nortonkit.lab.evaluate.run_task('msrvtt_qa')` (Norton Table 6). The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.reports import beside_paper

results = run_task('msrvtt_qa', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,))
save_results(results, paths.results, 't6_msrvtt_qa', results.attrs.get("meta", {}))
compared = beside_paper(results, dataset)
compared

# %% [markdown]
# With `dataset='real'` the paper's numbers stand beside ours as red marks; on the synthetic corpus they are left out, since numbers measured on other data are not comparable.

# %%
from nortonkit.lab.reports import paper_bars
from nortonkit.lab.viz import plot_recall_bars

ours, paper = paper_bars(compared)
fig = plot_recall_bars(ours, paper, title='T6: MSR-VTT QA')

# %%
fig.savefig(paths.figures / "t6_msrvtt_qa.png", dpi=120)
assert (paths.results / "t6_msrvtt_qa.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
assert results["value"].tolist() == list(steps.values())  # the steps above
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))
