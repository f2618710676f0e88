"""Bad input and data loss: a synthetic corpus of another configuration is never replaced
silently, numeric config options out of range name their key, and a truncated ``.npy`` feature
file names the file."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import math
import subprocess
import sys
import typing
from pathlib import Path

import numpy as np
import pytest
from conftest import tiny_corpus_config as tiny

from nortonkit.data.features import load_feature
from nortonkit.data.howto100m import ShardedFeatures, write_feature_shards
from nortonkit.data.layout import DataRoot
from nortonkit.io import load_npy
from nortonkit.lab.evaluate import check_data_root
from nortonkit.synthetic import corpus
from nortonkit.synthetic.config import SyntheticConfig, _config_record
from nortonkit.synthetic.corpus import CorpusMismatchError, generate_corpus, load_manifest
from nortonkit.train.cli import main as train_main
from nortonkit.train.config import (
    DataConfig,
    LossConfig,
    OptimConfig,
    RetrievalConfig,
    RunConfig,
    config_from_dict,
    load_config,
)
from nortonkit.train.loop import fit, prepare_synthetic_corpus
from nortonkit.train.presets import preset_names

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "nortonkit" / "configs").glob("*.yaml"))
SCRIPT = REPO / "data_recipes" / "synthetic.py"
HIDDEN = (corpus._NEW_NAME, corpus._OLD_NAME, corpus._PARTIAL_NAME)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the hash of its bytes."""
    return {str(p.relative_to(root)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def load_script():
    spec = importlib.util.spec_from_file_location("synthetic_recipe", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def script():
    return load_script()


@pytest.fixture
def scale4(tmp_path, script, capsys) -> Path:
    """A corpus made as a user would: ``synthetic.py --out D --size smoke --scale 4``."""
    out = tmp_path / "D"
    assert script.main(["--out", str(out), "--size", "smoke", "--scale", "4", "--quiet"]) == 0
    capsys.readouterr()
    return out


# ----------------------------------------------------------------------------- corpus: script


def test_script_refuses_a_corpus_of_another_configuration(scale4, script, capsys):
    before = snapshot(scale4)
    assert script.main(["--out", str(scale4), "--size", "smoke", "--scale", "6", "--seed", "2",
                        "--quiet"]) == 2
    err = capsys.readouterr().err
    assert f"--out: {scale4} already holds a synthetic corpus of another configuration" in err
    assert "existing:  size=smoke scale=4 seed=0 (4 HowTo100M-like training videos" in err
    assert "requested: size=smoke scale=6 seed=2 (6 HowTo100M-like training videos)" in err
    assert "how2_train: 4 vs 6; seed: 0 vs 2" in err
    assert "Use --overwrite to replace it on purpose" in err
    assert snapshot(scale4) == before
    assert not any((scale4 / name).exists() for name in HIDDEN)


def test_script_refusal_from_the_command_line(scale4):
    """The issue's commands: the second run exits 2 and leaves the 4 videos there."""
    run = subprocess.run([sys.executable, str(SCRIPT), "--out", str(scale4), "--size", "smoke",
                          "--quiet"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "existing:  size=smoke scale=4 seed=0" in run.stderr
    assert "requested: size=smoke seed=0 (48 HowTo100M-like training videos)" in run.stderr
    assert "--overwrite" in run.stderr and "Traceback" not in run.stderr
    assert load_manifest(scale4)["counts"]["how2_train_videos"] == 4


def test_script_overwrite_replaces_on_purpose(scale4, script, capsys):
    (scale4 / "notes.txt").write_text("mine")
    assert script.main(["--out", str(scale4), "--size", "smoke", "--scale", "6", "--overwrite",
                        "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "replacing the corpus size=smoke scale=4 seed=0" in out
    m = load_manifest(scale4)
    assert m["config"]["how2_train"] == 6 and m["counts"]["how2_train_videos"] == 6
    assert len(DataRoot(scale4).how2_list("train").read_text().split()) == 6
    assert (scale4 / "notes.txt").read_text() == "mine"  # other files are kept
    assert not any((scale4 / name).exists() for name in HIDDEN)
    # same arguments again: nothing to do
    assert script.main(["--out", str(scale4), "--size", "smoke", "--scale", "6", "--quiet"]) == 0
    assert "already up to date" in capsys.readouterr().out


# ----------------------------------------------------------------------------- corpus: library


def test_generate_corpus_refuses_and_names_both_configurations(tmp_path):
    out = tmp_path / "c"
    generate_corpus(out, tiny(0), progress=False)
    before = snapshot(out)
    with pytest.raises(CorpusMismatchError) as info:
        generate_corpus(out, tiny(0, how2_train=5), progress=False)
    e = info.value
    assert isinstance(e, ValueError)
    assert e.differences == ["how2_train: 6 vs 5"]
    text = str(e)
    assert f"out_dir: {out} already holds a synthetic corpus of another configuration" in text
    assert "a custom config (seed=0, how2_train=6)" in text
    assert "a custom config (seed=0, how2_train=5)" in text
    assert "Use overwrite=True to replace it on purpose" in text
    assert snapshot(out) == before


def test_another_generator_version_is_refused_too(tmp_path):
    out = tmp_path / "c"
    generate_corpus(out, tiny(0), progress=False)
    m = json.loads((out / "manifest.json").read_text())
    m["generator_version"] = "0"
    (out / "manifest.json").write_text(json.dumps(m))
    before = snapshot(out)
    with pytest.raises(CorpusMismatchError, match=r"existing:  a custom config \(seed=0, "
                       r"how2_train=6\) \(generator version 0\)"):
        generate_corpus(out, tiny(0), progress=False)
    assert snapshot(out) == before


def test_a_replacement_killed_half_way_leaves_the_old_corpus(tmp_path, monkeypatch):
    out = tmp_path / "c"
    generate_corpus(out, tiny(0), progress=False)
    before = snapshot(out)

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(corpus, "_write_coin", killed)  # the name corpus._write_into calls
    with pytest.raises(KeyboardInterrupt):
        generate_corpus(out, tiny(1), progress=False, overwrite=True)
    # the old corpus is complete and untouched; only the hidden work folder is left
    assert {k: v for k, v in snapshot(out).items() if not k.startswith(corpus._NEW_NAME)} == before
    assert load_manifest(out)["config"]["seed"] == 0
    monkeypatch.undo()
    generate_corpus(out, tiny(1), progress=False, overwrite=True)
    assert load_manifest(out)["config"]["seed"] == 1
    assert not any((out / name).exists() for name in HIDDEN)


# ----------------------------------------------------------------------------- corpus: training


def test_training_uses_the_corpus_that_is_there_and_says_so(scale4):
    """tiny_synthetic.yaml asks for the 800-video default; the 4-video corpus stays."""
    before = snapshot(scale4)
    cfg = load_config(REPO / "nortonkit" / "configs" / "tiny_synthetic.yaml",
                      [f"data.root={scale4}", "train.progress=false"])
    assert cfg.data.synthetic == "default"
    lines: list[str] = []
    prepare_synthetic_corpus(cfg, log=lines.append)
    assert len(lines) == 1
    assert lines[0].startswith(f"data.root: {scale4} holds the synthetic corpus size=smoke "
                               "scale=4 seed=0, not the size=default seed=0 that "
                               "data.synthetic=default data.synthetic_seed=0 asks for; "
                               "training on the corpus that is there")
    assert f"--out {scale4} --size default --seed 0 --overwrite" in lines[0]
    assert snapshot(scale4) == before


def test_training_generates_the_corpus_on_first_use(tmp_path):
    root = tmp_path / "data"
    cfg = config_from_dict({"data": {"root": str(root), "synthetic": "smoke"},
                            "train": {"progress": False}})
    lines: list[str] = []
    prepare_synthetic_corpus(cfg, log=lines.append)
    assert lines == []
    assert load_manifest(root)["config"] == _config_record(SyntheticConfig.preset("smoke"))
    stamp = (root / "manifest.json").stat().st_mtime_ns
    prepare_synthetic_corpus(cfg, log=lines.append)  # second use: nothing written, no line
    assert lines == [] and (root / "manifest.json").stat().st_mtime_ns == stamp


# ----------------------------------------------------------------------------- numeric options


@pytest.mark.parametrize(("override", "message"), [
    ("optim.lr=-1", "optim.lr: expected a finite number > 0, got -1.0"),
    ("optim.lr=0", "optim.lr: expected a finite number > 0, got 0.0"),
    ("optim.lr=.nan", "optim.lr: expected a finite number > 0, got nan"),
    ("optim.lr=.inf", "optim.lr: expected a finite number > 0, got inf"),
    ("optim.eps=0", "optim.eps: expected a finite number > 0, got 0.0"),
    ("optim.betas=[0.9,1.0]", "optim.betas: expected two numbers in [0, 1) (Adam beta1, beta2), "
                              "got [0.9, 1.0]"),
    ("optim.weight_decay=-0.1", "optim.weight_decay: expected a finite number >= 0, got -0.1"),
    ("optim.warmup_updates=-1", "optim.warmup_updates: expected an integer >= 0, got -1"),
    ("optim.total_num_update=0", "optim.total_num_update: expected an integer >= 1, got 0"),
    ("optim.clip_norm=-1", "optim.clip_norm: expected a finite number >= 0, got -1.0"),
    ("optim.end_lr=1", "optim.end_lr: expected <= optim.lr = 2e-05 (the rate decays to it), "
                       "got 1.0"),
    ("optim.warmup_updates=2000000", "optim.total_num_update: expected more than "
                                     "optim.warmup_updates = 2000000, got 1000000"),
    ("loss.beta=1.5", "loss.beta: expected a number in [0, 1], got 1.5"),
    ("loss.video_eps=0", "loss.video_eps: expected a finite number > 0, got 0.0"),
    ("loss.fne_eps=-1", "loss.fne_eps: expected a finite number > 0, got -1.0"),
    ("loss.bucket_quantile=1", "loss.bucket_quantile: expected a number in the open interval "
                               "(0, 1), got 1.0"),
    ("loss.lse_temperature=0", "loss.lse_temperature: expected a finite number > 0, got 0.0"),
    ("loss.video_weight=-0.1", "loss.video_weight: expected a finite number >= 0, got -0.1"),
    ("loss.n_iters=0", "loss.n_iters: expected an integer >= 1, got 0"),
    ("loss.chunk_size=0", "loss.chunk_size: expected null or an integer >= 1, got 0"),
    ("data.videos_per_batch=0", "data.videos_per_batch: expected an integer >= 1, got 0"),
    ("data.num_workers=-1", "data.num_workers: expected an integer >= 0, got -1"),
    ("data.min_clip_len=20", "data.min_clip_len: expected <= data.max_clip_len = 16, got 20"),
    ("data.max_len=19", "data.max_len: expected >= data.max_video_len + 4 = 20"),
    ("data.synthetic_seed=-1", "data.synthetic_seed: expected an integer >= 0, got -1"),
    ("retrieval.n_candidates=0", "retrieval.n_candidates: expected an integer >= 1, got 0"),
    ("retrieval.start_epoch=0", "retrieval.start_epoch: expected an integer >= 1, got 0"),
    ("train.epochs=0", "train.epochs: expected an integer >= 1, got 0"),
    ("train.max_steps=0", "train.max_steps: expected null or an integer >= 1, got 0"),
    ("train.keep_last=-1", "train.keep_last: expected an integer >= 0, got -1"),
    ("train.threads=0", "train.threads: expected null or an integer >= 1, got 0"),
])
def test_numeric_option_out_of_range_names_the_key(tmp_path, override, message):
    path = tmp_path / "run.yaml"
    path.write_text("optim: {lr: 2.0e-5}\n")
    with pytest.raises(ValueError) as info:
        load_config(path, [override])
    assert str(info.value).startswith(f"{path}: {message}")


def test_both_loss_weights_zero_is_refused():
    with pytest.raises(ValueError, match=r"^loss.clip_weight: expected loss.clip_weight or "
                       r"loss.video_weight > 0 \(both 0 leave nothing to train\), got 0.0 and 0.0"):
        config_from_dict({"loss": {"clip_weight": 0, "video_weight": 0}})


SECTIONS = {"loss": LossConfig, "optim": OptimConfig, "data": DataConfig,
            "retrieval": RetrievalConfig, "train": RunConfig}


def _numeric_fields():
    for section, cls in SECTIONS.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            args = typing.get_args(hints[f.name]) or (hints[f.name],)
            if typing.get_origin(hints[f.name]) is tuple:
                yield f"{section}.{f.name}", [float("nan")] * len(args)
            elif float in args:
                yield f"{section}.{f.name}", float("nan")
            elif int in args:
                yield f"{section}.{f.name}", -1


@pytest.mark.parametrize(("key", "bad"), list(_numeric_fields()))
def test_every_numeric_option_is_range_checked(key, bad):
    section, name = key.split(".")
    with pytest.raises(ValueError) as info:
        config_from_dict({section: {name: bad}})
    assert str(info.value).startswith(f"{key}: expected ")


def test_the_numeric_fields_are_found():
    keys = {k for k, _ in _numeric_fields()}
    assert {"optim.lr", "optim.betas", "train.max_steps", "loss.chunk_size"} <= keys
    assert not {"loss.similarity_precision", "data.root", "train.resume"} & keys
    assert len(keys) >= 40


def test_training_cli_reports_the_key_not_a_traceback(capsys):
    with pytest.raises(SystemExit) as info:
        train_main(["--config", str(REPO / "nortonkit" / "configs" / "tiny_synthetic.yaml"),
                    "optim.lr=-1"])
    assert info.value.code == 2
    assert "tiny_synthetic.yaml: optim.lr: expected a finite number > 0, got -1.0" in \
        capsys.readouterr().err


def test_fit_checks_configs_built_without_load_config(tmp_path):
    cfg = config_from_dict({"train": {"out_dir": str(tmp_path / "run")}})
    bad = dataclasses.replace(cfg, optim=dataclasses.replace(cfg.optim, lr=-1.0))
    with pytest.raises(ValueError, match=r"^optim.lr: expected a finite number > 0, got -1.0$"):
        fit(bad)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert math.isfinite(cfg.optim.lr) and cfg.optim.lr > 0


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_loads(name):
    assert config_from_dict({"preset": name}).preset == name


# ----------------------------------------------------------------------------- truncated .npy


@pytest.fixture
def feature_file(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "features" / "abc.npy"
    path.parent.mkdir()
    np.save(path, np.ones((30, 512), np.float16))
    return path, path.read_bytes()


@pytest.mark.parametrize(("keep", "detail"), [
    (500, "its header announces shape (30, 512) float16, 30848 bytes in all, the file has 500 "
          "bytes"),
    (30847, "its header announces shape (30, 512) float16, 30848 bytes in all, the file has "
            "30847 bytes"),
    (60, "its header is incomplete or unreadable (60 bytes; numpy: EOF: reading array header"),
    (4, "it ends inside the .npy magic string (4 bytes)"),
    (0, "the file is empty (0 bytes)"),
])
@pytest.mark.parametrize("mmap", [False, True])
def test_truncated_feature_file_names_the_file(feature_file, keep, detail, mmap):
    path, full = feature_file
    path.write_bytes(full[:keep])
    with pytest.raises(ValueError) as info:
        load_feature(path, 512, mmap=mmap)
    assert str(info.value).startswith(f"{path}: truncated or corrupt .npy file: {detail}")


def test_foreign_files_are_named_and_described(feature_file):
    path, _ = feature_file
    path.write_text("video features\n")
    with pytest.raises(ValueError, match=r"abc.npy: not a .npy file: it starts with "
                       r"b'video '"):
        load_npy(path)
    np.save(path, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"abc.npy: holds a pickled object array"):
        load_npy(path)


def test_truncated_howto100m_shard_names_the_file(tmp_path):
    rng = np.random.default_rng(0)
    write_feature_shards([(v, rng.standard_normal((10, 512)).astype(np.float16)) for v in "ab"],
                         tmp_path, "val")
    data = tmp_path / "val_0_data.npy"
    data.write_bytes(data.read_bytes()[:1000])
    with pytest.raises(ValueError) as info:
        ShardedFeatures(tmp_path, "val")
    assert str(info.value).startswith(f"{data}: truncated or corrupt .npy file: its header "
                                      "announces shape (20, 512) float16")


def test_evaluation_preflight_names_a_truncated_feature_file(tmp_path, feature_file):
    root = DataRoot(tmp_path / "root")
    root.youcook_features.mkdir(parents=True)
    root.youcook_val_pkl.write_bytes(b"")
    root.youcook_annotations.write_text("{}")
    path, full = feature_file
    bad = root.youcook_features / "abc.npy"
    bad.write_bytes(full[:60])
    with pytest.raises(ValueError) as info:
        check_data_root(root, "youcook_clip", {}, feature_dim=512)
    assert str(info.value).startswith(f"{bad}: truncated or corrupt .npy file: its header is "
                                      "incomplete")
