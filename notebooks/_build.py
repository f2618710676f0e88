"""Write the ordered notebooks from this script, so that they stay reviewable as plain Python.

    python notebooks/_build.py            # (re)write every notebook listed here
    python notebooks/_build.py --check    # exit 1 if a committed notebook differs

Cells tagged ``parameters`` are papermill's; cells starting with ``# NBVAL_CHECK_OUTPUT`` carry
their expected output (compared by ``pytest --nbval-lax``). ``50_alignment_explorer.ipynb`` is
authored separately and is not written here.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from nortonkit.io import atomic_write

HERE = Path(__file__).resolve().parent

KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE = {"name": "python", "pygments_lexer": "ipython3", "file_extension": ".py",
            "mimetype": "text/x-python", "nbconvert_exporter": "python",
            "codemirror_mode": {"name": "ipython", "version": 3}}

PARAMETERS = '''\
# Parameters: papermill overrides any of them (`make demo`, `make reproduce`).
data_root = None  # real data root (None: the synthetic corpus under artifacts)
checkpoint = None  # checkpoint to evaluate (None: the one 20_pretrain writes)
device = "cpu"  # "cpu" or "cuda"
dataset = "synthetic"  # "synthetic" or "real"
smoke = False  # True: smoke sizes, seconds per notebook
seed = 0
out_dir = "../reports"  # figures and tables.md
artifacts = "../artifacts"  # corpus, runs and results (gitignored)
profile = "demo"  # study profile of nortonkit.study.PROFILES: "demo" (reduced) or "full"
study_dir = None  # where 40, 55 and 60 write the study (None: {artifacts}/study)'''

SETUP = '''\
from nortonkit.reports import environment_report, notebook_paths

print(environment_report(device=device))
paths = notebook_paths(artifacts, out_dir, data_root, checkpoint, dataset, smoke)
paths'''


def md(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(text.strip())


Cell = nbformat.NotebookNode


def code(src: str, tags: tuple[str, ...] = (), expected: str | None = None) -> Cell:
    cell = nbformat.v4.new_code_cell(src.strip())
    if tags:
        cell.metadata["tags"] = list(tags)
    if expected is not None:  # a deliberate check: nbval-lax compares this output
        cell.metadata["keep_output"] = True
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=expected)]
        cell.execution_count = 1
    return cell


def header(title: str, subtitle: str, kind: str, inputs: str, outputs: str) -> Cell:
    return md(f"# {title}\n\n> {subtitle}\n\n**Type:** {kind}\n\n**Inputs:** {inputs}\n\n"
              f"**Outputs:** {outputs}")


def notebook(cells: list[Cell], extra_parameters: str = "") -> Cell:
    params = PARAMETERS + ("\n" + extra_parameters.strip() if extra_parameters else "")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = KERNEL
    nb.metadata["language_info"] = LANGUAGE
    nb.cells = [cells[0], code(params, tags=("parameters",)), code(SETUP), *cells[1:]]
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"c{i:02d}"
    return nb


def _benchmark(title: str, subtitle: str, task: str, name: str, tables: str, plot: str,
               extra_md: str = "", options: str = "", extra_parameters: str = "") -> Cell:
    """A zero-shot benchmark notebook: run_task on the named checkpoint, paper beside ours."""
    return notebook([
        header(title, subtitle, "how-to",
               "the checkpoint written by `20_pretrain` (or `checkpoint`), the corpus at "
               "`paths.data_root`",
               f"`results/{name}.csv` + `.json` under `artifacts`, a figure under "
               f"`{{out_dir}}/figures/`"),
        md(f"Evaluate with `nortonkit.evaluate.run_task({task!r})` (Norton {tables}). "
           "The same call runs on the real data root with the released checkpoint when "
           "papermill passes `dataset='real'`, `data_root`, `checkpoint` and `device`."
           + (f"\n\n{extra_md.strip()}" if extra_md else "")),
        code(f"""
