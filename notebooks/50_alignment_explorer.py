# %% [markdown]
# # 50 · Alignment explorer
#
# > Move alpha, p, eps and the iteration count; watch the DTW path, the vanilla OT plan and Norton's bucketed plan change.
#
# **Type:** explanation (interactive).
#
# **Purpose.** For one video, show the clip-caption similarity of Norton Eq. 5 and, side by side, the DTW path, the vanilla entropic OT plan (Eq. 2-3) and Norton's plan with the alignable prompt bucket (Eq. 6), with caption texts and clip times on the axes, the mass each clip and caption sends to the bucket (bottom row and right column of the last panel), and the agreement with the ground truth (red outlines) where it is known.
#
# **Inputs** (the `parameters` cell):
# - `data_root=None`: in-memory synthetic videos with ground truth (clean narration, HTM-Align-like noise, asynchronous narration, mostly irrelevant speech). A data root lists its HTM-Align videos instead (the synthetic corpus of `10_data_prep`, or a real copy).
# - `checkpoint=None`: with a data root, encode the videos with this checkpoint (required for real data); without one, the synthetic world's oracle encoder is used.
# - `device`, `dataset` (`"synthetic"`, or `"real"` for the HTM-Align videos of `data_root`), `smoke` (two examples only), `seed`, `out_dir`.
#
# **Outputs:** the explorer (sliders, example picker, the four panels, the agreement table) and `out_dir/alignment_explorer.png`.
#
# **Standalone page:** `.venv/bin/voila notebooks/50_alignment_explorer.ipynb --no-browser`.

# %% tags=["parameters"]
data_root = None  # None: in-memory synthetic videos; or a data root with how2-align/
checkpoint = None  # checkpoint directory (needed for a real data root)
device = "cpu"
dataset = "synthetic"  # "synthetic", or "real" (the HTM-Align videos of data_root)
smoke = False
seed = 0
out_dir = "../reports"  # the saved figure goes here
artifacts = "../artifacts"  # unused here; every notebook takes it (make demo, make reproduce)
profile = "demo"  # study profile (unused here)
study_dir = None  # study folder (unused here)

# %%
from nortonkit.lab.reports import environment_report

print(environment_report(device=device))

# %% [markdown]
# Build the catalogue of examples (built lazily, on first selection) and the explorer. Every slider move and every pick calls `explorer.update`, which calls `nortonkit.lab.widgets.render_explorer` (computation: `nortonkit.lab.explore.explore_alignment`; picture: `nortonkit.lab.viz.plot_explorer`).

# %%
from pathlib import Path

from nortonkit.lab.explore_examples import explorer_examples
from nortonkit.lab.widgets import alignment_explorer

examples = explorer_examples(data_root, checkpoint, dataset, smoke=smoke, seed=seed,
                             device=device)
explorer = alignment_explorer(examples, alpha=1.0, bucket_quantile=0.3, eps=0.1, n_iters=50)
explorer

# %% [markdown]
# Drive the callback as a user would: pick the second example, then lower eps. Setting a control's `value` fires the same observer as a slider move in the browser.

# %%
first_picture = explorer.image.value
explorer.picker.value = list(examples)[1]
explorer.eps.value = 0.05
result = explorer.result
agreement = {k: round(v, 3) for k, v in result.agreement.items()}
agreement

# %% keep_output=true
# NBVAL_CHECK_OUTPUT
print(explorer.example.title, '| Norton accuracy', agreement.get('Norton accuracy'),
      '| bucket mass, unalignable', agreement.get('bucket mass, unalignable'))

# %%
saved = explorer.save(Path(out_dir) / "alignment_explorer.png")
print(saved)

# %%
assert explorer.n_updates >= 3 and explorer.image.value != first_picture
assert saved.stat().st_size > 10_000
for fractions in (result.clip_to_bucket, result.caption_to_bucket):
    assert bool(((fractions >= 0) & (fractions <= 1)).all())
if data_root is None:  # synthetic ground truth: captions with no counterpart lean to the bucket
    assert agreement['bucket mass, unalignable'] > agreement['bucket mass, alignable']
