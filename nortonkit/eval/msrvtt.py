r"""MSR-VTT: text-to-video retrieval on the 1k-A test set (Norton Table 5) and multiple-choice QA
(Table 6).

Retrieval ranks the test videos of each sentence by the dot product of the pooled vectors
(:func:`~nortonkit.eval.clip.caption_clip_scores`, ``docs/protocols.md`` §7.5). QA picks, for
each question video, the candidate sentence of highest dot product (:func:`qa_scores`,
§7.6): the first 16 s of video, 77 tokens per candidate. The fine-tuned rows of both tables come
from :mod:`nortonkit.lab.finetune`, which calls these evaluators on the fine-tuned model.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ..data.msrvtt import load_msrvtt_qa, load_msrvtt_test
from ..encoders import DualEncoder
from ..metrics import choice_accuracy
from .clip import caption_clip_scores, retrieval_rows
from .common import encode_captions, encode_clips, text_token_budget

__all__ = ["eval_msrvtt_retrieval", "qa_scores", "eval_msrvtt_qa"]


def eval_msrvtt_retrieval(model: DualEncoder, root: Any, device: str = "cpu",
                          batch_size: int = 256, setting: str = "zero-shot") -> list[dict]:
    """Norton Table 5: MSR-VTT text-to-video retrieval on the 1k-A test set."""
    clips = load_msrvtt_test(root, expected_dim=model.config.video_feature_dim)
    rows = retrieval_rows(caption_clip_scores(model, clips, device, batch_size))
    return [dict(r, table="T5", setting=setting) for r in rows]


def qa_scores(model: DualEncoder, qa: Any, device: str = "cpu", batch_size: int = 256,
              max_tokens: int = 77, tokenizer: Any = None) -> Tensor:
    r"""Question x candidate dot products ``(Q, A)`` of a :class:`~nortonkit.data.msrvtt.QASet`.

    .. math:: s_{qa} = \langle \bar v_q, \bar t_{qa} \rangle

    Parameters
    ----------
    model : the dual encoder.
    qa : the questions: video ``(Q, V, D)`` and ``A`` candidate sentences per question.
    device, batch_size : where and how many sentences or videos per forward pass.
    max_tokens : word pieces kept per candidate: 77, the QA yamls' ``96 - 16 - 3``
        (:func:`~nortonkit.eval.common.text_token_budget`).
    tokenizer : optional tokenizer (default :func:`~nortonkit.data.text.load_tokenizer`).

    Returns
    -------
    Tensor of shape (Q, A).

    Notes
    -----
    ``docs/protocols.md`` §7.6 (``MSRVTTQAAligner`` builds each candidate with the ``DSAligner``
    of ``max_len 96`` / ``max_video_len 16``, so 80 caption positions and 77 tokens) and §3.2.
    """
    video = encode_clips(model, qa.video, qa.video_mask, device, batch_size)  # (Q, H)
    n_cand = len(qa.candidates[0])
    flat = [c for cands in qa.candidates for c in cands]
    text = encode_captions(model, flat, device, batch_size, max_tokens, tokenizer)
    text = text.reshape(len(qa.candidates), n_cand, -1)  # (Q, A, H)
    return torch.einsum("qh,qah->qa", video, text)


def eval_msrvtt_qa(model: DualEncoder, root: Any, device: str = "cpu", batch_size: int = 256,
                   max_video_len: int = 16, setting: str = "zero-shot",
                   max_tokens: int | None = None) -> list[dict]:
    """Norton Table 6: MSR-VTT multiple-choice QA accuracy (first 16 s of video).

    ``max_tokens`` None: :func:`~nortonkit.eval.common.text_token_budget` of
    ``max_video_len``, i.e. 77 tokens per candidate with the official 16 s
    (``docs/protocols.md`` §7.6).
    """
    if max_tokens is None:
        max_tokens = text_token_budget(max_video_len)
    qa = load_msrvtt_qa(root, max_video_len=max_video_len,
                        expected_dim=model.config.video_feature_dim)
    s = qa_scores(model, qa, device, batch_size, max_tokens)
    conventions = (("corrected", "pessimistic"), ("official-compatible", "official"))
    return [dict(table="T6", setting=setting, measure="QA", variant=variant, metric="accuracy",
                 value=100 * choice_accuracy(s, qa.answers, ties=ties), n=len(qa.answers))
            for variant, ties in conventions]
