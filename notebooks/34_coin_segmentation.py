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
# What the frame classifier starts from, step by step (the zero-shot variant of Table 4): read the COIN test videos as overlapping windows of seconds, encode every step label's name, score each second's frame token against each label (the video encoder without CLS attention, as the released zero-shot path runs it), and compare the best label per second with the annotation (0 = background).

# %%
import pandas as pd

from nortonkit.data.coin import load_coin
from nortonkit.eval.coin import coin_zero_shot_logits
from nortonkit.eval.common import encode_captions
from nortonkit.lab.evaluate import load_model, resolve_data_root

model = load_model(paths.checkpoint, device, seed).model
coin = load_coin(resolve_data_root(paths.data_root, smoke), subset="testing",
                 expected_dim=model.config.video_feature_dim)
labels = encode_captions(model, coin.label_names[1:], device)  # (steps, H), label 0 = background
video = next(iter(coin))
logits = coin_zero_shot_logits(model, video, labels, device)  # (seconds, steps)
pd.DataFrame({"best label": (logits.argmax(dim=1) + 1).tolist(),
              "annotation": video.video_targets.tolist()}).T.iloc[:, :24]

# %% [markdown]
# Table 4 in one call, `nortonkit.lab.evaluate.run_task('coin')`: a per-frame head fine-tuned on the training videos (on the synthetic corpus a short CPU schedule, `coin_steps` updates; on real data the official COIN schedule), scored by frame accuracy. The same call runs on the real data root with the released checkpoint when papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`.

# %%
from nortonkit.lab.evaluate import run_task, save_results
from nortonkit.lab.reports import beside_paper

results = run_task('coin', checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,), dataset=dataset,
                   **({'steps': coin_steps} if dataset == 'synthetic' and not smoke else {}))
save_results(results, paths.results, 't4_coin', results.attrs.get("meta", {}))
compared = beside_paper(results, dataset)
compared

# %% [markdown]
# With `dataset='real'` the paper's numbers stand beside ours as red marks; on the synthetic corpus they are left out, since numbers measured on other data are not comparable.

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
