"""Named loss presets: Norton, its baselines, the paper's ablations A-J, paper vs official.

A preset is a partial configuration (``loss.*`` and the model's ``trainable``,
``seq_logit_scale_learnable`` and ``clip_logit_scale``) that
:func:`nortonkit.train.config.load_config` merges *under* the user's file: keys written in the file
win. ``preset: norton`` in a YAML file, or ``preset=norton-official`` on the command line,
selects one.

Two families, where the paper and the released code disagree (docs/protocols.md §2.4):

* **paper** (``norton``, ``norton-paper``, ``videoclip``, ``tempclr``, ``A`` ... ``J``): the
  method as the paper writes it: cosine logits with a learnable temperature in L_clip
  (Eq. 8), a learnable sequence temperature (initialised at 0.07), the exact masked soft
  maximum of Eq. (5) with no fusion and no min-max, uniform bucket marginals ``1/(n+1)`` and
  no mass renormalisation (Eq. 2, 6), every parameter trained.
* **official** (``norton-official``, ``videoclip-official``, ``A-official`` ...
  ``J-official``): the released code: raw dot-product L_clip logits without temperature
  (D2), the sequence temperature frozen at 1/0.07 (D1), the padding-leaking soft maximum
  (D8) min-max normalised and fused with the pooled cosine at weight 0.5 (D7), SuperGlue
  bucket marginals and plans renormalised to mass K (D5, D6), LayerNorm-only training (D14).

Both families share lambda = 0.1, beta = 0.3, eps = 0.1 (L_video) and 1 (L_clip), 50 Sinkhorn
iterations, K = 8 and p = bottom 30 %, and a FNE plan scaled to unit row sums (D3).

Loss presets (columns are the fields each one sets; ``·`` = the family's value above)

=====================  ======  =====  ==========  ==========  ======  ======  ====================
preset                 beta    lambda measure     similarity  alpha   p       definition
=====================  ======  =====  ==========  ==========  ======  ======  ====================
``norton`` (= J)       0.3     0.1    ot_bucket   lse         1       30 %    Norton (paper), Eq. 1
``norton-paper``       0.3     0.1    ot_bucket   lse         1       30 %    same as ``norton``
``norton-official``    0.3     0.1    ot_bucket   lse+fused   1       30 %    released code
``videoclip``          0       0      ·           ·           ·       ·       clip InfoNCE only
``videoclip-official`` 0       0      ·           ·           ·       ·       VideoCLIP's loss:
                                                                              raw logits, all params
``tempclr``            0       0.1    dtw         mean        ·       ·       InfoNCE + sequence
                                                                              contrast by soft-DTW
                                                                              on pooled cosines
``A``                  0       0      ·           ·           ·       ·       T7-A: w/o L_video
``B``                  0.3     0      ·           ·           ·       ·       T7-B: + FNE
``C``                  0.3     0.1    ot          mean        ·       none    T7-C: vanilla OT on
                                                                              mean-pooled vectors
``D``                  0.3     0.1    ot          lse         0.001   none    T7-D: max token
                                                                              (Yao et al.), alpha->0
``E``                  0.3     0.1    ot          lse         0.1     none    T7-E
``F``                  0.3     0.1    ot          lse         0.2     none    T7-F
``G``                  0.3     0.1    ot          lse         1       none    T7-G
``H``                  0.3     0.1    ot_bucket   lse         1       10 %    T7-H
``I``                  0.3     0.1    ot_bucket   lse         1       50 %    T7-I
``J``                  0.3     0.1    ot_bucket   lse         1       30 %    T7-J (Norton)
``X-official``         as ``X``, on the official family (X in A-J)
=====================  ======  =====  ==========  ==========  ======  ======  ====================

Ablation D takes the hard maximum over tokens (FILIP / Yao et al. 2022). It is realised as the
soft maximum at ``alpha = 0.001``, which is within ``alpha * log(T) < 0.004`` of the maximum
for ``T <= 32`` tokens. C, D, E, F and G use plain entropic OT without the bucket
("vanilla OT"). The paper's "Mean average" of C is the cosine of the mean-pooled clip and
caption vectors.

The TempCLR weight of its sequence loss is not given by the sources; ``tempclr`` keeps
Norton's lambda = 0.1 so that the two are comparable. Every preset keeps the shared
hyper-parameters above unless its row says otherwise.
"""

from __future__ import annotations

import copy
import difflib
from typing import Any

__all__ = ["LOSS_PRESETS", "PAPER", "OFFICIAL", "ABLATIONS", "preset_values", "preset_names"]

