"""S3D-G (HowTo100M MIL-NCE) model, checkpoint, decoding and the extraction CLI.

Reference values come from ``shared/reference/s3d_extraction.md`` §6 (computed with the official
module on synthetic weights). Videos are synthesised with PyAV; the real 224-px network is used
with short videos, and the CLI runs most of its checks at ``--size 32`` to keep CPU cost low.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import warnings
import zipfile
import zlib
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import TOL

from nortonkit import s3d
from nortonkit.s3d import (
    S3D,
    build_word_to_id,
    chunks_to_input,
    embed_chunks,
    expected_rows,
    extract_features,
    frame_geometry,
    iter_chunks,
    iter_frames,
    layout_sha256,
    load_s3d,
    load_s3d_dictionary,
    load_s3d_state_dict,
    space_to_depth,
    tokenize_s3d,
)

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "data_recipes" / "extract_features.py"
SHA_ORDER = "b5fca057c8e7bbf5d5df47b81b69c7e52f03931046a2f3eead3375b305f96c76"
SHA_SORTED = "0bbdbfed8302816cfca66d58901646e46fe7b2ce6b1d6f93776efee9fe80c48b"
RELEASED_FILE_BYTES = 125_031_128
TINY_WORDS = ["open", "door", "cut", "tomato", "the"]
GOLD_ATOL = dict(rtol=0.0, atol=1e-6)  # raw outputs; the smallest listed mistake moves 5e-5


# --------------------------------------------------------------------------- helpers


def recipe_state_dict() -> dict[str, torch.Tensor]:
    """The fact sheet's deterministic synthetic weights (§6, item 4), keyed by crc32(key)."""
    with torch.device("meta"):
        layout = S3D().state_dict()
    out = {}
    for key, meta in layout.items():
        shape = tuple(meta.shape)
        z = np.random.RandomState(zlib.crc32(key.encode())).standard_normal(shape)
        if key.endswith("num_batches_tracked"):
            t = np.zeros(shape)
        elif key.endswith("running_var"):
            t = 1 + 0.1 * np.abs(z)
        elif key.endswith("running_mean") or key.endswith(".bias"):
            t = 0.01 * z
        elif len(shape) == 1:
            t = 1 + 0.1 * z
        else:
            t = z * math.sqrt(2 / (math.prod(shape) / shape[0]))
        out[key] = torch.from_numpy(np.asarray(t)).to(meta.dtype)
    return out


def ramp(b: int, v: int, h: int, w: int) -> torch.Tensor:
    """Sample 0: R = x, G = y, B = t ramps in [0, 1]; sample 1 = 1 - sample 0."""
    x = torch.zeros(1, 3, v, h, w)
    x[0, 0] = torch.linspace(0, 1, w)[None, None, :]
    x[0, 1] = torch.linspace(0, 1, h)[None, :, None]
    x[0, 2] = torch.linspace(0, 1, v)[:, None, None]
    return torch.cat([x, 1 - x])[:b]


