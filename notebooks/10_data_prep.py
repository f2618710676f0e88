# %% [markdown]
# # Data preparation
#
# > Generate the synthetic corpus, or check a real data root.
#
# **Type:** how-to
#
# **Inputs:** `dataset`, `data_root`
#
# **Outputs:** the corpus at `{artifacts}/synthetic` (or `synthetic-smoke`); a figure

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
# With `dataset='synthetic'` the corpus (HowTo100M-, YouCookII-, MSR-VTT-, COIN- and HTM-Align-like sets in the released file layout) is generated once; with `dataset='real'` the data root is only read. `data_recipes/` describes how to obtain the real files.

# %%
from nortonkit.data.layout import DataRoot
from nortonkit.synthetic.corpus import ensure_corpus, load_manifest

if dataset == "synthetic":
    root = ensure_corpus(paths.data_root, "smoke" if smoke else "default", seed=seed,
                         progress=True)
else:
    root = DataRoot(paths.data_root)
manifest = load_manifest(paths.data_root)
manifest["counts"] if manifest else {"real data root": str(paths.data_root)}

# %% [markdown]
# The YouCookII-like evaluation set as the benchmark notebooks read it.

# %%
from nortonkit.data.youcook import load_youcook_paragraphs

paragraphs = load_youcook_paragraphs(root)
clips = paragraphs.clips
print(len(paragraphs.video_ids), "videos,", len(clips.captions), "clip-caption pairs")

# %% keep_output=true
# NBVAL_CHECK_OUTPUT
print(sorted(p.name for p in root.root.iterdir() if p.is_dir()))

# %% [markdown]
# Frame-by-frame cosine similarity of one video: steps show up as bright blocks.

# %%
import torch.nn.functional as F

from nortonkit.lab.viz import plot_similarity

feats = F.normalize(clips.video[paragraphs.blocks[0]].flatten(0, 1), dim=-1)
fig = plot_similarity(feats @ feats.T, title="frame self-similarity (first video's clips)")

# %%
fig.savefig(paths.figures / "data_frame_similarity.png", dpi=120)
assert root.youcook_val_pkl.is_file() and len(clips.captions) > 0
if dataset == "synthetic":
    assert manifest["counts"]["how2_train_videos"] >= 1
