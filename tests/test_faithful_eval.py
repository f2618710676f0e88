"""Evaluation protocols pinned against the official behaviour (docs/protocols.md §3, §6-8).

Each test builds a small hand-made case where the official rule and a plausible alternative
give different numbers, and asserts the official one: COIN zero-shot without CLS attention,
77-token MSR-VTT QA candidates, the HTM-Align window padding, the two transport measures of
video-paragraph retrieval, and the official fine-tuning schedules on real data.
"""

from __future__ import annotations

import json
import math
import warnings
from types import SimpleNamespace

import numpy as np
import ot
import pytest
import torch
import torch.nn.functional as F
from conftest import TOL, TOL_ITERATIVE

from nortonkit.data.coin import load_coin
from nortonkit.data.htm_align import active_text_windows, load_htm_align, pad_windows
from nortonkit.data.layout import DataRoot
from nortonkit.data.msrvtt import load_msrvtt_qa
from nortonkit.encoders import DualEncoder, EncoderConfig, EncoderOutput
from nortonkit.eval.coin import coin_zero_shot_logits, eval_coin_zero_shot
from nortonkit.eval.common import encode_captions, text_token_budget
from nortonkit.eval.htm_align import htm_align_scores
from nortonkit.eval.msrvtt import eval_msrvtt_qa, qa_scores
from nortonkit.eval.paragraph import MEASURES, aligned_bucket_value, paragraph_scores
from nortonkit.lab.evaluate import TASKS, finetune_schedule, main, resolve_dataset
from nortonkit.lab.finetune import finetune
from nortonkit.lab.schedules import FINETUNE_SCHEDULES, epoch_batches, resolve_schedule
from nortonkit.synthetic.corpus import ensure_corpus
from nortonkit.train.schedule import polynomial_decay_lr
from nortonkit.transport import bucket_sinkhorn

DIM = 16


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    cfg = EncoderConfig(preset="tiny", video_feature_dim=DIM, video_layers=1, text_layers=1,
                        dropout=0.0)
    return DualEncoder(cfg, load_pretrained=False).eval()


# ---------------------------------------------------------------------------------------------
# COIN zero-shot: the video encoder runs without CLS attention (docs/protocols.md §3.3, §7.7)


@pytest.fixture
def coin_root(tmp_path):
    rng = np.random.default_rng(0)
    root = DataRoot(tmp_path)
    root.coin_features.mkdir(parents=True)
    db = {}
    for j, n in enumerate((40, 50)):
        vid = f"coin{j}"
        anns = [{"segment": [2.0, 12.0], "id": "1", "label": "cut the onion"},
                {"segment": [15.0, 30.0], "id": "2", "label": "fry the onion"}]
        db[vid] = {"subset": "testing", "annotation": anns}
        np.save(root.coin_features / f"{vid}.npy", rng.standard_normal((n, DIM)).astype(np.float16))
    root.coin_json.write_text(json.dumps({"database": db}))
    return root


def test_coin_zero_shot_runs_the_video_encoder_without_cls_attention(tiny_model, coin_root):
    coin = load_coin(coin_root, subset="testing", expected_dim=DIM)
    video = coin[0]
    labels = encode_captions(tiny_model, coin.label_names[1:])  # (L, H)

    def by_hand(cls_attend):
        tokens = tiny_model.encode_video(video.windows, video.window_mask,
                                         cls_attend=cls_attend).tokens[:, 1:-1]  # (W, V, H)
        total = torch.zeros(len(video.video_targets), labels.shape[0])
        count = torch.zeros(len(video.video_targets), 1)
        for w, s in enumerate(video.window_starts.tolist()):
            n = int(video.window_mask[w].sum())
            total[s : s + n] += tokens[w, :n] @ labels.T
            count[s : s + n] += 1
        return total / count

    with torch.no_grad():
        no_cls, with_cls = by_hand(False), by_hand(True)
    assert not torch.allclose(no_cls, with_cls)  # the CLS mask matters for this encoder
    got = coin_zero_shot_logits(tiny_model, video, labels)
    torch.testing.assert_close(got, no_cls, **TOL[torch.float32])

    seen = []
    original = tiny_model.encode_video

    def recording(vfeats, vmask, cls_attend=None):
        seen.append(cls_attend)
        return original(vfeats, vmask, cls_attend)

    tiny_model.encode_video = recording
    rows = eval_coin_zero_shot(tiny_model, coin_root)
    assert seen == [False] * len(coin)
    assert {r["setting"] for r in rows} == {"zero-shot"}


# ---------------------------------------------------------------------------------------------
# MSR-VTT QA: candidates keep max_len 96 - max_video_len 16 - 3 = 77 tokens (§3.2, §7.6)