def make_video(path: Path, n: int, fps: int, w: int, h: int, *, content: str = "gradient",
               rotation: int | None = None, codec: str = "libx264") -> Path:
    """Write ``n`` frames; "grey" frames have value 6 * i, "gradient" is never black."""
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        if codec == "libx264":
            s.options = {"crf": "0", "preset": "ultrafast"}
        if rotation is not None:
            s.set_display_rotation(rotation)
        yy, xx = np.mgrid[0:h, 0:w]
        for i in range(n):
            if content == "grey":
                img = np.full((h, w, 3), 6 * i, np.uint8)
            else:
                img = np.stack([40 + xx * 180 // max(w - 1, 1), 40 + yy * 180 // max(h - 1, 1),
                                np.full_like(xx, 40 + (5 * i) % 180)], -1).astype(np.uint8)
                if content == "marker":
                    img[: h // 4, : w // 4] = 250
            c.mux(s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        c.mux(s.encode())
    return path


def load_cli():
    spec = importlib.util.spec_from_file_location("extract_features_cli", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def find_ffmpeg() -> str | None:
    """An ffmpeg CLI: $NORTONKIT_FFMPEG, one on PATH, or the imageio-ffmpeg wheel's binary."""
    exe = os.environ.get("NORTONKIT_FFMPEG") or shutil.which("ffmpeg")
    if exe:
        return exe
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    return imageio_ffmpeg.get_ffmpeg_exe()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def recipe_sd():
    return recipe_state_dict()


@pytest.fixture(scope="module")
def golden_model(recipe_sd):
    net = S3D()
    net.load_state_dict(recipe_sd, strict=True)
    return net.eval()


@pytest.fixture(scope="module")
def standin_ckpt(recipe_sd, tmp_path_factory):
    """Stand-in ``s3d_howto100m.pth``: exact layout, legacy (pre-1.6) format like the real file."""
    net = S3D()
    net.load_state_dict(recipe_sd)
    path = tmp_path_factory.mktemp("ckpt") / "s3d_howto100m.pth"
    torch.save(net.state_dict(), path, _use_new_zipfile_serialization=False)
    return path


@pytest.fixture(scope="module")
def video_model(standin_ckpt):
    return load_s3d(standin_ckpt)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory):
    """Three short videos used by the CLI tests (2 s @ 25 fps, 1.5 s @ 30 fps, 1 s portrait)."""
    d = tmp_path_factory.mktemp("videos")
    make_video(d / "vid_a.mp4", 50, 25, 96, 64)
    make_video(d / "vid_b.mp4", 45, 30, 80, 64, codec="mpeg4")
    make_video(d / "vid_c.mp4", 24, 24, 48, 80)
    return d


@pytest.fixture(scope="module")
def reference_run(clip_dir, standin_ckpt, tmp_path_factory):
    """An uninterrupted in-process CLI run at --size 32 (the bytes other runs must reproduce)."""
    out = tmp_path_factory.mktemp("ref_out")
    rc = load_cli().main(["--checkpoint", str(standin_ckpt), "--videos", str(clip_dir),
                          "--out", str(out), "--size", "32", "--threads", "1", "--no-progress"])
    assert rc == 0
    return out


def npy_bytes(d: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(d.glob("*.npy"))}


# --------------------------------------------------------------------------- model and checkpoint


def test_state_dict_layout_matches_the_released_checkpoint():
    with torch.device("meta"):
        net = S3D()
    sd = net.state_dict()
    assert len(sd) == 537
    assert layout_sha256(sd, sort=False) == SHA_ORDER
    assert layout_sha256(sd, sort=True) == SHA_SORTED
    lines = "".join(line + "\n" for line in s3d.state_dict_layout(sd))
    assert hashlib.sha256(lines.encode()).hexdigest() == SHA_ORDER  # the §6 recipe, spelled out
    n_text = sum(p.numel() for p in net.text_module.parameters())
    assert sum(p.numel() for p in net.parameters()) == 31_211_336
    assert n_text == 21_540_536
    assert sum(k.endswith("num_batches_tracked") for k in sd) == 76
    assert {str(v.dtype) for k, v in sd.items() if not k.endswith("tracked")} == {"torch.float32"}


def test_standin_checkpoint_is_the_released_format_and_loads_strictly(standin_ckpt, recipe_sd):
    # legacy (pre-1.6) format, the released layout: torch's legacy writer names each storage by
    # its memory address (str(storage._cdata)), so the size matches the released file's up to
    # the number of digits of those addresses (at most 2 per storage)
    assert not zipfile.is_zipfile(standin_ckpt)
    assert abs(standin_ckpt.stat().st_size - RELEASED_FILE_BYTES) <= 2 * len(recipe_sd)
    sd = load_s3d_state_dict(standin_ckpt)
    assert list(sd) == list(recipe_sd)
    for k, v in recipe_sd.items():
        assert torch.equal(sd[k], v), k
    net = S3D()
    result = net.load_state_dict(sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    model = load_s3d(standin_ckpt, with_text=True)
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    embd = recipe_sd["text_module.word_embd.weight"]
    assert torch.equal(model.text_module.word_embd.weight, embd)
    assert load_s3d(standin_ckpt).text_module is None


def test_checkpoint_variants_and_bad_checkpoints(recipe_sd, tmp_path):
    video = {k: v for k, v in recipe_sd.items() if not k.startswith("text_module.")}

    def save(obj, name, **kw):
        p = tmp_path / name
        torch.save(obj, p, **kw)
        return p

    # No num_batches_tracked (a plain re-saved copy): the counters are filled in.
    p = save({k: v for k, v in video.items() if not k.endswith("tracked")}, "nobt.pth")
    sd = load_s3d_state_dict(p, require_text=False)
    assert sd["conv1.bn1.num_batches_tracked"].dtype == torch.int64
    assert load_s3d(p).fc.weight.shape == (512, 1024)
    # DataParallel prefix and a {"state_dict": ...} wrapper are unwrapped.
    p = save({"state_dict": {f"module.{k}": v for k, v in video.items()}}, "wrapped.pth")
    assert torch.equal(load_s3d(p).fc.bias, video["fc.bias"])
    # Text keys are required when the text branch is asked for.
    with pytest.raises(ValueError, match=r"wrapped\.pth.*missing keys.*text_module"):
        load_s3d(p, with_text=True)
    # Missing, unexpected and mis-shaped keys name the file and the key.
    p = save({k: v for k, v in video.items() if k != "mixed_4c.conv_b0.conv1.weight"}, "m.pth")
    with pytest.raises(ValueError, match=r"m\.pth.*1 missing keys.*mixed_4c\.conv_b0\.conv1"):
        load_s3d(p)
    p = save({**video, "extra.weight": torch.zeros(1)}, "x.pth")
    with pytest.raises(ValueError, match=r"x\.pth.*1 unexpected keys.*extra\.weight"):
        load_s3d(p)
    p = save({**video, "fc.weight": torch.zeros(400, 1024)}, "s.pth")
    with pytest.raises(ValueError, match=r"s\.pth: fc\.weight: expected shape \(512, 1024\), "
                                         r"got \(400, 1024\)"):
        load_s3d(p)
    # Not a checkpoint, truncated, or a pickle that would run code: refused, naming the file.
    (tmp_path / "junk.pth").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="junk.pth"):
        load_s3d(tmp_path / "junk.pth")
    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"fc.weight": os.system}, protocol=2))
    with pytest.raises(ValueError, match="evil.pth"):
        load_s3d(tmp_path / "evil.pth")
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        load_s3d(tmp_path / "nope.pth")


