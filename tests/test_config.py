"""Training configuration: strict keys and types, presets, overrides, YAML round trips."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from nortonkit.train.config import (
    LossConfig,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    dump_config,
    load_config,
    parse_overrides,
)
from nortonkit.train.presets import (
    ABLATIONS,
    LOSS_PRESETS,
    OFFICIAL,
    PAPER,
    preset_names,
    preset_values,
)

CONFIG_DIR = Path(__file__).resolve().parents[1] / "nortonkit" / "configs"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("optim: {lrr: 1.0e-4}\n", "optim.lrr: unknown config key; did you mean 'lr'?"),
        ("trian: {epochs: 2}\n", "trian: unknown config key; did you mean 'train'?"),
        ("model: {hiden_size: 32}\n", "model.hiden_size: unknown config key; did you mean "
                                      "'hidden_size'?"),
        ("loss: {bucket_quantil: 0.3}\n", "loss.bucket_quantil: unknown config key"),
        ("data: {videos_per_batch: 8, zzz: 1}\n", "data.zzz: unknown config key"),
    ],
)
def test_unknown_keys_are_rejected_with_file_key_and_suggestion(tmp_path, text, message):
    path = _write(tmp_path, text)
    with pytest.raises(ValueError) as err:
        load_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)
    assert "known keys:" in str(err.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.lr=fast", "optim.lr: expected a number, got 'fast'"),
        ("train.negatives=all", "train.negatives: expected one of 'local', 'global', got 'all'"),
        ("train.epochs=2.5", "train.epochs: expected an integer, got 2.5"),
        ("loss.renormalize=1", "loss.renormalize: expected true/false, got 1"),
        ("optim.betas=[0.9]", "optim.betas: expected a list of a number, a number, got [0.9]"),
        ("retrieval.mode=random", "retrieval.mode: expected one of 'off', 'fixed', 'videoclip'"),
        ("model.num_heads=5", "model: num_heads: expected a divisor of hidden_size=768, got 5"),
        ("preset=nortn", "preset: unknown preset 'nortn'; did you mean 'norton'?"),
        ("optim=3", "optim: expected a mapping, got int"),
    ],
)
def test_ill_typed_values_are_rejected(override, message):
    with pytest.raises(ValueError) as err:
        load_config(None, [override])
    assert message in str(err.value)


def test_yaml_off_is_the_string_off(tmp_path):
    # YAML 1.1 reads `off` as False; a Literal field with the choice "off" takes it back
    cfg = load_config(_write(tmp_path, "retrieval: {mode: off}\n"), ["train.negatives=local"])
    assert cfg.retrieval.mode == "off"
    assert load_config(None, ["retrieval.mode=off"]).retrieval.mode == "off"
    with pytest.raises(ValueError, match="train.negatives: expected one of 'local', 'global', "
                                         "got True"):
        load_config(None, ["train.negatives=yes"])


def test_override_syntax_errors():
    with pytest.raises(ValueError, match="override 'optim.lr': expected key=value"):
        parse_overrides(["optim.lr"])
    with pytest.raises(ValueError, match="is both a value and a section"):
        parse_overrides(["optim=1", "optim.lr=2"])


def test_missing_or_broken_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_config(_write(tmp_path, "optim: {lr: [1\n"))
    with pytest.raises(ValueError, match="expected a mapping at the top level, got list"):
        load_config(_write(tmp_path, "- 1\n- 2\n"))


def test_precedence_defaults_preset_file_overrides(tmp_path):
    path = _write(tmp_path, "preset: norton-official\nloss: {beta: 0.5}\noptim: {lr: 2.0e-5}\n")
    cfg = load_config(path, ["optim.lr=3e-5", "loss.video_eps=0.2"])
    assert cfg.preset == "norton-official"
    assert cfg.loss.bucket_marginals == "superglue"  # from the preset
    assert cfg.loss.beta == 0.5  # the file wins over the preset
    assert cfg.optim.lr == 3e-5  # the override wins over the file
    assert cfg.loss.video_eps == 0.2
    assert cfg.optim.betas == (0.9, 0.98)  # dataclass default
    assert cfg.model.trainable == "layernorm_only"  # preset sets model keys too
    assert cfg.model.seq_logit_scale_learnable is False
    # an override can switch the preset, and the file's explicit keys still win
    cfg2 = load_config(path, ["preset=videoclip"])
    assert cfg2.loss.video_weight == 0.0 and cfg2.loss.beta == 0.5


def test_configs_are_frozen_and_typed():
    cfg = config_from_dict({"model": {"preset": "tiny"}, "optim": {"lr": 1}})
    assert isinstance(cfg, TrainConfig)
    assert cfg.optim.lr == 1.0 and isinstance(cfg.optim.lr, float)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.optim.lr = 2.0  # type: ignore[misc]
    # every field of every section has a default (a bare file is a valid config)
    for section in (cfg.loss, cfg.optim, cfg.data, cfg.retrieval, cfg.train):
        for f in dataclasses.fields(section):
            assert f.default is not dataclasses.MISSING or f.default_factory is not None


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_resolves_and_round_trips(tmp_path, name):
    cfg = config_from_dict({"preset": name, "model": {"preset": "tiny"}})
    assert cfg.preset == name
    for key, value in LOSS_PRESETS[name]["loss"].items():
        assert getattr(cfg.loss, key) == value, (name, key)
    for key, value in LOSS_PRESETS[name]["model"].items():
        assert getattr(cfg.model, key) == value, (name, key)
    again = load_config(dump_config(cfg, tmp_path / "config.yaml"))
    assert again == cfg
    assert config_to_dict(again) == config_to_dict(cfg)


def test_paper_table7_ablation_definitions():
    # A, B: no L_video; A without FNE, B with it (Norton Table 7 and Sec. 4.3)
    assert preset_values("A")["loss"]["video_weight"] == 0.0
    assert preset_values("A")["loss"]["beta"] == 0.0
    assert preset_values("B")["loss"]["video_weight"] == 0.0
    assert preset_values("B")["loss"]["beta"] == 0.3
    # C-J: FNE + lambda = 0.1 L_video
    for row in "CDEFGHIJ":
        loss = preset_values(row)["loss"]
        assert loss["beta"] == 0.3 and loss["video_weight"] == 0.1, row
    # C: vanilla OT on mean-pooled embeddings; D-G: soft maximum alpha, vanilla OT
    assert preset_values("C")["loss"]["similarity"] == "mean"
    assert preset_values("C")["loss"]["measure"] == "ot"
    alphas = {row: preset_values(row)["loss"]["lse_temperature"] for row in "DEFG"}
    assert alphas == {"D": 0.001, "E": 0.1, "F": 0.2, "G": 1.0}
    assert all(preset_values(r)["loss"]["measure"] == "ot" for r in "DEFG")
    # H, I, J: the prompt bucket at the bottom 10 %, 50 %, 30 %
    quantiles = {row: preset_values(row)["loss"]["bucket_quantile"] for row in "HIJ"}
    assert quantiles == {"H": 0.1, "I": 0.5, "J": 0.3}
    assert all(preset_values(r)["loss"]["measure"] == "ot_bucket" for r in "HIJ")
    # J is Norton; every row exists on both families
    assert preset_values("J") == preset_values("norton") == preset_values("norton-paper")
    assert preset_values("J-official") == preset_values("norton-official")
    assert set(ABLATIONS) == set("ABCDEFGHIJ")
    for row in ABLATIONS:
        assert preset_values(f"{row}-official")["model"]["trainable"] == "layernorm_only"


def test_paper_and_official_families_differ_where_the_sources_disagree():
    paper, official = PAPER["loss"], OFFICIAL["loss"]
    differing = {k for k in paper if paper[k] != official[k]}
    assert differing == {"clip_normalize", "bucket_marginals", "renormalize", "lse_mask_mode",
                         "fusion_weight", "minmax"}
    assert official["fusion_weight"] == 0.5 and paper["fusion_weight"] == 0.0
    assert PAPER["model"]["seq_logit_scale_learnable"] is True
    assert OFFICIAL["model"]["seq_logit_scale_learnable"] is False  # frozen at 1/0.07
    assert OFFICIAL["model"]["clip_logit_scale"] is None  # raw dot products in L_clip
    assert PAPER["model"]["clip_logit_scale"] == "learnable"
    # the shared hyper-parameters of the paper (App. A)
    for fam in (paper, official):
        assert (fam["video_weight"], fam["beta"], fam["video_eps"], fam["fne_eps"],
                fam["n_iters"], fam["seq_len"], fam["bucket_quantile"]) == (
                    0.1, 0.3, 0.1, 1.0, 50, 8, 0.3)
    assert preset_values("videoclip-official")["model"]["trainable"] == "all"
    assert preset_values("tempclr")["loss"]["measure"] == "dtw"
    # every preset only names real LossConfig fields
    names = {f.name for f in dataclasses.fields(LossConfig)}
    for preset in LOSS_PRESETS.values():
        assert set(preset["loss"]) <= names


@pytest.mark.parametrize("path", sorted(CONFIG_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    cfg = load_config(path)
    assert cfg.data.clips_per_video % cfg.loss.seq_len == 0


def test_shipped_config_set():
    names = {p.name for p in CONFIG_DIR.glob("*.yaml")}
    assert {"tiny_synthetic.yaml", "gpu_smoke.yaml"} <= names
    gpu = load_config(CONFIG_DIR / "gpu_smoke.yaml")
    assert (gpu.data.videos_per_batch, gpu.data.clips_per_video) == (64, 16)
    assert (gpu.model.hidden_size, gpu.model.video_layers, gpu.model.text_layers) == (768, 6, 12)
    assert gpu.model.text_init == "random"
