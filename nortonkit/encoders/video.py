"""The video side: :class:`VideoTokenMLP` (frame features to BERT width) and :class:`VideoEncoder`.

Parameter names (``videomlp.linear1``, ``videomlp.LayerNorm``, ``videomlp.linear2``, ``bert.*``,
``classifier``) match the released fairseq checkpoints' ``video_encoder.*`` keys.
"""

from __future__ import annotations

from torch import Tensor, nn
from transformers import BertModel

from .bert import _bert_config
from .config import EncoderConfig

__all__ = ["VideoTokenMLP", "VideoEncoder"]


class VideoTokenMLP(nn.Module):
    """Projects frame features to BERT width: ``linear2(LayerNorm(gelu(linear1(x))))``.

    Parameters
    ----------
    feature_dim : int
        input frame-feature dimension (S3D: 512).
    hidden_size : int
        output width H.
    eps : float
        LayerNorm epsilon (1e-5, the torch default used by the released module).

    Notes
    -----
    VideoCLIP's ``VideoTokenMLP`` (exact erf GELU); parameter names ``linear1``, ``LayerNorm``,
    ``linear2`` match the released checkpoints.

    Examples
    --------
    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> VideoTokenMLP(512, 8)(torch.zeros(2, 3, 512)).shape
    torch.Size([2, 3, 8])
    """

    def __init__(self, feature_dim: int, hidden_size: int, eps: float = 1e-5):
        super().__init__()
        self.linear1 = nn.Linear(feature_dim, hidden_size)
        self.activation = nn.GELU()  # exact (erf) GELU
        self.LayerNorm = nn.LayerNorm(hidden_size, eps=eps)
        self.linear2 = nn.Linear(hidden_size, hidden_size)
        for linear in (self.linear1, self.linear2):  # BERT's initialiser
            nn.init.normal_(linear.weight, std=0.02)
            nn.init.zeros_(linear.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Map ``x`` of shape (..., D) to shape (..., H)."""
        return self.linear2(self.LayerNorm(self.activation(self.linear1(x))))


class VideoEncoder(nn.Module):
    """``videomlp`` + a BERT fed with ``[word_emb(CLS), videomlp(frames), word_emb(SEP)]``.

    Submodules (state-dict names of the released checkpoints): ``videomlp``
    (:class:`VideoTokenMLP`), ``bert`` (HF ``BertModel``) and, with ``n_classes``, the per-frame
    head ``classifier`` (``Linear(H, n_classes)``). Use it through
    :meth:`DualEncoder.encode_video`.

    Examples
    --------
    >>> enc = VideoEncoder(EncoderConfig(preset="tiny", n_classes=779))
    >>> tuple(enc.videomlp.linear1.weight.shape), tuple(enc.classifier.weight.shape)
    ((64, 512), (779, 64))
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.videomlp = VideoTokenMLP(
            cfg.video_feature_dim, cfg.hidden_size, cfg.mlp_layer_norm_eps
        )
        self.bert = BertModel(_bert_config(cfg, cfg.video_layers))
        if cfg.n_classes is not None:
            self.classifier = nn.Linear(cfg.hidden_size, cfg.n_classes)
            nn.init.normal_(self.classifier.weight, std=0.02)
            nn.init.zeros_(self.classifier.bias)
