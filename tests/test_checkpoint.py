"""Checkpoints: strict fairseq loading, safe unpickling, the converter and our own format."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import types
import typing
from pathlib import Path

import numpy as np
import pytest
import torch
from test_encoders import bert_base_layout

from nortonkit.checkpoint import (
    LEGACY_KEYS,
    capture_rng_state,
    checkpoint_hash,
    infer_config,
    load_any_checkpoint,
    load_checkpoint,
    load_fairseq_checkpoint,
    read_checkpoint_metadata,
    restore_rng_state,
    restore_train_state,
    save_checkpoint,
)
from nortonkit.convert import main as convert_main
from nortonkit.encoders import DualEncoder, EncoderConfig, trainable_parameters
from nortonkit.io import UnsafePickleError

TINY = EncoderConfig(preset="tiny")


def _fairseq_dict(state: dict[str, torch.Tensor], positions: int = 512, **top) -> dict:
    """A fairseq-style checkpoint: fp16 weights under model with the mmmodel. prefix."""
    model = {"mmmodel." + k: v.half() for k, v in state.items() if k != "logit_scale"}
    for key in LEGACY_KEYS:
        model["mmmodel." + key] = torch.arange(positions)[None]
    out = {
        "args": argparse.Namespace(arch="mmfusion", fp16=True, lr=[5e-5]),
        "model": model,
        "optimizer_history": [{"criterion_name": "MMCriterion", "num_updates": 1234}],
        "extra_state": {"metrics": {}},
    }
    out.update(top)
    return out


def _tiny_state(n_classes: int | None = None, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    cfg = EncoderConfig(preset="tiny", n_classes=n_classes)
    return {k: v.clone() for k, v in DualEncoder(cfg).state_dict().items()}


def _batch(b: int = 2, v: int = 4):
    g = torch.Generator().manual_seed(5)
    vfeats = torch.randn(b, v, 512, generator=g)
    vmask = torch.tensor([[True] * v, [True, True] + [False] * (v - 2)])[:b]
    ids = torch.tensor([[101, 2023, 2003, 102, 0, 0], [101, 7592, 2088, 2005, 1037, 102]])[:b]
    return vfeats, vmask, ids, ids != 0


def _assert_same_outputs(a: DualEncoder, b: DualEncoder) -> None:
    a.eval(), b.eval()
    out_a, out_b = a(*_batch()), b(*_batch())
    for x, y in zip((*out_a.video, *out_a.text), (*out_b.video, *out_b.text)):
        assert torch.equal(x, y)


@pytest.fixture
def tiny_pt(tmp_path) -> Path:
    path = tmp_path / "tiny_fairseq.pt"
    torch.save(_fairseq_dict(_tiny_state()), path)
    return path


# ---------------------------------------------------------------------------------------------
# bert-base stand-in: the exact released layout, fp16, mmmodel. prefix, legacy buffers


@pytest.fixture(scope="module")
def bert_base_pt(tmp_path_factory) -> tuple[Path, dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    weights = {}
    for key, shape in bert_base_layout().items():
        w = torch.empty(shape, dtype=torch.float16).normal_(0.0, 0.02, generator=g)
        weights[key] = w + 1.0 if key.endswith("LayerNorm.weight") else w
    path = tmp_path_factory.mktemp("fairseq") / "checkpoint_best.pt"
    torch.save(_fairseq_dict(weights), path)
    return path, weights


@pytest.fixture(scope="module")
def bert_base_loaded(bert_base_pt):
    return load_fairseq_checkpoint(bert_base_pt[0])


@pytest.mark.slow  # bert-base / pretrained weights: seconds, not milliseconds
def test_bert_base_standin_loads_strictly_in_float32(bert_base_pt, bert_base_loaded):
    _, weights = bert_base_pt
    res = bert_base_loaded
    assert set(res.ignored_keys) == set(LEGACY_KEYS)
    assert res.missing_keys == () and res.unexpected_keys == ()
    cfg = res.config
    assert (
        cfg.hidden_size,
        cfg.video_layers,
        cfg.text_layers,
        cfg.num_heads,
        cfg.intermediate_size,
        cfg.n_classes,
    ) == (768, 6, 12, 12, 3072, None)
    sd = res.model.state_dict()
    assert set(sd) == set(weights) | {"logit_scale"}
    for key, w in weights.items():
        assert sd[key].dtype == torch.float32
        assert torch.equal(sd[key], w.float()), key
    assert torch.allclose(sd["logit_scale"].exp(), torch.tensor(1 / 0.07))  # kit-only: init value
    assert not res.model.training
    assert res.metadata["num_updates"] == 1234
    assert res.metadata["args"] == {"arch": "mmfusion", "fp16": True, "lr": [5e-05]}


@pytest.mark.slow  # bert-base / pretrained weights: seconds, not milliseconds
def test_convert_cli_keeps_outputs_identical(bert_base_pt, bert_base_loaded, tmp_path, capsys):
    src, _ = bert_base_pt
    out = tmp_path / "norton_bert_base"
    assert convert_main([str(src), str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    loaded = load_checkpoint(out)
    assert loaded.train_state is None and loaded.config == bert_base_loaded.config
    _assert_same_outputs(bert_base_loaded.model, loaded.model)
    meta = read_checkpoint_metadata(out)
    assert meta["converted_from"]["sha256"] == checkpoint_hash(src)
    assert meta["converted_from"]["num_updates"] == 1234
    assert sorted(meta["converted_from"]["ignored_keys"]) == sorted(LEGACY_KEYS)
    assert meta["fairseq_args"]["arch"] == "mmfusion"


# ---------------------------------------------------------------------------------------------
# Strictness (tiny stand-ins)


def test_tiny_fairseq_roundtrip_and_formats(tmp_path):
    state = _tiny_state()
    ref = DualEncoder(TINY)
    ref.load_state_dict(state)
    for name, obj in {
        "fairseq": _fairseq_dict(state),
        "state_dict": {"state_dict": {k: v for k, v in state.items() if k != "logit_scale"}},
        "bare": {"mmmodel." + k: v for k, v in state.items() if k != "logit_scale"},
    }.items():
        path = tmp_path / f"{name}.pt"
        torch.save(obj, path)
        res = load_fairseq_checkpoint(path, config={"num_heads": 4})
        assert res.metadata["format"] == name and res.config == TINY
        expect = {k: v.half().float() if name == "fairseq" else v for k, v in state.items()}
        got = res.model.state_dict()
        for key in state:
            if key != "logit_scale":
                assert torch.equal(got[key], expect[key]), (name, key)
    # into an existing model
    model = DualEncoder(TINY)
    before = [id(p) for p in model.parameters()]  # an optimizer built earlier stays valid
    res = load_fairseq_checkpoint(tmp_path / "bare.pt", model=model)
    assert res.model is model and [id(p) for p in model.parameters()] == before
    _assert_same_outputs(model, ref)


def test_coin_head_is_inferred(tmp_path):
    path = tmp_path / "coin.pt"
    torch.save(_fairseq_dict(_tiny_state(n_classes=11)), path)
    res = load_fairseq_checkpoint(path, config={"num_heads": 4, "video_cls_attend": False})
    assert res.config.n_classes == 11 and not res.config.video_cls_attend
    assert res.model.frame_logits(*_batch()[:2]).shape == (2, 4, 11)


@pytest.mark.parametrize(
    "edit, match",
    [
        (
            lambda m: m.pop("mmmodel.text_encoder.encoder.layer.1.output.dense.bias"),
            r"missing keys \(1\): \[text_encoder.encoder.layer.1.output.dense.bias\]",
        ),
        (
            lambda m: m.update({"mmmodel.video_encoder.extra.weight": torch.zeros(2)}),
            r"unexpected keys \(1\): \[video_encoder.extra.weight\]",
        ),
        (
            lambda m: m.update(
                {"mmmodel.video_encoder.videomlp.linear1.weight": torch.zeros(64, 256)}
            ),
            r"shape mismatches \(1\): \[video_encoder.videomlp.linear1.weight: "
            r"expected \(64, 512\), got \(64, 256\)\]",
        ),
    ],
)
def test_strict_load_errors_list_the_keys(tmp_path, edit, match):
    obj = _fairseq_dict(_tiny_state())
    edit(obj["model"])
    path = tmp_path / "bad.pt"
    torch.save(obj, path)
    with pytest.raises(
        ValueError, match=re.escape(str(path)) + ": checkpoint does not match the model: .*" + match
    ):
        load_fairseq_checkpoint(path, model=DualEncoder(TINY))


def test_non_strict_reports_leftovers(tmp_path):
    obj = _fairseq_dict(_tiny_state())
    obj["model"].pop("mmmodel.text_encoder.pooler.dense.bias")
    obj["model"]["mmmodel.extra"] = torch.zeros(1)
    path = tmp_path / "loose.pt"
    torch.save(obj, path)
    res = load_fairseq_checkpoint(path, model=DualEncoder(TINY), strict=False)
    assert res.missing_keys == ("text_encoder.pooler.dense.bias",)
    assert res.unexpected_keys == ("extra",)


def test_norton_style_metadata_and_no_weights(tmp_path):
    obj = _fairseq_dict(
        _tiny_state(), args=None, cfg={"model": {"model_cls": "MMFusionSeparate"}, "task": None}
    )
    path = tmp_path / "norton.pt"
    torch.save(obj, path)
    res = load_fairseq_checkpoint(path, config={"num_heads": 4})
    assert res.metadata["args"] is None
    assert res.metadata["cfg"] == {"model": {"model_cls": "MMFusionSeparate"}, "task": None}
    torch.save({"args": None, "cfg": {}}, tmp_path / "empty.pt")
    with pytest.raises(
        ValueError,
        match=r"empty.pt: no weights found; .* top-level keys "
        r"\['args', 'cfg'\]",
    ):
        load_fairseq_checkpoint(tmp_path / "empty.pt")
    with pytest.raises(ValueError, match=r"overrides: unknown EncoderConfig keys \['heads'\]"):
        load_fairseq_checkpoint(path, config={"heads": 4})


# ---------------------------------------------------------------------------------------------
# Files that must not load, and pickles that must not run


def test_truncated_and_foreign_files(tiny_pt, tmp_path):
    data = tiny_pt.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"cut.pt: not a readable torch checkpoint"):
        load_fairseq_checkpoint(cut)
    noise = tmp_path / "noise.pt"
    noise.write_bytes(os.urandom(4096))
    with pytest.raises(ValueError, match=r"noise.pt: "):
        load_fairseq_checkpoint(noise)
    with pytest.raises(FileNotFoundError, match=r"missing.pt: checkpoint file not found"):
        load_fairseq_checkpoint(tmp_path / "missing.pt")


class _Exploit:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("zipfile", [True, False])
def test_pickled_code_is_never_run(tmp_path, zipfile):
    marker = tmp_path / "pwned"
    obj = _fairseq_dict(_tiny_state(), cfg={"hook": _Exploit(marker)})
    path = tmp_path / "evil.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=zipfile)
    with pytest.raises(
        UnsafePickleError,
        match=r"evil.pt: refusing to unpickle global "
        r"(posix|os|nt)\.system",
    ):
        load_fairseq_checkpoint(path)
    assert not marker.exists()


def _fake_omegaconf(monkeypatch):
    """Register stand-ins for OmegaConf classes so that torch.save pickles them by name."""

    class DictConfig:
        def __init__(self, content):
            self.__dict__.update(
                _content=content,
                _parent=None,
                _metadata={"ref_type": typing.Any, "object_type": dict},
            )

        def __getstate__(self):
            return dict(self.__dict__)

    class AnyNode:
        def __init__(self, value):
            self.__dict__.update(_val=value, _parent=None)

        def __getstate__(self):
            return dict(self.__dict__)

    modules = {
        "omegaconf": types.ModuleType("omegaconf"),
        "omegaconf.dictconfig": types.ModuleType("omegaconf.dictconfig"),
        "omegaconf.nodes": types.ModuleType("omegaconf.nodes"),
    }
    for cls, mod in ((DictConfig, "omegaconf.dictconfig"), (AnyNode, "omegaconf.nodes")):
        cls.__module__, cls.__qualname__ = mod, cls.__name__
        setattr(modules[mod], cls.__name__, cls)
    for name, mod in modules.items():
        monkeypatch.setitem(sys.modules, name, mod)
    return DictConfig, AnyNode


def test_omegaconf_metadata_becomes_inert_placeholders(tmp_path, monkeypatch):
    DictConfig, AnyNode = _fake_omegaconf(monkeypatch)
    cfg = DictConfig(
        {
            "task": DictConfig({"_name": AnyNode("mmtask"), "seed": AnyNode(1)}),
            "fp16": AnyNode(True),
        }
    )
    path = tmp_path / "omegaconf_cfg.pt"
    metrics = {"train_loss": np.float64(0.5), "wps": np.array([1.0, 2.0])}
    torch.save(_fairseq_dict(_tiny_state(), cfg=cfg, extra_state={"metrics": metrics}), path)
    bad = _fairseq_dict(_tiny_state())
    bad["model"]["mmmodel.text_encoder.pooler.dense.bias"] = DictConfig({})
    torch.save(bad, tmp_path / "placeholder_weight.pt")
    monkeypatch.undo()  # the loader must not need (or import) omegaconf
    assert "omegaconf" not in sys.modules
    res = load_fairseq_checkpoint(path, config={"num_heads": 4})
    assert res.metadata["cfg"] == {"task": {"_name": "mmtask", "seed": 1}, "fp16": True}
    assert "extra_state" in res.metadata["top_level_keys"]
    assert "omegaconf" not in sys.modules
    with pytest.raises(
        ValueError,
        match=r"weight 'mmmodel.text_encoder.pooler.dense.bias' is a "
        r"DictConfig, expected a tensor",
    ):
        load_fairseq_checkpoint(tmp_path / "placeholder_weight.pt")


# ---------------------------------------------------------------------------------------------
# Own format


def test_own_roundtrip_with_optimizer_scheduler_and_rng(tmp_path):
    torch.manual_seed(0)
    model = DualEncoder(TINY).train()
    opt = torch.optim.AdamW(trainable_parameters(model).values(), lr=1e-3)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    out = model(*_batch())
    (out.video.pooled @ out.text.pooled.T * model.logit_scale.exp()).logsumexp(-1).sum().backward()
    opt.step()
    sched.step()
    extra = {"step": 1, "epoch": 0, "sampler": {"order": torch.tensor([3, 1, 2, 0])}}
    path = save_checkpoint(
        tmp_path / "step_1", model, model.config, opt, sched, extra, metadata={"run": {"lr": 1e-3}}
    )
    expect_rng = torch.rand(3)  # the RNG stream right after saving

    loaded = load_checkpoint(path)
    assert loaded.config == model.config
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[key], value), key
    _assert_same_outputs(model, loaded.model)
    opt2 = torch.optim.AdamW(trainable_parameters(loaded.model).values(), lr=1e-3)
    sched2 = torch.optim.lr_scheduler.StepLR(opt2, step_size=2, gamma=0.5)
    torch.rand(5)  # move the stream away
    extra2 = restore_train_state(loaded.train_state, opt2, sched2)
    assert torch.equal(torch.rand(3), expect_rng)
    assert extra2["step"] == 1
    assert torch.equal(extra2["sampler"]["order"], extra["sampler"]["order"])
    assert sched2.state_dict() == sched.state_dict()
    s1, s2 = opt.state_dict(), opt2.state_dict()
    assert s1["param_groups"] == s2["param_groups"]
    for k in s1["state"]:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(s1["state"][k][name], s2["state"][k][name])
    assert read_checkpoint_metadata(path) == {"run": {"lr": 1e-3}}
    doc = json.loads((path / "config.json").read_text())
    assert (
        doc["weights_sha256"]
        == checkpoint_hash(path)
        == checkpoint_hash(path / "model.safetensors")
    )
    assert doc["encoder"] == model.config.to_dict()


def test_rng_state_roundtrip():
    import random

    import numpy as np

    state = capture_rng_state()
    a = (torch.rand(2), np.random.rand(2), random.random())
    restore_rng_state(state)
    b = (torch.rand(2), np.random.rand(2), random.random())
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


@pytest.fixture
def saved(tmp_path) -> Path:
    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "ckpt", DualEncoder(TINY))


def test_load_any_checkpoint_dispatches_on_the_format(saved, tiny_pt, tmp_path):
    own, kind = load_any_checkpoint(saved)
    assert kind == "nortonkit" and not own.training
    _assert_same_outputs(own, load_checkpoint(saved).model)
    released, kind = load_any_checkpoint(tiny_pt)
    assert kind == "fairseq" and not released.training
    _assert_same_outputs(released, load_fairseq_checkpoint(tiny_pt).model.eval())
    (tmp_path / "notes.txt").write_text("not a checkpoint")
    with pytest.raises((ValueError, FileNotFoundError), match="notes.txt"):
        load_any_checkpoint(tmp_path / "notes.txt")


def test_corrupt_weights_are_detected(saved, tmp_path):
    weights = saved / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data[: len(data) // 3])
    with pytest.raises(
        ValueError,
        match=r"model.safetensors: sha256 .* does not match .* "
        r"\(truncated or modified weights\)",
    ):
        load_checkpoint(saved)
    with pytest.raises(ValueError, match=r"model.safetensors: not a readable safetensors file"):
        load_checkpoint(saved, verify_hash=False)
    weights.write_bytes(os.urandom(2048))
    with pytest.raises(ValueError, match=r"model.safetensors: not a readable safetensors file"):
        load_checkpoint(saved, verify_hash=False)


def test_foreign_safetensors_names_the_keys(saved):
    from safetensors.torch import save_file

    save_file(
        {"encoder.weight": torch.zeros(3, 3), "encoder.bias": torch.zeros(3)},
        str(saved / "model.safetensors"),
    )
    with pytest.raises(
        ValueError,
        match=r"missing keys \(85\): \[logit_scale, video_encoder\."
        r"videomlp\.linear1\.weight, .*unexpected keys \(2\): "
        r"\[encoder\.bias, encoder\.weight\]",
    ):
        load_checkpoint(saved, verify_hash=False)


def test_bad_config_files(saved, tmp_path):
    cfg = saved / "config.json"
    doc = json.loads(cfg.read_text())
    cfg.write_text(cfg.read_text()[:40])
    with pytest.raises(ValueError, match=r"config.json: not valid JSON"):
        load_checkpoint(saved)
    cfg.write_text(json.dumps({**doc, "encoder": {**doc["encoder"], "hidden": 3}}))
    with pytest.raises(ValueError, match=r"config.json: unknown EncoderConfig keys \['hidden'\]"):
        load_checkpoint(saved)
    cfg.write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(
        ValueError,
        match=r"expected format 'nortonkit.checkpoint', got "
        r"'something-else'",
    ):
        load_checkpoint(saved)
    cfg.unlink()
    with pytest.raises(FileNotFoundError, match=r"config.json not found"):
        load_checkpoint(saved)
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(
        ValueError,
        match=r"x.pt: expected a nortonkit checkpoint directory .* "
        r"use load_fairseq_checkpoint",
    ):
        load_checkpoint(tmp_path / "x.pt")


def test_malicious_train_state_is_refused(tmp_path):
    model = DualEncoder(TINY)
    path = save_checkpoint(tmp_path / "c", model, extra_state={"step": 0})
    marker = tmp_path / "pwned"
    torch.save({"rng": {}, "extra": _Exploit(marker)}, path / "train_state.pt")
    with pytest.raises(ValueError, match=r"train_state\.pt: (refused|not a readable)"):
        load_checkpoint(path)
    assert not marker.exists()


def test_save_is_atomic_and_careful(saved, tmp_path, monkeypatch):
    model = DualEncoder(TINY)
    before = checkpoint_hash(saved)
    # a failure while writing leaves the previous checkpoint and no temporary directories
    import safetensors.torch

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", boom)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(saved, model)
    monkeypatch.undo()
    assert checkpoint_hash(saved) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    # replacing works and leaves nothing behind
    save_checkpoint(saved, model)
    assert checkpoint_hash(saved) != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt"]
    with pytest.raises(ValueError, match=r"already exists \(pass overwrite=True"):
        save_checkpoint(saved, model, overwrite=False)
    # never replaces a directory that is not a checkpoint
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("x")
    with pytest.raises(ValueError, match=r"notes exists and is not a nortonkit checkpoint"):
        save_checkpoint(other, model)
    assert (other / "keep.txt").read_text() == "x"
    # training state must be readable with weights_only=True; checked before writing
    with pytest.raises(ValueError, match=r"extra_state: must hold only tensors and plain"):
        save_checkpoint(tmp_path / "bad", model, extra_state={"fn": _Exploit(tmp_path / "m")})
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ValueError, match=r"config: expected the model's own config"):
        save_checkpoint(tmp_path / "bad", model, EncoderConfig(preset="tiny", dropout=0.0))
    with pytest.raises(ValueError, match=r"metadata: expected JSON-serialisable"):
        save_checkpoint(tmp_path / "bad", model, metadata={"x": object()})


def test_infer_config_needs_the_core_keys():
    with pytest.raises(
        ValueError,
        match=r"state_dict: cannot infer the encoder sizes, missing "
        r"keys \['text_encoder.embeddings.word_embeddings",
    ):
        infer_config({"foo": torch.zeros(1)})


# ---------------------------------------------------------------------------------------------
# Converter CLI


def test_convert_cli_help_and_errors(tiny_pt, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        convert_main(["--help"])
    assert exc.value.code == 0 and "fairseq" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        convert_main([str(tiny_pt), str(tmp_path / "o"), "--set", "novalue"])
    assert exc.value.code == 2
    assert "--set: expected KEY=VALUE" in capsys.readouterr().err
    assert convert_main([str(tiny_pt), str(tmp_path / "o"), "--set", "heads=4"]) == 1
    assert "unknown EncoderConfig keys ['heads']" in capsys.readouterr().err
    out = tmp_path / "o"
    assert convert_main([str(tiny_pt), str(out), "--set", "num_heads=4", "--official"]) == 0
    cfg = load_checkpoint(out).config
    assert cfg.num_heads == 4 and not cfg.seq_logit_scale_learnable
    assert convert_main([str(tiny_pt), str(out), "--set", "num_heads=4"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        convert_main(
            [str(tiny_pt), str(out), "--set", "num_heads=4", "--force", "--set", "trainable=all"]
        )
        == 0
    )
    assert load_checkpoint(out).config.trainable == "all"


def test_fairseq_file_into_an_attention_pooled_model_pools_by_the_mean(tmp_path):
    """A released-format file holds no pooling queries: loading it into a
    ``pooling="attention"`` model leaves them at zero, so the model is the released one."""
    state = _tiny_state()
    torch.save(_fairseq_dict(state), tmp_path / "ckpt.pt")
    mean = load_fairseq_checkpoint(tmp_path / "ckpt.pt", config={"num_heads": 4}).model
    attn = load_fairseq_checkpoint(tmp_path / "ckpt.pt",
                                   config={"num_heads": 4, "pooling": "attention"}).model
    assert float(attn.text_pool.query.abs().max()) == 0.0
    assert float(attn.video_pool.query.abs().max()) == 0.0
    ids = torch.tensor([[101, 7, 8, 102]])
    frames, vmask = torch.randn(2, 3, 512), torch.ones(2, 3, dtype=torch.bool)
    with torch.no_grad():
        torch.testing.assert_close(attn(frames, vmask, ids, ids > 0).text.pooled,
                                   mean(frames, vmask, ids, ids > 0).text.pooled)
        torch.testing.assert_close(attn.encode_video(frames, vmask).pooled,
                                   mean.encode_video(frames, vmask).pooled)