def test_golden_outputs_small_input(golden_model):
    x = torch.cat([ramp(2, 6, 32, 32), torch.zeros(1, 3, 6, 32, 32)])
    with torch.no_grad():
        out = golden_model(x)
        alone = golden_model(x[1:2]).video_embedding
    e = out.video_embedding
    want = torch.tensor([[0.00842632, -0.01366027, -0.01465726, 0.00747149],
                         [0.0084645, -0.01365188, -0.01465369, 0.00762388],
                         [0.00844147, -0.0139355, -0.01461232, 0.00791389]])  # ramp, 1-ramp, 0
    torch.testing.assert_close(e[:, :4], want, **GOLD_ATOL)
    torch.testing.assert_close(e.norm(dim=1), torch.tensor([0.30169624, 0.30165276, 0.30145282]),
                               **GOLD_ATOL)
    torch.testing.assert_close(out.mixed_5c[0].sum(), torch.tensor(3.434584), rtol=0, atol=2e-5)
    # video_embedding = fc(mixed_5c); batch composition does not matter (self-gating is per sample)
    torch.testing.assert_close(e, golden_model.fc(out.mixed_5c).detach(), **TOL[torch.float32])
    torch.testing.assert_close(alone[0], e[1], rtol=0, atol=1e-7)


@pytest.mark.slow
def test_golden_output_224_and_intermediate_shapes(golden_model):
    shapes = {}
    names = ["conv1", "maxpool_2a", "conv_2c", "maxpool_3a", "mixed_3b", "mixed_3c",
             "maxpool_4a", "mixed_4f", "maxpool_5a", "mixed_5c"]
    hooks = [getattr(golden_model, n).register_forward_hook(
        lambda m, i, o, n=n: shapes.__setitem__(n, tuple(o.shape))) for n in names]
    try:
        with torch.inference_mode():
            out = golden_model(ramp(1, 30, 224, 224))
    finally:
        for h in hooks:
            h.remove()
    assert shapes == {
        "conv1": (1, 64, 16, 113, 113),  # before the pad-then-crop
        "maxpool_2a": (1, 64, 15, 56, 56), "conv_2c": (1, 192, 15, 56, 56),
        "maxpool_3a": (1, 192, 15, 28, 28), "mixed_3b": (1, 256, 15, 28, 28),
        "mixed_3c": (1, 480, 15, 28, 28), "maxpool_4a": (1, 480, 8, 14, 14),
        "mixed_4f": (1, 832, 8, 14, 14), "maxpool_5a": (1, 832, 4, 7, 7),
        "mixed_5c": (1, 1024, 4, 7, 7),
    }
    e = out.video_embedding[0]
    torch.testing.assert_close(e[:4], torch.tensor(
        [0.00526302, -0.00877022, -0.01420989, 0.00860673]), **GOLD_ATOL)
    torch.testing.assert_close(e.norm(), torch.tensor(0.32772431), **GOLD_ATOL)
    torch.testing.assert_close(out.mixed_5c.sum(), torch.tensor(4.197429), rtol=0, atol=2e-5)