class LengthModel:
    """Video vector 1; a sentence's vector is its number of attended tokens (so longer wins)."""

    def __init__(self):
        self.config = SimpleNamespace(video_feature_dim=DIM, hidden_size=1)
        self.widths = []

    def eval(self):
        return self

    def encode_video(self, vfeats, vmask, cls_attend=None):
        return EncoderOutput(torch.ones(len(vfeats), 1), vfeats, vmask)

    def encode_text(self, ids, mask):
        self.widths.append(ids.shape[1])
        pooled = mask.sum(1, keepdim=True).float()
        return EncoderOutput(pooled, pooled[:, None], mask)


def test_qa_candidates_keep_77_tokens(tmp_path):
    root = DataRoot(tmp_path)
    root.msrvtt_features.mkdir(parents=True)
    long_answer, shorter = " ".join(["a"] * 70), " ".join(["a"] * 65)  # both over 61 tokens
    root.msrvtt_qa_csv.write_text(f"vid_key\ta1\ta2\tanswer\nmsr1\t{shorter}\t{long_answer}\t1\n")
    np.save(root.msrvtt_features / "video1.npy", np.ones((20, DIM), np.float16))
    assert text_token_budget(16) == 77 and text_token_budget(32) == 61
    model = LengthModel()
    qa = load_msrvtt_qa(root, expected_dim=DIM)
    s = qa_scores(model, qa)
    assert model.widths == [77 + 2]  # CLS + 77 tokens + SEP
    assert s[0].tolist() == [65 + 2, 70 + 2]  # nothing cut: the 70-token answer wins
    truncated = qa_scores(model, qa, max_tokens=61)  # the 32-s budget would tie them
    assert truncated[0, 0] == truncated[0, 1]
    rows = eval_msrvtt_qa(model, root)
    assert {r["value"] for r in rows} == {100.0}


# ---------------------------------------------------------------------------------------------
# HTM-Align: each window zero-padded to max_video_len = 32 (eval_zeroshot_align.py, §7.8)


def test_htm_windows_are_padded_to_32_as_the_official_script():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((44, 3)).astype(np.float32)
    starts = np.arange(0, 44 - 16, 8)  # the official step grid
    spans = np.stack([starts, np.minimum(starts + 32, 44)], 1)
    windows, mask = pad_windows(feats, spans)
    for w, (s, e) in enumerate(spans.tolist()):
        seq_len = e - s  # official: cat([video[s:e], zeros(32 - seq_len)]), vmask 1s then 0s
        expected = np.concatenate([feats[s:e], np.zeros((32 - seq_len, 3), np.float32)])
        np.testing.assert_array_equal(windows[w].numpy(), expected)
        assert mask[w].tolist() == [True] * seq_len + [False] * (32 - seq_len)
    assert mask.sum(1).tolist() == [32, 32, 28, 20]
    with pytest.raises(ValueError, match="max_video_len: expected at least the longest window"):
        pad_windows(feats, spans, max_video_len=16)


def test_htm_tail_windows_follow_the_official_index_rule():
    # the official tail sets the last sentence index to T (seconds): with more sentences than
    # seconds the range stops at sentence T, not at the last sentence
    mids = np.linspace(0.5, 3.0, 6)
    _, official = active_text_windows(3, mids, np.zeros(6, bool), 2, 1, 1, "official")
    _, to_end = active_text_windows(3, mids, np.zeros(6, bool), 2, 1, 1, "all_sentences")
    assert official.tolist() == [[0, 6], [0, 4]]
    assert to_end.tolist() == [[0, 6], [0, 6]]


def test_htm_scores_encode_padded_windows(tiny_model, tmp_path):
    root = DataRoot(tmp_path)
    root.htm_align_features.mkdir(parents=True)
    rows = [[0, 0.0, 4.0, "hello there"], [1, 10.0, 14.0, "cut the bread"],
            [0, 30.0, 34.0, "now the sauce"], [1, 36.0, 40.0, "stir it"]]
    root.htm_align_json.write_text(json.dumps({"v": rows}))
    feats = np.random.default_rng(0).standard_normal((44, DIM)).astype(np.float16)
    np.save(root.htm_align_features / "v.npy", feats)
    video = load_htm_align(root, expected_dim=DIM)[0]
    assert tuple(video.windows.shape) == (4, 32, DIM)
    got = htm_align_scores(tiny_model, video)

    text = F.normalize(encode_captions(tiny_model, video.texts), dim=-1)
    f = torch.from_numpy(feats.astype(np.float32))

    def by_hand(padded):
        total, count = torch.zeros(4, 44), torch.zeros(4, 44)
        for (s, e), (r0, r1) in zip(video.window_spans.tolist(), video.text_ranges.tolist()):
            n = e - s
            v = f[s:e][None]
            m = torch.ones(1, n, dtype=torch.bool)
            if padded:  # official: zeros up to model.max_video_len, masked
                v = torch.cat([v, torch.zeros(1, 32 - n, DIM)], 1)
                m = torch.cat([m, torch.zeros(1, 32 - n, dtype=torch.bool)], 1)
            with torch.no_grad():
                tok = tiny_model.encode_video(v, m).tokens[0, 1 : n + 1]
            total[r0:r1, s:e] += text[r0:r1] @ F.normalize(tok, dim=-1).T
            count[r0:r1, s:e] += 1
        return torch.where(count > 0, total / count.clamp(min=1), torch.tensor(-6e4))

    torch.testing.assert_close(got, by_hand(padded=True), **TOL[torch.float32])
    # the short last windows see the SEP at another position when not padded
    assert not torch.allclose(got, by_hand(padded=False))


