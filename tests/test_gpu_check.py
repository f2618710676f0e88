"""benchmarks/gpu_check.py (the CPU dry run, the no-GPU refusal) and benchmarks/memory_model.py."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from torch.profiler import ProfilerActivity, profile

from nortonkit.encoders import DualEncoder, EncoderConfig
from nortonkit.similarity import token_lse_similarity

ROOT = Path(__file__).resolve().parents[1]
GPU_CHECK = ROOT / "benchmarks" / "gpu_check.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import memory_model as mm  # noqa: E402

PARTS = {"train", "b1", "b2", "b4", "b5", "ddp"}


# ----------------------------------------------------------------------------- gpu_check


@pytest.mark.slow
def test_cpu_dry_run_runs_every_part(tmp_path):
    out = tmp_path / "x.json"
    proc = subprocess.run([sys.executable, str(GPU_CHECK), "--device", "cpu", "--tiny", "--out",
                           str(out), "--work-dir", str(tmp_path / "work")],
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "| part | setting | result | time |" in proc.stdout
    assert proc.stdout.splitlines()[0].startswith("gpu_check, tiny shapes")
    report = json.loads(out.read_text())
    assert report["device_type"] == "cpu" and report["device"]
    assert report["torch"] == torch.__version__
    rows = report["rows"]
    assert {r["part"] for r in rows} == PARTS
    assert not [r for r in rows if r["status"] == "failed"]
    for part in PARTS:  # every part measured something; skips only where the CPU cannot
        assert any(r["status"] == "ok" for r in rows if r["part"] == part), part
    assert all(r["result"] == "skipped (cpu)" for r in rows if r["status"] == "skipped")
    for r in rows:  # every row is in the printed table
        assert f"| {r['part']} | {r['setting']} | {r['result']} |" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is visible")
def test_without_a_gpu_the_default_prints_one_line_and_runs_nothing(tmp_path):
    out = tmp_path / "x.json"
    proc = subprocess.run([sys.executable, str(GPU_CHECK), "--out", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 2
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    assert "no CUDA GPU" in lines[0] and "--device cpu --tiny" in lines[0]
    assert not out.exists()


# ----------------------------------------------------------------------------- memory model


PAPER = mm.Shapes.from_config()


def test_shapes_come_from_the_gpu_smoke_config():
    assert (PAPER.pairs, PAPER.v_pos, PAPER.t_pos) == (1024, 18, 31)
    assert (PAPER.hidden, PAPER.heads, PAPER.intermediate) == (768, 12, 3072)
    assert (PAPER.video_layers, PAPER.text_layers, PAPER.feature_dim) == (6, 12, 512)
    assert PAPER.attention == "sdpa"


def test_parameter_count_matches_the_model():
    cfg = EncoderConfig(preset="tiny", vocab_size=300, max_positions=40, video_layers=3,
                        trainable="all", clip_logit_scale="learnable")
    model = DualEncoder(cfg)
    shapes = mm.Shapes(hidden=cfg.hidden_size, heads=cfg.num_heads,
                       intermediate=cfg.intermediate_size, video_layers=cfg.video_layers,
                       text_layers=cfg.text_layers, vocab=cfg.vocab_size,
                       max_positions=cfg.max_positions, logit_scales=2)
    count = mm.parameter_count(shapes)
    assert count["total"] == sum(p.numel() for p in model.parameters())
    linear = sum(p.numel() for m in model.modules() if isinstance(m, torch.nn.Linear)
                 for p in m.parameters())
    assert count["linear"] == linear
    assert mm.parameter_count(PAPER)["total"] == 177_423_362  # DualEncoder at gpu_smoke.yaml


def test_flops_of_known_products():
    f = mm.flops(PAPER)
    n, h = PAPER.pairs, PAPER.hidden
    # Eq. 5: one (B V', h + 2) x (h + 2, B T') product, V' = 17 and T' = 30 valid positions
    assert f["Eq. 5 products"]["forward"] == 2 * (n * 17) * (h + 2) * (n * 30)
    assert f["Eq. 5 products"]["step"] == 3 * f["Eq. 5 products"]["forward"]
    assert f["L_clip logits"]["forward"] == 2 * n * n * h
    assert f["encoders"]["step"] == 3 * f["encoders"]["forward"]
    assert f["encoders"]["forward"] == pytest.approx(7.03e12, rel=0.01)  # B4's 7.0 TFLOP
    chunked = mm.flops(replace(PAPER, chunk_size=64))  # checkpointing recomputes the forward
    assert chunked["Eq. 5 products"]["step"] == 4 * f["Eq. 5 products"]["forward"]


def test_work_and_memory_grow_with_the_batch():
    for path in mm.PATHS:
        peaks = [mm.memory(replace(PAPER, videos_per_batch=v), path)["peak"]
                 for v in (1, 2, 8, 64, 65, 256)]
        assert peaks == sorted(peaks), path.name  # tiny batches: the optimizer step's peak
        assert len(set(peaks[2:])) == len(peaks[2:]), path.name  # then the activations'
    work = [sum(p["step"] for p in mm.flops(replace(PAPER, videos_per_batch=v)).values())
            for v in (1, 8, 64)]
    assert work == sorted(work)


def test_bf16_paths_use_less_memory_than_fp32():
    fp32, tf32, bf16, bf16_eq5 = (mm.memory(PAPER, p)["peak"] for p in mm.PATHS)
    assert tf32 == fp32
    assert bf16_eq5 <= bf16 < 0.8 * fp32
    for path in mm.PATHS:  # checkpointed blocks bound the Eq. 5 memory
        assert (mm.memory(replace(PAPER, chunk_size=64), path)["Eq. 5 blocks"]
                < 0.2 * mm.memory(PAPER, path)["Eq. 5 blocks"])


@pytest.mark.parametrize("capacity", mm.CAPACITIES_GIB)
def test_largest_batch_fits_and_one_more_does_not(capacity):
    budget = (1 - mm.HEADROOM) * capacity * mm.GIB
    for shapes in (PAPER, replace(PAPER, chunk_size=64)):
        for path in mm.PATHS:
            best = mm.max_videos_per_batch(shapes, path, capacity)
            assert best >= 1, (capacity, path.name)
            assert mm.memory(replace(shapes, videos_per_batch=best), path)["peak"] <= budget
            assert mm.memory(replace(shapes, videos_per_batch=best + 1), path)["peak"] > budget
    assert mm.max_videos_per_batch(PAPER, mm.PATHS[0], 0.5) == 0  # the weights alone are 2 GiB


def _peak_bytes(fn) -> int:
    """Peak of the CPU allocator's live bytes during ``fn()``, from the profiler's events."""
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for e in events:
        live += e.nbytes()
        peak = max(peak, live)
    return peak


@pytest.mark.parametrize("path", [mm.PATHS[0], mm.PATHS[3]], ids=lambda p: p.name)
def test_eq5_memory_model_matches_the_allocator(path, generator):
    n, d = 256, 64
    video = torch.randn(n, 18, d, generator=generator, requires_grad=True)
    text = torch.randn(n, 31, d, generator=generator, requires_grad=True)
    vmask = torch.ones(n, 18, dtype=torch.bool)
    tmask = torch.ones(n, 31, dtype=torch.bool)
    vmask[:, 0] = tmask[:, 0] = False  # CLS masked, every other position valid
    precision = "fp32" if path.eq5_bytes == 4 else "bf16"

    def step():
        token_lse_similarity(video, vmask, text, tmask, precision=precision).sum().backward()

    step()  # warm-up
    measured = _peak_bytes(step)
    model = sum(mm.eq5_bytes(mm.Shapes(videos_per_batch=n // 16, hidden=d), path).values())
    assert model == pytest.approx(measured, rel=0.1)


def test_report_and_json(tmp_path, capsys):
    out = tmp_path / "model.json"
    assert mm.main(["--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| memory (GiB) |" in text and "| card | Eq. 5 |" in text
    data = json.loads(out.read_text())
    assert data["shapes"]["videos_per_batch"] == 64
    assert set(data["memory_bytes"]) == {p.name for p in mm.PATHS}
    assert set(data["max_videos_per_batch"]) == {"chunk_size=None", "chunk_size=64"}