from nortonkit.evaluate import run_task, save_results
from nortonkit.paper import compare_with_paper

results = run_task({task!r}, checkpoint=paths.checkpoint, data_root=paths.data_root,
                   device=device, smoke=smoke, seeds=(seed,){options})
save_results(results, paths.results, {name!r}, results.attrs.get("meta", {{}}))
compared = compare_with_paper(results)
compared"""),
        md("Ours beside the paper's numbers (red marks). A tiny model trained for minutes on "
           "synthetic data is not expected to match them: the point is the pipeline."),
        code(plot),
        code(f"""
fig.savefig(paths.figures / "{name}.png", dpi=120)
assert (paths.results / "{name}.csv").is_file()
assert results["value"].notna().all() and len(results) > 0
print("all values finite:", bool(results["value"].between(-1e9, 1e9).all()))"""),
    ], extra_parameters=extra_parameters)


def _bars(name: str, title: str, **where: str) -> str:
    filt = ", ".join(f"{k}={v!r}" for k, v in where.items())
    return f"""
from nortonkit.reports import paper_bars
from nortonkit.viz import plot_recall_bars

ours, paper = paper_bars(compared{", " + filt if filt else ""})
fig = plot_recall_bars(ours, paper, title={title!r})"""


def build() -> dict[str, nbformat.NotebookNode]:
    nbs: dict[str, nbformat.NotebookNode] = {}

    nbs["00_quickstart.ipynb"] = notebook([
        header("Quickstart: Norton's operations on one synthetic video",
               "Similarity, DTW, optimal transport and the prompt bucket in five cells.",
               "tutorial", "nothing (an in-memory synthetic video)",
               "three figures under `{out_dir}/figures/`"),
        md("A narrated video from the synthetic generator, with noisy captions: some are "
           "irrelevant, some are spoken before or after their step (Norton Sec. 1)."),
        code("""
from nortonkit.data.synthetic import synthetic_example
from nortonkit.explore import example_from_synthetic, explore_alignment

video = synthetic_example(seed=seed, n_steps=5)
example = example_from_synthetic(video)
result = explore_alignment(example, alpha=1.0, bucket_quantile=0.3, eps=0.1)
print(len(video.captions), "captions;", int((video.aligned_step_per_caption < 0).sum()),
      "irrelevant")"""),
        md("Clip-caption similarity (Eq. 5) and the DTW path on the cost `-similarity`."),
        code("""
from nortonkit.viz import plot_alignment_path, plot_plan, plot_similarity

fig_sim = plot_similarity(result.similarity, example.clip_labels, example.caption_labels)
fig_dtw = plot_alignment_path(-result.similarity, result.dtw_path, truth=example.truth)"""),
        md("Norton's plan with the alignable prompt bucket (Eq. 6): the right column and the "
           "bottom row are the mass each clip and caption sends to the bucket. Red outlines "
           "mark the true pairs."),
        code("""
fig_plan = plot_plan(result.bucket_plan, truth=example.truth, row_bucket=result.clip_to_bucket,
                     col_bucket=result.caption_to_bucket, title="plan with prompt bucket")
result.agreement"""),
        md("A fixed 2 x 2 problem: entropic OT (Eq. 2-3) has uniform marginals and puts its "
           "mass on the diagonal; DTW of the identity path costs the trace."),
        code("""
# NBVAL_CHECK_OUTPUT
import torch

from nortonkit.alignment import dtw
from nortonkit.sinkhorn import sinkhorn

scores = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
plan = sinkhorn(scores, eps=0.5, n_iters=100).plan
print([round(x, 4) for x in plan.sum(1).tolist()], round(float(plan[0, 0]), 4))
print(round(float(dtw(-scores[None]).cost[0]), 4))""",
             expected="[0.5, 0.5] 0.4404\n-2.0\n"),
        code("""