def test_golden_text_branch_and_tokeniser(golden_model):
    vocab = build_word_to_id(TINY_WORDS)
    ids = tokenize_s3d(["Open the door!", "cut tomato", "zebra"], vocab)
    assert ids.shape == (3, 16) and ids.dtype == torch.int64
    assert ids[:, :4].tolist() == [[1, 5, 2, 0], [3, 4, 0, 0], [0, 0, 0, 0]]
    assert not ids[:, 3:].any()
    with torch.no_grad():
        e = golden_model.encode_text(ids)
    torch.testing.assert_close(e[:, :3], torch.tensor([
        [0.2541169, -0.03404019, -0.19661908], [0.19649668, -0.00111254, -0.17656668],
        [-0.04041741, 0.07662004, 0.10697924]]), rtol=0, atol=2e-6)
    torch.testing.assert_close(e.norm(dim=1), torch.tensor([4.896424, 4.3535643, 2.8096404]),
                               rtol=0, atol=1e-5)
    # regex [\w']+ keeps apostrophes and digits, drops punctuation; truncation to max_words
    vocab2 = build_word_to_id(["don't", "2", "cut"])
    assert tokenize_s3d(["DON'T cut, 2 cut!"], vocab2, max_words=3).tolist() == [[1, 3, 2]]
    with pytest.raises(ValueError, match="token_ids: expected ids in"):
        golden_model.encode_text(torch.tensor([[66250]]))