# ---------------------------------------------------------------------------------------------
# video-paragraph transport measures: plain OT and Norton's bucketed distance


def _paragraph_case(generator):
    lengths = [3, 4, 2]
    clips = torch.randn(sum(lengths), 5, generator=generator, dtype=torch.float64)
    caps = clips + 0.7 * torch.randn(sum(lengths), 5, generator=generator, dtype=torch.float64)
    t = torch.zeros(3, 4, 5, dtype=torch.float64)
    v = torch.zeros(3, 4, 5, dtype=torch.float64)
    mask = torch.arange(4)[None] < torch.tensor(lengths)[:, None]
    t[mask], v[mask] = caps, clips
    return t, v, mask, lengths


def test_plain_ot_measure_equals_pot_on_pooled_dot_products(generator):
    t, v, mask, lengths = _paragraph_case(generator)
    eps = 1.0
    s = paragraph_scores(t, mask, v, mask, measures=("OT (plain)",), ot_eps=eps, ot_iters=5000,
                         variants=("corrected",)).scores[("OT (plain)", "corrected")]
    expected = torch.zeros(3, 3, dtype=torch.float64)
    for q in range(3):
        for j in range(3):
            sim = (t[q, : lengths[q]] @ v[j, : lengths[j]].T).numpy()  # captions x clips
            a = np.full(lengths[q], 1 / lengths[q])
            b = np.full(lengths[j], 1 / lengths[j])
            plan = ot.sinkhorn(a, b, -sim, reg=eps, method="sinkhorn_log", numItermax=100000,
                               stopThr=1e-11)
            expected[q, j] = float((plan * sim).sum())
    torch.testing.assert_close(s, expected, **TOL_ITERATIVE)


def test_norton_bucket_measure_equals_bucket_sinkhorn_by_hand(generator):
    t, v, mask, lengths = _paragraph_case(generator)
    s = paragraph_scores(t, mask, v, mask, measures=("OT (Norton bucket)",),
                         variants=("corrected",)).scores[("OT (Norton bucket)", "corrected")]
    aligned = torch.cat([(t[g, :n] * v[g, :n]).sum(-1) for g, n in enumerate(lengths)])  # (9,)
    p = aligned.sort().values[int(0.3 * 9) - 1]  # the k-th smallest, k = int(0.3 * 9) = 2
    torch.testing.assert_close(aligned_bucket_value(aligned, 0.3), p)
    expected = torch.zeros(3, 3, dtype=torch.float64)
    for q in range(3):
        for j in range(3):
            sim = t[q, : lengths[q]] @ v[j, : lengths[j]].T
            plan = bucket_sinkhorn(sim, p, eps=0.1, n_iters=50, marginals="superglue",
                                   renormalize=True).plan
            expected[q, j] = (plan * sim).sum()
            torch.testing.assert_close(plan.sum(), torch.tensor(float(lengths[q]),
                                                                dtype=torch.float64))
    torch.testing.assert_close(s, expected, **TOL[torch.float64])
    fixed = paragraph_scores(t, mask, v, mask, measures=("OT (Norton bucket)",),
                             bucket_value=p).scores[("OT (Norton bucket)", "corrected")]
    torch.testing.assert_close(fixed, expected, **TOL[torch.float64])


def test_transport_measures_are_named_and_the_old_label_is_refused(generator):
    assert "OT" not in MEASURES
    assert {"OT (plain)", "OT (Norton bucket)"} <= set(MEASURES)
    assert TASKS["youcook_paragraph"].options["measures"] == MEASURES
    t, v, mask, _ = _paragraph_case(generator)
    with pytest.raises(ValueError, match=r"'OT' is now called 'OT \(plain\)'"):
        paragraph_scores(t, mask, v, mask, measures=("OT",))
    with pytest.raises(ValueError, match="bucket_value: required with background=True"):
        paragraph_scores(t, mask, v, mask, background=True, measures=("OT (Norton bucket)",))


# ---------------------------------------------------------------------------------------------
# fine-tuning schedules: the official yamls on real data, CPU schedules on the synthetic corpus