for name, fig in {"quickstart_similarity": fig_sim, "quickstart_dtw": fig_dtw,
                  "quickstart_plan": fig_plan}.items():
    fig.savefig(paths.figures / f"{name}.png", dpi=120)
assert abs(float(plan.sum()) - 1.0) < 1e-5
assert (paths.figures / "quickstart_plan.png").is_file()"""),
    ])

    nbs["10_data_prep.ipynb"] = notebook([
        header("Data preparation", "Generate the synthetic corpus, or check a real data root.",
               "how-to", "`dataset`, `data_root`",
               "the corpus at `{artifacts}/synthetic` (or `synthetic-smoke`); a figure"),
        md("With `dataset='synthetic'` the corpus (HowTo100M-, YouCookII-, MSR-VTT-, COIN- and "
           "HTM-Align-like sets in the released file layout) is generated once; with "
           "`dataset='real'` the data root is only read. `data_recipes/` describes how to "
           "obtain the real files."),
        code("""
from nortonkit.data.layout import DataRoot
from nortonkit.data.synthetic import ensure_corpus, load_manifest

if dataset == "synthetic":
    root = ensure_corpus(paths.data_root, "smoke" if smoke else "default", seed=seed,
                         progress=True)
else:
    root = DataRoot(paths.data_root)
manifest = load_manifest(paths.data_root)
manifest["counts"] if manifest else {"real data root": str(paths.data_root)}"""),
        md("The YouCookII-like evaluation set as the benchmark notebooks read it."),
        code("""
from nortonkit.data.youcook import load_youcook_paragraphs

paragraphs = load_youcook_paragraphs(root)
clips = paragraphs.clips
print(len(paragraphs.video_ids), "videos,", len(clips.captions), "clip-caption pairs")"""),
        code("""
# NBVAL_CHECK_OUTPUT
print(sorted(p.name for p in root.root.iterdir() if p.is_dir()))""",
             expected="['coin', 'ground_truth', 'how2', 'how2-align', 'msrvtt', 'youcook']\n"),
        md("Frame-by-frame cosine similarity of one video: steps show up as bright blocks."),
        code("""
import torch.nn.functional as F

from nortonkit.viz import plot_similarity

feats = F.normalize(clips.video[paragraphs.blocks[0]].flatten(0, 1), dim=-1)
fig = plot_similarity(feats @ feats.T, title="frame self-similarity (first video's clips)")"""),
        code("""
fig.savefig(paths.figures / "data_frame_similarity.png", dpi=120)
assert root.youcook_val_pkl.is_file() and len(clips.captions) > 0
if dataset == "synthetic":
    assert manifest["counts"]["how2_train_videos"] >= 1"""),
    ])

    nbs["20_pretrain.ipynb"] = notebook([
        header("Stage 1: VideoCLIP-style pre-training",
               "The contrastive loss alone (Eq. 8, beta = 0) on the HowTo100M-like corpus: the "
               "synthetic VideoCLIP checkpoint every method post-trains from.",
               "how-to", "the corpus at `paths.data_root` (from `10_data_prep`)",
               "the named checkpoint `{artifacts}/runs/pretrain/checkpoint_last` that "
               "notebooks 30-60 start from, training logs, a figure"),
        md("`nortonkit/configs/synthetic_stage1.yaml` re-rooted at this notebook's artifacts "
           "(why these values: `data_recipes/SYNTHETIC.md`). When papermill passes a "
           "`checkpoint` (e.g. the released VideoCLIP or Norton weights), training is skipped "
           "and that checkpoint is used instead."),
        code("""
import pandas as pd

from nortonkit.reports import pretrain_config
from nortonkit.train import fit