# The paper family: Norton as written in the paper (Eq. 1-8, Sec. 4.1, App. A).
PAPER: dict[str, dict[str, Any]] = {
    "loss": {
        "clip_weight": 1.0,
        "video_weight": 0.1,
        "beta": 0.3,
        "fne_eps": 1.0,
        "clip_normalize": True,
        "seq_len": 8,
        "measure": "ot_bucket",
        "video_eps": 0.1,
        "bucket_quantile": 0.3,
        "bucket_marginals": "uniform",
        "renormalize": False,
        "n_iters": 50,
        "mask_same_video": False,
        "similarity": "lse",
        "lse_temperature": 1.0,
        "lse_mask_mode": "exact",
        "fusion_weight": 0.0,
        "minmax": False,
        "minmax_detach": False,
    },
    "model": {
        "trainable": "all",
        "seq_logit_scale_learnable": True,
        "clip_logit_scale": "learnable",
    },
}

# The official family: what the released code computes (docs/protocols.md §2, D1-D18).
OFFICIAL: dict[str, dict[str, Any]] = {
    "loss": {
        **PAPER["loss"],
        "clip_normalize": False,
        "bucket_marginals": "superglue",
        "renormalize": True,
        "lse_mask_mode": "official",
        "fusion_weight": 0.5,
        "minmax": True,
    },
    "model": {"trainable": "layernorm_only", "seq_logit_scale_learnable": False,
              "clip_logit_scale": None},
}

# Table 7 rows as changes of the loss section (applied on top of a family).
ABLATIONS: dict[str, dict[str, Any]] = {
    "A": {"beta": 0.0, "video_weight": 0.0},
    "B": {"beta": 0.3, "video_weight": 0.0},
    "C": {"measure": "ot", "similarity": "mean"},
    "D": {"measure": "ot", "lse_temperature": 0.001},
    "E": {"measure": "ot", "lse_temperature": 0.1},
    "F": {"measure": "ot", "lse_temperature": 0.2},
    "G": {"measure": "ot", "lse_temperature": 1.0},
    "H": {"measure": "ot_bucket", "bucket_quantile": 0.1},
    "I": {"measure": "ot_bucket", "bucket_quantile": 0.5},
    "J": {"measure": "ot_bucket", "bucket_quantile": 0.3},
}


def _with(family: dict[str, dict[str, Any]], **loss: Any) -> dict[str, dict[str, Any]]:
    out = copy.deepcopy(family)
    out["loss"].update(loss)
    return out


def _build_presets() -> dict[str, dict[str, dict[str, Any]]]:
    presets = {
        "norton": _with(PAPER),
        "norton-paper": _with(PAPER),
        "norton-official": _with(OFFICIAL),
        "videoclip": _with(PAPER, beta=0.0, video_weight=0.0),
        # VideoCLIP's own code: raw dot products, no temperature, every parameter trained
        # (A-official is the same loss with Norton's LayerNorm-only post-training).
        "videoclip-official": _with(OFFICIAL, beta=0.0, video_weight=0.0),
        "tempclr": _with(PAPER, beta=0.0, measure="dtw", similarity="mean"),
    }
    presets["videoclip-official"]["model"]["trainable"] = "all"
    for row, change in ABLATIONS.items():
        presets[row] = _with(PAPER, **change)
        presets[f"{row}-official"] = _with(OFFICIAL, **change)
    return presets


LOSS_PRESETS: dict[str, dict[str, dict[str, Any]]] = _build_presets()


def preset_names() -> list[str]:
    """Every preset name, in definition order.

    >>> preset_names()[:4]
    ['norton', 'norton-paper', 'norton-official', 'videoclip']
    """
    return list(LOSS_PRESETS)


def preset_values(name: str) -> dict[str, dict[str, Any]]:
    """A deep copy of preset ``name`` as ``{section: {field: value}}``.

    Parameters
    ----------
    name : a key of :data:`LOSS_PRESETS`.

    Returns
    -------
    dict with the sections ``"loss"`` and ``"model"`` (trainable parameters and temperatures).

    Notes
    -----
    Table 7 of the paper defines A-J; see the module docstring for every preset.

    Examples
    --------
    >>> v = preset_values("E")
    >>> v["loss"]["measure"], v["loss"]["lse_temperature"], v["loss"]["beta"]
    ('ot', 0.1, 0.3)
    >>> preset_values("norton-official")["model"]["clip_logit_scale"] is None
    True
    >>> preset_values("nortn")
    Traceback (most recent call last):
    ...
    ValueError: preset: unknown preset 'nortn'; did you mean 'norton'? (known: norton, ...)
    """
    if name not in LOSS_PRESETS:

        close = difflib.get_close_matches(name, list(LOSS_PRESETS), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"preset: unknown preset {name!r}{hint} (known: {', '.join(LOSS_PRESETS)})"
        )
    return copy.deepcopy(LOSS_PRESETS[name])