def test_dictionary_file(tmp_path):
    p = tmp_path / "s3d_dict.npy"
    np.save(p, np.array(TINY_WORDS, dtype="<U22"))
    assert load_s3d_dictionary(p) == TINY_WORDS
    np.save(tmp_path / "bytes.npy", np.array([b"open", b"door"]))
    assert load_s3d_dictionary(tmp_path / "bytes.npy") == ["open", "door"]
    np.save(tmp_path / "obj.npy", np.array(["open", 3], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"obj\.npy: holds a pickled object array"):
        load_s3d_dictionary(tmp_path / "obj.npy")
    np.save(tmp_path / "2d.npy", np.array([["a", "b"]]))
    with pytest.raises(ValueError, match=r"2d\.npy: expected a non-empty 1-D unicode"):
        load_s3d_dictionary(tmp_path / "2d.npy")
    np.save(tmp_path / "num.npy", np.arange(4))
    with pytest.raises(ValueError, match=r"num\.npy.*got dtype int64"):
        load_s3d_dictionary(tmp_path / "num.npy")
    with pytest.raises(ValueError, match=r"s3d_dict\.npy: 5 words do not fit 5 embedding rows"):
        load_s3d_dictionary(p, num_embeddings=5)
    (tmp_path / "bad.npy").write_bytes(b"nonsense")
    with pytest.raises(ValueError, match=r"bad\.npy: not a readable \.npy"):
        load_s3d_dictionary(tmp_path / "bad.npy")


def test_bad_model_inputs():
    net = S3D(with_text=False).eval()
    with pytest.raises(ValueError, match=r"video: expected even .* got shape \(1, 3, 31, 32, 32\)"):
        net(torch.zeros(1, 3, 31, 32, 32))
    with pytest.raises(ValueError, match=r"video: .*\(1, 3, 6, 33, 32\)"):
        net(torch.zeros(1, 3, 6, 33, 32))
    with pytest.raises(ValueError, match=r"video: expected trailing shape \(3, '\*', '\*', '\*'\)"):
        net(torch.zeros(1, 4, 6, 32, 32))
    with pytest.raises(ValueError, match="model: expected eval mode"):
        embed_chunks(net.train(), torch.zeros(1, 6, 32, 32, 3, dtype=torch.uint8))
    with pytest.raises(ValueError, match="chunks: expected dtype torch.uint8"):
        chunks_to_input(torch.zeros(1, 6, 32, 32, 3, dtype=torch.int16))


def test_space_to_depth_order_and_conv1_crop_equivalence(generator):
    x = torch.randn(2, 3, 4, 6, 8, generator=generator)
    y = space_to_depth(x)
    parts = [x[:, :, dt::2, dh::2, dw::2] for dt in (0, 1) for dh in (0, 1) for dw in (0, 1)]
    assert torch.equal(y, torch.cat(parts, dim=1))  # cell offset major, RGB minor
    # pad (1, 2, 2) then drop the first T/H/W element == asymmetric TF-SAME padding
    conv = S3D(with_text=False).conv1.conv1
    z = torch.randn(1, 24, 5, 9, 9, generator=generator)
    official = conv(z)[:, :, 1:, 1:, 1:]
    explicit = F.conv3d(F.pad(z, (1, 2, 1, 2, 0, 1)), conv.weight)
    torch.testing.assert_close(official, explicit, rtol=0, atol=0)


def test_uint8_to_unit_is_exact_division():
    x = torch.arange(256, dtype=torch.uint8).reshape(1, 1, 1, 256, 1).expand(1, 1, 1, 256, 3)
    got = chunks_to_input(x.contiguous())[0, 0, 0, 0, :]
    want = torch.from_numpy(np.arange(256, dtype=np.float32) / np.float32(255))
    assert torch.equal(got, want)


# --------------------------------------------------------------------------- decoding


@pytest.mark.parametrize("n, fps, w, h, frames", [
    (88, 25, 320, 240, 106),  # 3.52 s -> 4 rows
    (100, 30, 640, 360, 100),  # 3.33 s -> 4 rows, last = 10 real + 20 black
    (50, 24, 240, 426, 63),  # portrait, 2.08 s -> 3 rows
])
def test_rows_per_second_and_black_padding(tmp_path, n, fps, w, h, frames):
    path = make_video(tmp_path / "v.mp4", n, fps, w, h, codec="mpeg4")
    chunks = list(iter_chunks(path))
    rows = math.ceil(frames / 30)
    assert len(chunks) == rows == expected_rows(n, fps)
    assert all(c.shape == (30, 224, 224, 3) and c.dtype == np.uint8 for c in chunks)
    flat = np.concatenate(chunks)  # (rows * 30, 224, 224, 3)
    black = ~flat.reshape(len(flat), -1).any(axis=1)
    assert black.sum() == rows * 30 - frames and black[frames:].all()  # trailing zeros only


@pytest.mark.parametrize("n, fps, n_out", [(30, 25, 36), (24, 24, 30), (40, 60, 20)])
def test_frame_to_second_mapping(tmp_path, n, fps, n_out):
    path = make_video(tmp_path / "g.mp4", n, fps, 64, 48, content="grey")
    frames = list(iter_frames(path, size=32))
    assert len(frames) == n_out
    source = [int(round(float(f.mean()) / 6)) for f in frames]
    # fps filter: source frame i lands on slot round_half_up(i * 30 / fps); later slots repeat it
    slot = [(2 * i * 30 + fps) // (2 * fps) for i in range(n)]
    assert source == [max(i for i in range(n) if slot[i] <= k) for k in range(n_out)]
    if fps == 25:
        assert source[:10] == [0, 1, 2, 2, 3, 4, 5, 6, 7, 7]
    if fps == 60:
        assert source == list(range(0, 40, 2))


def _swscale_reference(path: Path, size: int = 224) -> np.ndarray:
    """Independent decode: per-frame libswscale bicubic + crop + timestamp-rounding selection."""
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = []
        for f in c.decode(stream):
            geo = frame_geometry(f.width, f.height, size)
            img = f.reformat(geo.scaled_width, geo.scaled_height, "rgb24",
                             interpolation="BICUBIC").to_ndarray()
            img = img[geo.crop_y:geo.crop_y + size, geo.crop_x:geo.crop_x + size]
            frames.append((Fraction(f.pts) * stream.time_base,
                           Fraction(f.duration) * stream.time_base, img))
    slots = [math.floor(t * 30 + Fraction(1, 2)) for t, _, _ in frames]
    n_out = math.floor((frames[-1][0] + frames[-1][1]) * 30 + Fraction(1, 2))
    return np.stack([frames[max(i for i, s in enumerate(slots) if s <= k)][2]
                     for k in range(n_out)])


def _ffmpeg_cli(exe: str, path: Path, w: int, h: int) -> np.ndarray:
    """The official extractor's command line (ffmpeg-python's compiled form)."""
    g = frame_geometry(w, h)
    graph = (f"[0]fps=fps=30[s0];[s0]scale={g.scaled_width}:{g.scaled_height}[s1];"
             f"[s1]crop=224:224:{g.crop_x}:{g.crop_y}[s2]")
    raw = subprocess.run([exe, "-v", "error", "-i", str(path), "-filter_complex", graph, "-map",
                          "[s2]", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"],
                         capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, 224, 224, 3)


def test_frames_match_ffmpeg_cli_or_swscale_reference(tmp_path):
    exe = find_ffmpeg()
    videos = [make_video(tmp_path / "a.mp4", 88, 25, 320, 240, content="marker"),
              make_video(tmp_path / "b.mp4", 100, 30, 640, 360, content="marker"),
              make_video(tmp_path / "c.mp4", 50, 24, 240, 426, content="marker"),
              make_video(tmp_path / "r.mp4", 15, 30, 320, 240, content="marker", rotation=90)]
    for path, (w, h) in zip(videos, [(320, 240), (640, 360), (240, 426), (320, 240)]):
        ours = np.stack(list(iter_frames(path, rotation="official")))
        if exe is not None:  # byte-identical to the official command line
            assert np.array_equal(ours, _ffmpeg_cli(exe, path, w, h)), path.name
            if path.name == "r.mp4":  # "auto": the CLI's upright frames, sized without stretch
                assert np.array_equal(np.stack(list(iter_frames(path))),
                                      _ffmpeg_cli(exe, path, h, w))
        elif path.name != "r.mp4":
            # No ffmpeg binary here: compare with per-frame swscale (same frame selection, the
            # bicubic resampling differs a little from the filter graph's, worst at hard edges).
            ref = _swscale_reference(path)
            assert ours.shape == ref.shape
            diff = np.abs(ours.astype(np.int16) - ref.astype(np.int16))
            assert diff.mean() < 1.0 and np.percentile(diff, 99.9) <= 16, path.name


def test_rotation_metadata(tmp_path):
    path = make_video(tmp_path / "r.mp4", 6, 30, 96, 64, content="marker", rotation=90)
    up = next(iter_frames(path, size=32))  # upright (64 x 96 portrait), marker bottom-left
    official = next(iter_frames(path, size=32, rotation="official"))
    plain = next(iter_frames(make_video(tmp_path / "p.mp4", 6, 30, 96, 64, content="marker"),
                             size=32))
    assert plain[1, 1].min() > 200  # unrotated: marker top-left
    assert up[-2, 1].min() > 200 and up[1, 1].max() < 200
    assert not np.array_equal(up, official)


def test_last_chunk_policies(tmp_path):
    path = make_video(tmp_path / "v.mp4", 40, 30, 64, 48, codec="mpeg4")
    pad, rep, drop = (list(iter_chunks(path, size=32, last_chunk=p))
                      for p in ("pad", "repeat", "drop"))
    assert len(pad) == len(rep) == 2 and len(drop) == 1
    assert np.array_equal(pad[0], drop[0]) and not pad[1][10:].any()
    assert np.array_equal(rep[1][10:], np.broadcast_to(rep[1][9], (20, 32, 32, 3)))
    with pytest.raises(ValueError, match="last_chunk: expected one of"):
        next(iter_chunks(path, last_chunk="zero"))


def test_bad_videos_name_the_file(tmp_path):
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "junk.mp4").write_bytes(b"not a video" * 50)
    with av.open(str(tmp_path / "audio.mka"), "w") as c:
        s = c.add_stream("mp2", rate=16000, layout="mono")
        for _ in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16",
                                           layout="mono")
            f.sample_rate = 16000
            c.mux(s.encode(f))
        c.mux(s.encode())
    cases = {"empty.mp4": r"empty\.mp4: empty file", "junk.mp4": r"junk\.mp4: cannot open",
             "audio.mka": r"audio\.mka: no video stream \(streams found: \['audio'\]\)"}
    for name, pattern in cases.items():
        with pytest.raises(ValueError, match=pattern):
            next(iter_chunks(tmp_path / name))
    with pytest.raises(FileNotFoundError, match=r"missing\.mp4"):
        next(iter_frames(tmp_path / "missing.mp4"))


def test_truncated_stream_decodes_what_is_there(tmp_path):
    path = make_video(tmp_path / "v.mkv", 60, 30, 64, 48)
    data = path.read_bytes()
    (tmp_path / "cut.mkv").write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = sum(1 for _ in iter_frames(tmp_path / "cut.mkv", size=32))
    assert 0 < n < 60


# --------------------------------------------------------------------------- extraction


def test_extract_features_equals_the_manual_pipeline(tmp_path, video_model):
    path = make_video(tmp_path / "v.mp4", 50, 25, 64, 48)
    feats = extract_features(path, video_model, size=32, batch_size=2)
    assert feats.shape == (2, 512) and feats.dtype == np.float16
    norms = np.linalg.norm(feats.astype(np.float32), axis=1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-3)
    chunks = torch.from_numpy(np.stack(list(iter_chunks(path, size=32))))
    with torch.no_grad():
        raw = video_model(chunks.permute(0, 4, 1, 2, 3).float() / 255.0).video_embedding
    manual = F.normalize(raw, dim=1).numpy().astype(np.float16)
    np.testing.assert_array_equal(feats, manual)
    seen = []
    inline = extract_features(path, video_model, size=32, batch_size=1, prefetch=0,
                              on_chunks=seen.append)
    np.testing.assert_allclose(inline.astype(np.float32), feats.astype(np.float32), atol=1e-3)
    assert seen == [1, 1]
    with pytest.raises(ValueError, match="no complete one-second chunk"):
        extract_features(make_video(tmp_path / "short.mp4", 10, 30, 64, 48), video_model,
                         size=32, last_chunk="drop")


def test_cli_resume_after_interrupt_is_byte_identical(clip_dir, standin_ckpt, reference_run,
                                                      tmp_path, monkeypatch, capsys):
    cli = load_cli()
    real_save = cli.atomic_save_npy
    calls = []

    def dying_save(path, array):  # the second file dies half-written, like a kill mid-save
        calls.append(path)
        if len(calls) == 2:
            with cli.atomic_write(path) as f:
                f.write(b"\x93NUMPY partial")
                raise KeyboardInterrupt
        real_save(path, array)

    out = tmp_path / "out"
    args = ["--checkpoint", str(standin_ckpt), "--videos", str(clip_dir), "--out", str(out),
            "--size", "32", "--threads", "1", "--no-progress"]
    monkeypatch.setattr(cli, "atomic_save_npy", dying_save)
    assert cli.main(args) == 130
    assert [p.name for p in out.iterdir() if p.suffix != ".json"] == ["vid_a.npy"]
    monkeypatch.setattr(cli, "atomic_save_npy", real_save)
    capsys.readouterr()
    assert cli.main(args) == 0
    summary = capsys.readouterr().out
    assert "| 3 | 2 | 1 | 0 | 0 |" in summary  # 2 extracted, 1 skipped
    assert npy_bytes(out) == npy_bytes(reference_run)
    assert [np.load(out / f"vid_{c}.npy").shape for c in "abc"] == [(2, 512), (2, 512), (1, 512)]


@pytest.mark.slow
def test_cli_killed_subprocess_resumes_to_identical_files(clip_dir, standin_ckpt, reference_run,
                                                          tmp_path):
    out = tmp_path / "out"
    cmd = [sys.executable, str(SCRIPT), "--checkpoint", str(standin_ckpt), "--videos",
           str(clip_dir), "--out", str(out), "--size", "32", "--threads", "1", "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list(out.glob("*.npy")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in out.glob("*.npy"))
    assert 1 <= len(done) < 3, done  # killed mid-run
    for name in done:
        assert (out / name).read_bytes() == (reference_run / name).read_bytes()
    rerun = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert npy_bytes(out) == npy_bytes(reference_run)


def test_cli_skips_valid_redoes_invalid_and_guards_settings(clip_dir, standin_ckpt,
                                                            reference_run, tmp_path, capsys):
    cli = load_cli()
    out = tmp_path / "out"
    shutil.copytree(reference_run, out)
    np.save(out / "vid_b.npy", np.ones((2, 256), np.float16))  # wrong width: redone
    before = (out / "vid_a.npy").stat().st_mtime_ns
    base = ["--checkpoint", str(standin_ckpt), "--videos", str(clip_dir), "--out", str(out),
            "--no-progress"]
    assert cli.main([*base, "--size", "32", "--threads", "1"]) == 0
    assert "| 3 | 1 | 2 | 1 | 0 |" in capsys.readouterr().out
    assert (out / "vid_a.npy").stat().st_mtime_ns == before
    assert npy_bytes(out) == npy_bytes(reference_run)
    (out / "vid_c.npy").unlink()
    assert cli.main([*base, "--size", "64"]) == 2  # would mix crop sizes in one folder
    assert "size: 32 -> 64" in capsys.readouterr().err


def test_cli_bad_checkpoint_and_inputs(clip_dir, tmp_path, recipe_sd, capsys):
    cli = load_cli()
    bad = tmp_path / "bad.pth"
    torch.save({k: v for k, v in recipe_sd.items() if not k.startswith("mixed_5c.")}, bad)
    args = ["--videos", str(clip_dir), "--out", str(tmp_path / "o"), "--no-progress"]
    assert cli.main(["--checkpoint", str(bad), *args]) == 2
    err = capsys.readouterr().err
    assert "bad.pth" in err and "missing keys" in err and "mixed_5c." in err
    assert not list((tmp_path / "o").glob("*.npy"))
    # list files: .txt relative to the list, .csv with ids; duplicates are refused
    (tmp_path / "list.txt").write_text(f"# videos\n{clip_dir / 'vid_a.mp4'}\n")
    (tmp_path / "list.csv").write_text(f"video_path,video_id\n{clip_dir / 'vid_b.mp4'},bee\n")
    got = cli.collect_videos([str(tmp_path / "list.txt"), str(tmp_path / "list.csv")])
    assert [(v.video_id, v.path.name) for v in got] == [("vid_a", "vid_a.mp4"),
                                                        ("bee", "vid_b.mp4")]
    with pytest.raises(cli.SetupError, match="duplicate video id 'vid_a'"):
        cli.collect_videos([str(clip_dir), str(tmp_path / "list.txt")])
    (tmp_path / "nocol.csv").write_text("path\nx.mp4\n")
    with pytest.raises(cli.SetupError, match=r"nocol\.csv: expected a csv header"):
        cli.collect_videos([str(tmp_path / "nocol.csv")])


@pytest.mark.slow
def test_cli_end_to_end_at_224_reports_failures(standin_ckpt, tmp_path):
    vids = tmp_path / "videos"
    vids.mkdir()
    make_video(vids / "good.mp4", 25, 25, 320, 240)  # 1 s -> 1 row
    (vids / "zero.mp4").write_bytes(b"")
    with av.open(str(vids / "sound.mkv"), "w") as c:  # audio only
        s = c.add_stream("mp2", rate=16000, layout="mono")
        f = av.AudioFrame.from_ndarray(np.zeros((1, 1152), np.int16), format="s16",
                                       layout="mono")
        f.sample_rate = 16000
        c.mux(s.encode(f))
        c.mux(s.encode())
    out = tmp_path / "feats"
    res = subprocess.run([sys.executable, str(SCRIPT), "--checkpoint", str(standin_ckpt),
                          "--videos", str(vids), "--out", str(out), "--no-progress",
                          "--report", str(tmp_path / "report.json")],
                         capture_output=True, text=True, timeout=600)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "| 3 | 1 | 0 | 0 | 2 | 1 |" in res.stdout
    assert "zero.mp4: empty file" in res.stdout and "sound.mkv: no video stream" in res.stdout
    feats = np.load(out / "good.npy", allow_pickle=False)
    assert feats.shape == (1, 512) and feats.dtype == np.float16
    assert abs(float(np.linalg.norm(feats.astype(np.float32))) - 1) < 1e-3
    assert sorted(p.name for p in out.iterdir()) == ["extraction.json", "good.npy"]
    import json

    report = json.loads((tmp_path / "report.json").read_text())
    assert report["failed"] == 2 and {f["video_id"] for f in report["failures"]} == {"zero",
                                                                                     "sound"}


def test_cli_shard_to(clip_dir, standin_ckpt, reference_run, tmp_path, capsys):
    howto = pytest.importorskip(
        "nortonkit.data.howto100m", reason="nortonkit.data.howto100m (sharding) not available")
    cli = load_cli()
    out = tmp_path / "out"
    shutil.copytree(reference_run, out)  # everything done: the run only shards
    shards = tmp_path / "feat_shard"
    assert cli.main(["--checkpoint", str(standin_ckpt), "--videos", str(clip_dir), "--out",
                     str(out), "--size", "32", "--threads", "1", "--no-progress",
                     "--shard-to", str(shards), "--split", "train", "--shard-size", "2"]) == 0
    assert "sharded 3 videos (5 seconds) into 2 'train' shard(s)" in capsys.readouterr().out
    feats = howto.ShardedFeatures(shards, "train")
    assert sorted(feats) == ["vid_a", "vid_b", "vid_c"]
    for vid in feats:
        np.testing.assert_array_equal(np.asarray(feats[vid]), np.load(out / f"{vid}.npy"))