config = pretrain_config(paths, smoke=smoke, seed=seed, device=device, max_steps=max_steps)
run = fit(config) if checkpoint is None else None
log = pd.read_csv(paths.run_dir / "train_log.csv") if run else pd.DataFrame()
val = pd.read_csv(paths.run_dir / "val_log.csv") if run else pd.DataFrame()
log.tail(3)"""),
        md("Training loss (L_clip, 128 pairs per batch: chance is 2 ln 128 = 9.70) and the "
           "held-out in-batch loss and clip R@1 (chance 1/128)."),
        code("""
from nortonkit.viz import plot_training_curves

fig = plot_training_curves(log, ys=("loss_clip",)) if run else None
if fig is not None and len(val):
    ax = fig.axes[0]
    ax.plot(val["step"], val["val_loss"], "o-", ms=3, label="validation loss")
    ax.axhline(9.70, ls=":", color="grey", label="chance (2 ln 128)")
    ax.legend(fontsize=7)"""),
        code("""
from nortonkit.evaluate import load_model

model = load_model(paths.checkpoint).model  # a nortonkit run or a released fairseq .pt
if fig is not None:
    fig.savefig(paths.figures / "pretrain_curves.png", dpi=120)
    assert run.step == config.train.max_steps and log["loss"].notna().all()
print("checkpoint:", paths.checkpoint.name, sum(p.numel() for p in model.parameters()) > 0)"""),
    ], extra_parameters="max_steps = None  # updates of stage 1 (None: the yaml's 300)")

    nbs["30_youcook2_paragraph_retrieval.ipynb"] = _benchmark(
        "YouCookII video-paragraph retrieval", "Cap. Avg., DTW and OTAM, background removed "
        "and kept.", "youcook_paragraph", "t1_t2_youcook_paragraph", "Tables 1 and 2",
        _bars("t1_t2_youcook_paragraph", "T1: DTW, background removed", table="T1",
              measure="DTW", variant="corrected"),
        extra_md="Both variants appear: the corrected measures and the official-compatible "
                 "ones (`nortonkit.compat`), so the effect of the released code's quirks is "
                 "visible.")
    nbs["31_youcook2_clip_retrieval.ipynb"] = _benchmark(
        "YouCookII clip-caption retrieval", "Caption -> clip recall, zero-shot.",
        "youcook_clip", "t3_youcook_clip", "Table 3", _bars("t3", "T3: clip retrieval"))
    nbs["32_msrvtt_retrieval.ipynb"] = _benchmark(
        "MSR-VTT text-to-video retrieval", "Zero-shot recall on the JSFUSION-like test set.",
        "msrvtt_retrieval", "t5_msrvtt_retrieval", "Table 5",
        _bars("t5", "T5: MSR-VTT retrieval"))
    nbs["33_msrvtt_qa.ipynb"] = _benchmark(
        "MSR-VTT multiple-choice VideoQA", "Zero-shot choice accuracy.", "msrvtt_qa",
        "t6_msrvtt_qa", "Table 6", _bars("t6", "T6: MSR-VTT QA"))
    nbs["34_coin_segmentation.ipynb"] = _benchmark(
        "COIN action segmentation", "Frame accuracy.", "coin", "t4_coin", "Table 4",
        _bars("t4", "T4: COIN frame accuracy"),
        options=",\n                   **({} if smoke else {'steps': coin_steps})",
        extra_parameters="coin_steps = 20  # fine-tuning updates of the per-frame head")
    nbs["35_htm_align.ipynb"] = _benchmark(
        "HTM-Align", "Recall of alignable sentences (32 s windows, 8 s step).", "htm_align",
        "t9_htm_align", "Table 9", _bars("t9", "T9: HTM-Align recall"))
    nbs["40_ablations.ipynb"] = notebook([
        header("Stage 2: every method post-trained from the same checkpoint",
               "VideoCLIP continued, TempCLR, Norton and the Table 7 rows A-J, over seeds, "
               "against linear baselines fitted on the same corpus.", "explanation",
               "the stage-1 checkpoint of `20_pretrain` (or `checkpoint`), the corpus",
               "`{study_dir}/methods_runs.csv`, `methods_summary.csv`, `references.json`, "
               "a figure"),
        md("Norton's recipe (Sec. 4, App. A): start from VideoCLIP and post-train the "
           "LayerNorms only, with the method's loss. Every row here starts from the same "
           "stage-1 checkpoint with the same updates, batches and evaluation "
           "(`nortonkit/configs/synthetic_stage2.yaml`); only the loss preset changes "
           "(`nortonkit.presets`). `trainable = \"all\"` post-trains every parameter. The "
           "references are measured on this corpus: `ridge_asr` (a linear model fitted on "
           "the noisy ASR timestamps), `ridge_true` (the same on the true segments), the "
           "`oracle` text encoder, a linear dual encoder trained with InfoNCE, and the stage-1 "
           "checkpoint itself."),
        code("""
