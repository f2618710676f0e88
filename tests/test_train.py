"""The training loop: schedule, optimizer coverage, presets, DDP equivalence, exact resume, CLI."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from nortonkit.checkpoint import load_checkpoint
from nortonkit.encoders import DualEncoder, EncoderConfig, trainable_parameters
from nortonkit.train import (
    NortonObjective,
    PolynomialDecaySchedule,
    build_optimizer,
    evaluate_model,
    fit,
    main,
    polynomial_decay_lr,
    train_step,
    wrap_ddp,
)
from nortonkit.train.config import config_from_dict
from nortonkit.train.distributed import cleanup_distributed, init_distributed
from nortonkit.train.presets import preset_names

ROOT = Path(__file__).resolve().parents[1]


# ----------------------------------------------------------------------------- shared helpers
# (also run as the DDP worker: `torchrun tests/test_train.py OUT CORPUS`, see the end of file)

VIDEOS, CLIPS, FRAMES, TOKENS, VOCAB = 4, 8, 5, 7, 128


def small_model_config(**extra) -> EncoderConfig:
    """A 32-wide, one-layer dual encoder (dropout off unless asked for)."""
    kw = dict(preset="tiny", hidden_size=32, num_heads=2, intermediate_size=64, video_layers=1,
              text_layers=1, vocab_size=VOCAB, dropout=0.0, trainable="all",
              clip_logit_scale="learnable")
    return EncoderConfig(**{**kw, **extra})


def fixed_batch(videos: int = VIDEOS) -> tuple[torch.Tensor, ...]:
    """``videos * CLIPS`` clip/caption pairs, video-major, with ragged masks."""
    g = torch.Generator().manual_seed(123)
    n = videos * CLIPS
    video = torch.randn(n, FRAMES, 512, generator=g)
    vlen = torch.randint(1, FRAMES + 1, (n,), generator=g)
    video_mask = torch.arange(FRAMES)[None] < vlen[:, None]
    tlen = torch.randint(3, TOKENS + 1, (n,), generator=g)
    ids = torch.randint(1000 % VOCAB, VOCAB, (n, TOKENS), generator=g)
    ids[:, 0] = 101
    text_mask = torch.arange(TOKENS)[None] < tlen[:, None]
    ids[torch.arange(n), tlen - 1] = 102
    ids = ids.masked_fill(~text_mask, 0)
    return video, video_mask, ids, text_mask


def one_step(negatives: str, batch, env=None, lr: float = 1e-3, clip_norm: float = 2.0):
    """Build the seeded model, take one update on ``batch``; return (grads, weights, loss).

    The gradients are the ones the optimizer used (after clipping when ``clip_norm > 0``).
    """
    cfg = config_from_dict({"optim": {"lr": lr}, "train": {"negatives": negatives}})
    torch.manual_seed(0)
    encoder = DualEncoder(small_model_config())
    objective = NortonObjective(encoder, cfg.loss, CLIPS, negatives)
    model = wrap_ddp(objective, env) if env is not None else objective
    optimizer = build_optimizer(encoder, cfg)
    for group in optimizer.param_groups:
        group["lr"] = lr
    terms, _ = train_step(model, encoder, optimizer, batch, clip_norm=clip_norm)
    names = trainable_parameters(encoder)
    grads = {k: p.grad.detach().clone() for k, p in names.items() if p.grad is not None}
    weights = {k: v.detach().clone() for k, v in encoder.state_dict().items()}
    return grads, weights, float(terms.total.detach())


def ddp_worker(out: Path, corpus: Path) -> None:
    """One rank: its half (by videos) of ``fixed_batch()`` through one DDP update with global,
    then local negatives; then a 3-update :func:`fit` on the corpus. Rank 0 saves results."""
    env = init_distributed("cpu")
    torch.set_num_threads(1)
    full = fixed_batch()
    half = VIDEOS // env.world_size * CLIPS
    mine = tuple(x[env.rank * half : (env.rank + 1) * half] for x in full)
    result = {"world_size": env.world_size, "backend": env.backend}
    result["global"] = one_step("global", mine, env, clip_norm=2.0)
    result["local"] = one_step("local", mine, env, clip_norm=0.0)
    cfg = config_from_dict({
        "model": small_model_config(vocab_size=30522, dropout=0.1).to_dict(),
        "data": {"root": str(corpus), "videos_per_batch": 4, "clips_per_video": 8,
                 "max_video_len": 8, "max_clip_len": 8, "max_len": 23, "val_videos": 8},
        "retrieval": {"mode": "fixed", "n_centroids": 2},
        "optim": {"lr": 1e-3, "warmup_updates": 1, "total_num_update": 10},
        "train": {"out_dir": str(out / "run"), "epochs": 1, "max_steps": 3, "log_every": 1,
                  "val_every": 0, "save_every": 0, "progress": False, "tensorboard": False,
                  "negatives": "global", "seed": 5},
    })
    fit_result = fit(cfg)
    result["fit"] = {"step": fit_result.step, "rows": fit_result.train_log,
                     "val": fit_result.val_log, "retrieval": fit_result.retrieval_log}
    if env.rank == 0:
        torch.save(result, out / "rank0.pt")
    cleanup_distributed()


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    from nortonkit.synthetic.corpus import ensure_corpus

    return ensure_corpus(tmp_path_factory.mktemp("corpus") / "smoke", "smoke").root


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_config(corpus: Path, out_dir: Path, **sections):
    """A small model on the smoke corpus: 4 videos x 8 clips per step, 12 steps per epoch."""
    raw = {
        "model": small_model_config(vocab_size=30522, dropout=0.1).to_dict(),
        "data": {"root": str(corpus), "videos_per_batch": 4, "clips_per_video": 8,
                 "max_video_len": 8, "max_clip_len": 8, "max_len": 23, "val_videos": 8},
        "retrieval": {"mode": "fixed", "n_centroids": 2},
        "optim": {"lr": 2e-3, "warmup_updates": 2, "total_num_update": 40},
        "train": {"out_dir": str(out_dir), "epochs": 2, "log_every": 1, "val_every": 0,
                  "save_every": 5, "progress": False, "tensorboard": False, "seed": 3},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return config_from_dict(raw)


# ----------------------------------------------------------------------------- schedule


def _fairseq_polynomial_decay(n_updates, lr, warmup, total, end_lr=0.0, power=1.0):
    """fairseq PolynomialDecayLRSchedule: the rate set after ``init`` and each step_update."""
    rates, factor = [], 1.0 / warmup if warmup > 0 else 1.0
    rates.append(factor * lr)  # __init__
    for num_updates in range(n_updates + 1):  # trainer: step_update(0) at build, then each
        if warmup > 0 and num_updates <= warmup:
            rate = num_updates / float(warmup) * lr
        elif num_updates >= total:
            rate = end_lr
        else:
            pct = 1 - (num_updates - warmup) / (total - warmup)
            rate = (lr - end_lr) * pct**power + end_lr
        rates.append(rate)
    return rates[1:]  # the rate used by update u+1 is the one set after u updates


@pytest.mark.parametrize(("lr", "warmup", "total", "end_lr", "power"),
                         [(1e-5, 1000, 1_000_000, 0.0, 1.0), (1.0, 3, 10, 0.1, 2.0),
                          (1e-3, 0, 7, 0.0, 1.0)])
def test_polynomial_decay_matches_fairseq(lr, warmup, total, end_lr, power):
    n = min(total + 5, 2000)
    ours = [polynomial_decay_lr(u, lr, warmup, total, end_lr, power) for u in range(n + 1)]
    assert ours == pytest.approx(_fairseq_polynomial_decay(n, lr, warmup, total, end_lr, power),
                                 rel=1e-12, abs=0.0)
    if warmup:
        assert ours[0] == 0.0 and ours[warmup] == lr
    assert polynomial_decay_lr(total, lr, warmup, total, end_lr, power) == end_lr
    assert polynomial_decay_lr(total + 9, lr, warmup, total, end_lr, power) == end_lr
    assert polynomial_decay_lr(total - 1, lr, warmup, total, end_lr, power) > end_lr


def test_schedule_sets_the_optimizer_rate_and_round_trips():
    opt = torch.optim.Adam([torch.nn.Parameter(torch.zeros(2))], lr=5.0)
    sched = PolynomialDecaySchedule(opt, lr=1.0, warmup_updates=4, total_num_update=12)
    assert sched.step_update(2) == 0.5 and opt.param_groups[0]["lr"] == 0.5
    other = PolynomialDecaySchedule(opt, lr=1.0, warmup_updates=4, total_num_update=12)
    other.load_state_dict(sched.state_dict())
    assert other.num_updates == 2 and opt.param_groups[0]["lr"] == 0.5
    with pytest.raises(ValueError, match="total_num_update: expected more than warmup_updates"):
        PolynomialDecaySchedule(opt, 1.0, warmup_updates=5, total_num_update=5)


# ----------------------------------------------------------------------------- parameters


def _optimized(opt: torch.optim.Optimizer) -> set[int]:
    return {id(p) for g in opt.param_groups for p in g["params"]}


@pytest.mark.parametrize("preset", ["norton", "norton-official", "videoclip-official"])
def test_every_trainable_parameter_is_in_the_optimizer(preset):
    cfg = config_from_dict({"preset": preset,
                            "model": {"preset": "tiny", "vocab_size": 128}})
    encoder = DualEncoder(cfg.model)
    opt = build_optimizer(encoder, cfg)
    wanted = {id(p) for p in encoder.parameters() if p.requires_grad}
    assert _optimized(opt) == wanted
    assert _optimized(opt) == {id(p) for p in trainable_parameters(encoder).values()}
    names = {n for n, p in encoder.named_parameters() if id(p) in _optimized(opt)}
    if preset == "norton":  # the paper: both temperatures learnable, everything trained
        assert {"logit_scale", "clip_logit_scale"} <= names
        assert len(names) == len(list(encoder.parameters()))
    elif preset == "norton-official":  # LayerNorms only, temperature frozen, no L_clip tau
        assert "logit_scale" not in names and not hasattr(encoder, "clip_logit_scale")
        assert names and all(n.split(".")[-2] == "LayerNorm" for n in names)
    else:
        assert "logit_scale" in names or not encoder.config.seq_logit_scale_learnable


def _small_batch(videos: int = 2):
    return fixed_batch(videos)


@pytest.mark.parametrize("preset", preset_names())
def test_every_preset_runs_one_step(preset):
    cfg = config_from_dict({"preset": preset, "optim": {"lr": 1e-3}})
    model_cfg = small_model_config().to_dict()
    for key in ("trainable", "seq_logit_scale_learnable", "clip_logit_scale"):
        model_cfg[key] = getattr(cfg.model, key)
    torch.manual_seed(0)
    encoder = DualEncoder(type(cfg.model)(**model_cfg))
    objective = NortonObjective(encoder, cfg.loss, CLIPS)
    opt = build_optimizer(encoder, cfg)
    before = {n: p.detach().clone() for n, p in trainable_parameters(encoder).items()}
    terms, grad_norm = train_step(objective, encoder, opt, _small_batch(), clip_norm=2.0)
    assert torch.isfinite(terms.total) and torch.isfinite(grad_norm)
    assert (terms.video is None) == (cfg.loss.video_weight == 0)
    expected = cfg.loss.clip_weight * terms.clip + cfg.loss.video_weight * (
        terms.video if terms.video is not None else 0.0)
    torch.testing.assert_close(terms.total, torch.as_tensor(expected))
    changed = {n for n, p in trainable_parameters(encoder).items()
               if not torch.equal(p.detach(), before[n])}
    assert changed, preset
    seq_tau = "logit_scale" in changed
    assert seq_tau == (cfg.model.seq_logit_scale_learnable and cfg.loss.video_weight > 0)
    assert math.isclose(float(encoder.logit_scale.detach().exp()), 1 / 0.07, rel_tol=1e-2)


def test_logit_scales_are_clamped_after_the_step():
    cfg = config_from_dict({"optim": {"lr": 1e-3}})
    encoder = DualEncoder(small_model_config())
    with torch.no_grad():
        encoder.logit_scale.fill_(7.0)
        encoder.clip_logit_scale.fill_(-1.0)
    objective = NortonObjective(encoder, cfg.loss, CLIPS)
    train_step(objective, encoder, build_optimizer(encoder, cfg), _small_batch(), 2.0)
    assert float(encoder.logit_scale.detach()) == pytest.approx(math.log(100.0))
    assert float(encoder.clip_logit_scale.detach()) == 0.0


def test_non_finite_loss_is_an_error_and_updates_nothing():
    cfg = config_from_dict({"optim": {"lr": 1e-3}})
    encoder = DualEncoder(small_model_config())
    objective = NortonObjective(encoder, cfg.loss, CLIPS)
    with torch.no_grad():
        encoder.text_encoder.embeddings.LayerNorm.weight.fill_(float("nan"))
    before = encoder.video_encoder.videomlp.linear1.weight.detach().clone()
    with pytest.raises((FloatingPointError, ValueError), match="non-finite|NaN"):
        train_step(objective, encoder, build_optimizer(encoder, cfg), _small_batch(), 2.0)
    assert torch.equal(encoder.video_encoder.videomlp.linear1.weight, before)


# ----------------------------------------------------------------------------- DDP


@pytest.fixture(scope="module")
def ddp_result(tmp_path_factory, corpus):
    out = tmp_path_factory.mktemp("ddp")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", f"--master_port={port}",
           str(Path(__file__).resolve()), str(out), str(corpus)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return torch.load(out / "rank0.pt", weights_only=False)


@pytest.mark.slow
def test_ddp_global_negatives_equal_one_process_on_the_combined_batch(ddp_result):
    assert ddp_result["world_size"] == 2 and ddp_result["backend"] == "gloo"
    grads, weights, loss = one_step("global", fixed_batch(VIDEOS), clip_norm=2.0)
    ddp_grads, ddp_weights, ddp_loss = ddp_result["global"]
    assert ddp_loss == pytest.approx(loss, rel=1e-5)
    assert grads.keys() == ddp_grads.keys()
    for name in grads:
        torch.testing.assert_close(ddp_grads[name], grads[name], rtol=1e-4, atol=1e-7,
                                   msg=lambda m, n=name: f"{n}: {m}")
    for name in weights:  # one Adam step of lr 1e-3 moves weights by ~1e-3 per entry
        torch.testing.assert_close(ddp_weights[name], weights[name], rtol=0, atol=2e-5,
                                   msg=lambda m, n=name: f"{n}: {m}")
    # the comparison can fail: local negatives (no gather) give other (unclipped) gradients
    unclipped, _, _ = one_step("global", fixed_batch(VIDEOS), clip_norm=0.0)
    local_grads = ddp_result["local"][0]
    name = "video_encoder.videomlp.linear1.weight"
    assert not torch.allclose(local_grads[name], unclipped[name], rtol=1e-2, atol=1e-6)


@pytest.mark.slow
def test_ddp_local_negatives_average_the_per_rank_gradients(ddp_result):
    full = fixed_batch(VIDEOS)
    half = VIDEOS // 2 * CLIPS
    g0, _, l0 = one_step("local", tuple(x[:half] for x in full), clip_norm=0.0)
    g1, _, l1 = one_step("local", tuple(x[half:] for x in full), clip_norm=0.0)
    ddp_grads, _, ddp_loss = ddp_result["local"]
    assert ddp_loss == pytest.approx(l0, rel=1e-5)  # rank 0 reports its own loss
    for name in g0:
        torch.testing.assert_close(ddp_grads[name], (g0[name] + g1[name]) / 2, rtol=1e-4,
                                   atol=1e-7, msg=lambda m, n=name: f"{n}: {m}")


@pytest.mark.slow
def test_ddp_fit_runs_the_whole_loop_on_two_ranks(ddp_result):
    fit_out = ddp_result["fit"]
    assert fit_out["step"] == 3
    assert [int(r["step"]) for r in fit_out["rows"]] == [1, 2, 3]
    assert all(math.isfinite(float(r["loss"])) for r in fit_out["rows"])
    retrieval = fit_out["retrieval"][0]
    assert retrieval["n_effective"] == retrieval["n_videos"] == 48
    assert len(fit_out["val"]) == 1


# ----------------------------------------------------------------------------- fit


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def test_resume_after_a_kill_gives_the_uninterrupted_weights(corpus, tmp_path):
    """Stop at update 11 (last checkpoint at 10, mid-epoch 1), resume, run to 15 (epoch 2,
    whose retrieval batches come from the resumed model): weights bitwise equal."""
    whole = fit(tiny_config(corpus, tmp_path / "whole", train={"max_steps": 15}))
    assert whole.step == 15 and not whole.stopped
    killed = fit(tiny_config(corpus, tmp_path / "resumed",
                             train={"max_steps": 15, "stop_after": 11}))
    assert killed.stopped and killed.step == 11
    assert (tmp_path / "resumed" / "checkpoint_last").is_dir()
    resumed = fit(tiny_config(corpus, tmp_path / "resumed", train={"max_steps": 15}))
    assert resumed.step == 15 and resumed.epoch == 2
    a, b = _weights(whole.last_checkpoint), _weights(resumed.last_checkpoint)
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    # the logs agree row for row, and the resumed run rewrote the rows after the checkpoint
    deterministic = ("step", "epoch", "lr", "loss", "loss_clip", "loss_video", "grad_norm",
                     "inv_tau_video", "inv_tau_clip", "bucket_value")
    assert [{k: r[k] for k in deterministic} for r in resumed.train_log] == \
        [{k: r[k] for k in deterministic} for r in whole.train_log]
    assert [r["loss"] for r in resumed.train_log] == [r["loss"] for r in whole.train_log]
    assert [r["step"] for r in resumed.train_log] == list(range(1, 16))
    assert [r["epoch"] for r in resumed.retrieval_log] == [1, 2]
    ckpts = sorted(p.name for p in (tmp_path / "resumed").glob("checkpoint_*_*"))
    assert len(ckpts) <= 2  # keep_last


def test_cli_trains_and_writes_a_loadable_checkpoint(corpus, tmp_path, capsys):
    path = tmp_path / "cli.yaml"
    cfg = tiny_config(corpus, tmp_path / "cli")
    from nortonkit.train.config import dump_config

    dump_config(cfg, path)
    assert main(["--config", str(path), "train.max_steps=2", "retrieval.mode=off",
                 "train.tensorboard=true"]) == 0
    assert "done: 2 updates" in capsys.readouterr().out
    loaded = load_checkpoint(tmp_path / "cli" / "checkpoint_last")
    assert loaded.config == cfg.model and loaded.train_state["extra"]["step"] == 2
    for name in ("config.yaml", "train_log.csv", "val_log.csv", "retrieval_log.csv"):
        assert (tmp_path / "cli" / name).is_file()
    assert list((tmp_path / "cli" / "tb").glob("events.out.tfevents.*"))
    header = (tmp_path / "cli" / "train_log.csv").read_text().splitlines()[0]
    assert header.startswith("step,epoch,lr,loss,loss_clip,loss_video,grad_norm")
    with pytest.raises(SystemExit) as err:
        main(["--config", str(path), "optim.lrr=1"])
    assert err.value.code == 2
    assert "optim.lrr: unknown config key; did you mean 'lr'?" in capsys.readouterr().err


def test_loader_deals_batches_to_workers_without_duplicates(corpus, tmp_path):
    from nortonkit.data.howto100m import plan_batches
    from nortonkit.train.loop import _loader, _open_split
    from nortonkit.train.retrieval import pad_batches

    cfg = tiny_config(corpus, tmp_path)
    split = _open_split(cfg, "train", seed=0)
    batches = pad_batches(plan_batches(split.ids, 4, drop_last=False), 2)
    for rank in range(2):  # what each of 2 ranks loads, with 2 workers, in order
        items = [(i, batches[i]) for i in range(rank, len(batches), 2)]
        serial = list(_loader(split.dataset, items, num_workers=0, pin=False))
        parallel = list(_loader(split.dataset, items, num_workers=2, pin=False))
        assert [i for i, _ in parallel] == [i for i, _ in items]
        assert [b.video_ids for _, b in parallel] == [b for _, b in items]
        for (_, a), (_, b) in zip(serial, parallel):  # sampling seeded by position only
            assert torch.equal(a.video, b.video) and torch.equal(a.text_ids, b.text_ids)
    seen = [v for b in batches[: len(split.ids) // 4] for v in b]
    assert len(seen) == len(set(seen)) == len(split.ids)


def test_precision_is_float32_on_cpu(corpus, tmp_path):
    cfg = tiny_config(corpus, tmp_path / "p", train={"precision": "bf16", "max_steps": 1})
    with pytest.raises(ValueError, match="train.precision: 'bf16' autocast needs a GPU"):
        fit(cfg)


@pytest.mark.slow
def test_training_lowers_the_loss_and_raises_retrieval(tmp_path):
    """72 updates from random initialisation on a synthetic corpus (48 train / 32 held-out
    videos) with lighter noise than the default (so that a one-minute run learns more than
    chance): the loss falls and the held-out caption -> clip R@1 (raw dot product, 32 clips per
    pool, chance 1/32) at least doubles."""
    from nortonkit.synthetic.config import NoiseConfig, SyntheticConfig
    from nortonkit.synthetic.corpus import generate_corpus

    noise = NoiseConfig(irrelevant_rate=0.2, async_rate=0.2, frame_noise=1.0,
                        filler_words_mean=0.5, context_rate=0.1)
    corpus = generate_corpus(tmp_path / "corpus", SyntheticConfig.preset(
        "smoke", how2_train=48, how2_val=32, noise=noise), progress=False).root
    cfg = tiny_config(corpus, tmp_path / "learn",
                      optim={"lr": 2e-3, "warmup_updates": 5, "total_num_update": 72},
                      retrieval={"start_epoch": 4},  # hard negatives once the model has learnt
                      train={"epochs": 6, "save_every": 0, "seed": 0},
                      data={"val_videos": None})
    torch.manual_seed(cfg.train.seed)
    before = evaluate_model(DualEncoder(cfg.model), cfg)
    result = fit(cfg)
    after = evaluate_model(load_checkpoint(result.last_checkpoint).model, cfg)
    assert result.step == 72 and after["val_batches"] == 8
    first = sum(float(r["loss"]) for r in result.train_log[:12]) / 12
    last = sum(float(r["loss"]) for r in result.train_log[-12:]) / 12
    assert last < first - 1.0, (first, last)
    assert after["val_loss"] < before["val_loss"] - 1.0, (before, after)
    chance = 1 / 32
    assert after["val_clip_r1"] > max(2 * chance, before["val_clip_r1"] + 0.03), (before, after)
    # the epochs from 4 on used retrieval batches (every video once), the first three did not
    modes = [r["mode"] for r in result.retrieval_log]
    assert modes == ["off"] * 3 + ["fixed"] * 3


if __name__ == "__main__":  # one DDP rank, launched by the `ddp_result` fixture via torchrun
    ddp_worker(Path(sys.argv[1]), Path(sys.argv[2]))


@pytest.mark.parametrize("key, theirs, ours", [("positions", "none", "absolute"),
                                                ("pooling", "attention", "mean"),
                                                ("pooling", "mean", "attention")])
def test_init_checkpoint_of_another_model_is_refused(tmp_path, key, theirs, ours):
    """Same shapes (or the kit's own keys), another model: a checkpoint trained without
    position embeddings, or with another pooling, cannot initialise a model that differs in
    it; the error names both settings. The same setting loads every weight."""
    from nortonkit.checkpoint import save_checkpoint
    from nortonkit.train.distributed import DistEnv
    from nortonkit.train.state import build_trainables

    sizes = {"preset": "tiny", "vocab_size": 128, "trainable": "all"}
    torch.manual_seed(0)
    source = DualEncoder(EncoderConfig(**sizes, **{key: theirs}))
    if theirs == "attention":  # a trained query, not the zero it starts from
        torch.nn.init.normal_(source.text_pool.query)
    save_checkpoint(tmp_path / "stage1", source)
    env = DistEnv(0, 1, 0, torch.device("cpu"), "none")
    for value, ok in ((theirs, True), (ours, False)):
        cfg = config_from_dict({"model": {**sizes, key: value},
                                "train": {"init_checkpoint": str(tmp_path / "stage1")}})
        if ok:
            built = build_trainables(cfg, env, use_scaler=False)
            got = built.encoder.state_dict()
            assert set(source.state_dict()) <= set(got)
            for name, tensor in source.state_dict().items():
                torch.testing.assert_close(got[name], tensor)
        else:
            with pytest.raises(ValueError, match=rf"model.{key}='{theirs}'.*asks for '{ours}'"):
                build_trainables(cfg, env, use_scaler=False)