def test_official_schedules_hold_the_yaml_values():
    vtt, qa, coin = (FINETUNE_SCHEDULES[k] for k in ("vtt_ft", "vttqa", "coin"))
    assert (vtt.batch_size, vtt.epochs, vtt.dup) == (512, 15, 20)
    assert (qa.batch_size, qa.epochs, qa.dup) == (128, 8, 20)
    assert (coin.batch_size, coin.epochs, coin.dup) == (1, 8, 1)
    for s in (vtt, qa, coin):
        assert (s.lr, s.warmup_updates, s.total_num_update) == (5e-5, 122, 1_000_000)
        assert (s.betas, s.weight_decay, s.clip_norm, s.precision) == ((0.9, 0.98), 0.0, 2.0,
                                                                       "fp16")
    for name in ("synthetic_cpu", "synthetic_cpu_coin"):
        s = FINETUNE_SCHEDULES[name]
        assert s.steps == 100 and s.precision == "fp32"
        assert "CPU schedule for the synthetic corpus" in s.description


@pytest.mark.parametrize("task, real, synthetic", [
    ("msrvtt_retrieval", "vtt_ft", "synthetic_cpu"),
    ("msrvtt_qa", "vttqa", "synthetic_cpu"),
    ("coin", "coin", "synthetic_cpu_coin"),
])
def test_dataset_real_selects_the_official_schedule(tmp_path, task, real, synthetic):
    options = dict(TASKS[task].options)
    assert resolve_dataset(DataRoot(tmp_path)) == "real"  # a data root without the manifest
    assert finetune_schedule(task, resolve_dataset(DataRoot(tmp_path)), options).name == real
    assert finetune_schedule(task, "real", options) == FINETUNE_SCHEDULES[real]
    assert finetune_schedule(task, resolve_dataset(None), options).name == synthetic
    assert resolve_schedule(task, "real") is FINETUNE_SCHEDULES[real]
    steps = finetune_schedule(task, "real", dict(options, steps=7))  # explicit values win
    assert (steps.name, steps.steps, steps.epochs, steps.warmup_updates) == (real, 7, None, 122)


def test_cli_dataset_flag_is_recorded(tmp_path):
    root = ensure_corpus(tmp_path / "corpus", "smoke")
    assert resolve_dataset(root) == "synthetic"
    assert main(["--task", "msrvtt_qa", "--data-root", str(root.root), "--smoke",
                 "--dataset", "real", "--out", str(tmp_path / "out")]) == 0
    meta = json.loads((tmp_path / "out" / "msrvtt_qa.json").read_text())["meta"]
    assert meta["dataset"] == "real"


def test_finetune_warms_up_and_decays_as_fairseq(tiny_model):
    v = torch.randn(4, 3, DIM)
    vm = torch.ones(4, 3, dtype=torch.bool)

    def loss(model, batch):
        p = model.encode_video(v, vm).pooled
        return F.cross_entropy(p @ p.T, torch.arange(4))

    res = finetune(tiny_model, lambda rng: None, loss, lambda m: 0.0, steps=4, lr=1e-3,
                   eval_every=1, warmup_updates=2, total_num_update=6)
    rates = [e["lr"] for e in res.log[1:]]
    assert rates == [polynomial_decay_lr(u, 1e-3, 2, 6) for u in range(4)]
    assert rates[0] == 0.0 and rates[2] == 1e-3  # fairseq: the first update runs at rate 0
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = finetune(tiny_model, lambda rng: None, loss, lambda m: 0.0, steps=1,
                       precision="fp16")
    assert res.precision == "fp32" and any("fp16" in str(w.message) for w in caught)


def test_epochs_cover_the_duplicated_list():
    s = FINETUNE_SCHEDULES["vttqa"]
    assert s.updates_per_epoch(6300) == math.ceil(6300 * 20 / 128)
    it = epoch_batches(5, 4, 3, np.random.default_rng(0))
    epoch = np.concatenate([next(it) for _ in range(math.ceil(15 / 4))])
    assert sorted(epoch.tolist()) == sorted(list(range(5)) * 3)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_finetune_fp16_runs_under_autocast_on_cuda(tiny_model):
    model = tiny_model.cuda()
    v = torch.randn(4, 3, DIM, device="cuda")
    vm = torch.ones(4, 3, dtype=torch.bool, device="cuda")
    dtypes = []

    def loss(m, batch):
        p = m.encode_video(v, vm).pooled
        dtypes.append(p.dtype)
        return F.cross_entropy((p @ p.T).float(), torch.arange(4, device="cuda"))

    res = finetune(model, lambda rng: None, loss, lambda m: 0.0, steps=3, precision="fp16",
                   warmup_updates=1, total_num_update=10)
    assert res.precision == "fp16" and torch.float16 in dtypes
    assert all(torch.isfinite(p).all() for p in res.model.parameters())