from pathlib import Path

from nortonkit.baselines import youcook_baselines
from nortonkit.evaluate import load_model
from nortonkit.robustness import evaluate_encoder
from nortonkit.study import PROFILES, write_json

study = PROFILES["smoke" if smoke else profile]
out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
stage1 = evaluate_encoder(load_model(paths.checkpoint).model, paths.data_root)
baselines = youcook_baselines(paths.data_root, study.corpus, infonce_steps=5 if smoke else 300)
refs = {m: {"clip_r1": baselines["youcook_clip_r1"][m],
            "paragraph_r1": baselines["youcook_paragraph_dtw_r1"][m]}
        for m in ("ridge_asr", "ridge_true", "oracle", "linear_infonce")}
write_json({"stage1": stage1, "baselines": baselines, "profile": study.name},
           out / "references.json")
study"""),
        code("""
import pandas as pd

from nortonkit.study import run_methods, summarize

work = Path(artifacts) / "runs" / f"stage2-{study.name}-{trainable}"
runs = run_methods(paths.checkpoint, paths.data_root, work, study.methods, study.seeds,
                   study.post_steps, trainable=trainable, workers=study.workers,
                   synthetic=study.corpus if dataset == "synthetic" else None, device=device,
                   smoke=smoke)
if study.all_params_methods:  # the option: every parameter post-trained
    every = run_methods(paths.checkpoint, paths.data_root, work.with_name(work.name + "-all"),
                        study.all_params_methods, study.seeds, study.post_steps,
                        trainable="all", workers=study.workers, device=device, smoke=smoke)
    runs = pd.concat([runs, every.assign(method=every["method"] + " (all params)")])
summary = summarize(runs)
runs.to_csv(out / "methods_runs.csv", index=False)
summary.to_csv(out / "methods_summary.csv", index=False)"""),
        md("The table as the paper prints it: rows are methods, columns the metrics, "
           "mean ± std over seeds (n). Synthetic numbers are not comparable with the paper's "
           "and are not set beside them."),
        code("""
from nortonkit.study import paper_table

paper_table(summary, refs, stage1)"""),
        code("""
import matplotlib.pyplot as plt

from nortonkit.viz import plot_method_bars

label = (f"{study.name} profile: {len(study.seeds)} seeds, {study.post_steps} updates, "
         f"trainable={trainable}")
fig, axes = plt.subplots(1, 2, figsize=(12, 3.8), layout="constrained")
for ax, metric in zip(axes, ("clip_r1", "paragraph_r1")):
    lines = {**{k: v[metric] for k, v in refs.items()}, "stage 1": stage1[metric]}
    plot_method_bars(summary, metric, lines, title=f"{metric} ({label})", ax=ax)"""),
        md("Which of the paper's orderings hold here, and the part of the noisy-to-clean gap "
           "(`ridge_true` - `ridge_asr`) that each method's post-training closes over the "
           "stage-1 checkpoint."),
        code("""
from IPython.display import Markdown

from nortonkit.study import gap_closed, orderings, orderings_markdown

checks = orderings(summary)
Markdown(orderings_markdown(checks))"""),
        code("""
gap_closed(summary, refs, stage1)"""),
        code("""
fig.savefig(paths.figures / "methods.png", dpi=120)
assert runs["value"].between(0, 100).all() and set(study.methods) <= set(runs["method"])
assert (summary["n"] == len(study.seeds)).all()
print("methods x seeds:", len(study.methods), "x", len(study.seeds))"""),
    ], extra_parameters='trainable = "layernorm_only"  # stage-2 parameters: or "all"')
    nbs["45_efficiency.ipynb"] = _benchmark(
        "Efficiency", "Norton Table 8: cost of each loss term per training step.",
        "efficiency", "t8_efficiency", "Table 8",
        "\nfrom nortonkit.viz import plot_recall_bars\n\n"
        "ours = dict(zip(compared['measure'].astype(str), compared['value']))\n"
        "fig = plot_recall_bars(ours, None, title='T8: relative time per step', ylabel='')")

    nbs["55_transport_study.ipynb"] = notebook([
        header("Transport against the ground truth",
               "How accurately DTW, vanilla OT and Norton's bucketed OT align captions with "
               "clips, as each noise knob and alpha, p, eps vary; no training.", "explanation",
               "nothing (in-memory synthetic videos, oracle text embeddings)",
               "`{study_dir}/alignment_accuracy.json`, `transport_runs.csv`, a figure"),
        md("The synthetic world knows which seconds each caption describes and which captions "
           "describe nothing. With the oracle text embedding of each caption and the frame "
           "features of its clip, each method aligns every sequence of K = 8 consecutive "
           "(clip, caption) pairs (`nortonkit.transport_study`). Accuracy: the fraction of "
           "captions with a true clip whose assigned clip is a true one; bucket precision and "
           "recall: of irrelevant captions sent to the bucket. Mean ± std over 5 seeds."),
        code("""
from pathlib import Path

from nortonkit.study import write_json
from nortonkit.transport_study import SMOKE_SWEEP, default_accuracy, transport_sweep

out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
accuracy = default_accuracy(seeds=range(2 if smoke else 5))
write_json(accuracy, out / "alignment_accuracy.json")
runs = transport_sweep(**SMOKE_SWEEP) if smoke else transport_sweep(seeds=range(5))
runs.to_csv(out / "transport_runs.csv", index=False)
accuracy"""),
        code("""
from nortonkit.transport_study import summarize, summary_table

summary = summarize(runs)
summary_table(summary)"""),
        code("""
from IPython.display import Markdown

from nortonkit.transport_study import claims_markdown, paper_claims

Markdown(claims_markdown(paper_claims(summary), n_seeds=runs["seed"].nunique()))"""),
        code("""
from nortonkit.viz import plot_transport_sweep

fig = plot_transport_sweep(runs)
fig.suptitle(f"caption accuracy, mean ± std over {runs['seed'].nunique()} seeds", fontsize=10)
fig.savefig(paths.figures / "transport_study.png", dpi=110)
assert set(accuracy) == {"dtw", "ot", "norton"}"""),
    ])

    nbs["60_noise_robustness.ipynb"] = notebook([
        header("Noise robustness, post-trained from the stage-1 checkpoint",
               "VideoCLIP, TempCLR and Norton post-trained on corpora with more or fewer "
               "irrelevant captions (mean ± std over seeds).", "explanation",
               "the stage-1 checkpoint; corpora generated per level (same world)",
               "`{study_dir}/noise_runs.csv`, a figure"),
        md("Each level of a noise knob gets its own corpus from the same world as stage 1 "
           "(same actions, objects and words), every other knob at its default. Every method "
           "post-trains from the stage-1 checkpoint with the same updates and evaluation; "
           "nothing is tuned to make any method win. The `demo` profile trains nothing here: "
           "it shows the committed `results/` of `make study`, and says so on the plot."),
        code("""
from pathlib import Path

import pandas as pd

from nortonkit.study import PROFILES, noise_sweep, summarize

study = PROFILES["smoke" if smoke else profile]
out = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
if study.noise:
    runs = noise_sweep(paths.checkpoint, Path(artifacts) / "noise" / study.name, study.noise,
                       study.noise_methods,
                       study.seeds, study.post_steps, corpus=study.corpus,
                       workers=study.workers, device=device, smoke=smoke)
    runs.to_csv(out / "noise_runs.csv", index=False)
    source = f"{study.name} profile, run here"
else:
    runs = pd.read_csv(Path("..") / "results" / "noise_runs.csv")
    source = "committed results/noise_runs.csv of make study (not rerun by this profile)"
summary = summarize(runs, by=("knob", "level", "method"))
summary.pivot_table(index=["knob", "level", "metric"], columns="method",
                    values="mean").round(1)"""),
        code("""
import matplotlib.pyplot as plt

from nortonkit.viz import plot_noise_sweep

metrics = ("clip_r1", "paragraph_r1", "align_recall")
knobs = list(dict.fromkeys(runs["knob"]))
fig, axes = plt.subplots(1, len(metrics) * len(knobs), figsize=(13, 3.4), squeeze=False,
                         layout="constrained")
for j, (k, m) in enumerate((k, m) for k in knobs for m in metrics):
    df = runs[(runs["knob"] == k) & (runs["metric"] == m)].rename(columns={"level": k,
                                                                           "value": m})
    plot_noise_sweep(df, k, m, ax=axes[0, j])
fig.suptitle(f"mean ± std over {runs['seed'].nunique()} seeds; {source}", fontsize=9)"""),
        md("Norton against the best other method at each level, by the kit's rule: a "
           "difference is real beyond twice the combined std over seeds."),
        code("""
from nortonkit.study import noise_verdicts

noise_verdicts(summary)"""),
        code("""
fig.savefig(paths.figures / "noise_robustness.png", dpi=120)
assert runs["value"].between(0, 100).all()"""),
    ])

    nbs["90_report.ipynb"] = notebook([
        header("Report: every table, ours beside the paper's",
               "Collects the results of notebooks 30-45 and the noise sweep.", "reference",
               "`{artifacts}/results/*.csv`, `{out_dir}/robustness_summary.csv`",
               "`{out_dir}/tables.md`"),
        code("""
from nortonkit.paper import compare_with_paper
from nortonkit.reports import collect_results

results = collect_results(paths.results)
compared = compare_with_paper(results) if len(results) else results
compared"""),
        code("""
from pathlib import Path

import pandas as pd

from nortonkit.reports import write_tables_md

from nortonkit.study import paper_table, summarize

study = Path(study_dir or f"{artifacts}/study{'-smoke' if smoke else ''}")
methods = study / "methods_runs.csv"
extras = ({"Post-trained methods (mean ± std over seeds)":
           paper_table(summarize(pd.read_csv(methods))).reset_index(names="method")}
          if methods.is_file() else {})
written = write_tables_md(paths.results, paths.tables_md, extras=extras, dataset=dataset)
print(written.read_text()[:1500])"""),
        code("""
text = paths.tables_md.read_text()
assert text.startswith("# ") and (len(results) == 0 or "## T" in text)
print("tables.md written:", paths.tables_md.is_file())"""),
    ])
    return nbs


def main(argv: list[str]) -> int:
    check = "--check" in argv
    stale = []
    for name, nb in build().items():
        path = HERE / name
        text = nbformat.writes(nb) + "\n"
        if check:
            if not path.is_file() or path.read_text() != text:
                stale.append(name)
        else:
            with atomic_write(path, "w") as f:
                f.write(text)
    if stale:
        print("out of date (run python notebooks/_build.py):", ", ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
