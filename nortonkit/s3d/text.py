"""The text side of MIL-NCE's S3D: the sentence encoder, the word dictionary and the tokenizer.

* :class:`SentenceEmbedding` is the optional ``text_module`` branch of the released model
  (word embedding -> fc1 -> ReLU -> max over words -> fc2).
* :func:`load_s3d_dictionary` reads ``s3d_dict.npy`` without unpickling,
  :func:`build_word_to_id` maps its words to token ids and :func:`tokenize_s3d` turns sentences
  into ``shape (B, max_words)`` ids.

Shapes use the package glossary (``B`` sentences, ``T`` word tokens).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nortonkit.validation import check_int_at_least, check_tensor

__all__ = [
    "SentenceEmbedding",
    "load_s3d_dictionary",
    "build_word_to_id",
    "tokenize_s3d",
    "EMBED_DIM",
    "NUM_EMBEDDINGS",
    "WORD_DIM",
    "TEXT_HIDDEN",
    "MAX_WORDS",
]

EMBED_DIM = 512  # video_embedding / text_embedding width (the official num_classes=512)
NUM_EMBEDDINGS = 66250  # 66,249 dictionary words + padding row 0
WORD_DIM = 300
TEXT_HIDDEN = 2048
MAX_WORDS = 16


class SentenceEmbedding(nn.Module):
    """MIL-NCE's text branch: word embedding -> fc1 -> ReLU -> max over words -> fc2.

    Parameters
    ----------
    embd_dim, num_embeddings, word_dim, hidden_dim : int
        Output width (512), vocabulary rows (66,250 = 66,249 words + padding row 0), word vector
        width (300) and hidden width (2048), as in the released checkpoint.

    Notes
    -----
    MIL-NCE (Miech et al., CVPR 2020) sentence encoder, as used by the released S3D model:

    .. math:: f(s) = W_2 \\max_{t} \\mathrm{ReLU}(W_1 e_{s_t} + b_1) + b_2

    Padding id 0 is an ordinary trained row (no ``padding_idx``), so padded positions take part
    in the max exactly as in the official module. There is no normalisation.

    Examples
    --------
    >>> m = SentenceEmbedding(num_embeddings=6)
    >>> m(torch.tensor([[1, 5, 2, 0]])).shape
    torch.Size([1, 512])
    """

    def __init__(self, embd_dim: int = EMBED_DIM, num_embeddings: int = NUM_EMBEDDINGS,
                 word_dim: int = WORD_DIM, hidden_dim: int = TEXT_HIDDEN):
        super().__init__()
        self.word_embd = nn.Embedding(num_embeddings, word_dim)
        self.fc1 = nn.Linear(word_dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, embd_dim)

    def forward(self, token_ids: Tensor) -> Tensor:
        """Embed token ids ``shape (B, T)`` int64 into ``shape (B, 512)``."""
        check_tensor("token_ids", token_ids, ndim=2, floating=False)
        n = self.word_embd.num_embeddings
        if token_ids.dtype not in (torch.int64, torch.int32) or token_ids.shape[1] == 0:
            raise ValueError(f"token_ids: expected int64 ids of shape (B, T>0), got dtype "
                             f"{token_ids.dtype} shape {tuple(token_ids.shape)}")
        if token_ids.numel() and (int(token_ids.min()) < 0 or int(token_ids.max()) >= n):
            raise ValueError(f"token_ids: expected ids in [0, {n}), got range "
                             f"[{int(token_ids.min())}, {int(token_ids.max())}]")
        x = F.relu(self.fc1(self.word_embd(token_ids)))  # (B, T, 2048)
        return self.fc2(x.max(dim=1).values)  # (B, 512)


def load_s3d_dictionary(path: str | Path, num_embeddings: int = NUM_EMBEDDINGS) -> list[str]:
    """Read ``s3d_dict.npy``: word ``i`` of the array gets token id ``i + 1``.

    Parameters
    ----------
    path : str or Path
        A ``.npy`` file holding a 1-D fixed-width unicode array (the released file is most
        likely ``<U22`` with 66,249 words). Read with ``allow_pickle=False``: a pickled object
        array is refused rather than unpickled, as the official ``np.load(path)`` would too.
    num_embeddings : int
        Rows of the word embedding; the dictionary may hold at most ``num_embeddings - 1``.

    Returns
    -------
    list of str

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "dict.npy"
    >>> np.save(p, np.array(["open", "door"]))
    >>> load_s3d_dictionary(p)
    ['open', 'door']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: dictionary file not found")
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise ValueError(f"{path}: not a readable .npy file (no NumPy header)")
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise ValueError(f"{path}: holds a pickled object array; expected a plain unicode "
                             "string array (np.save(path, np.array(words)))") from None
        raise ValueError(f"{path}: not a readable .npy file: {e}") from None
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npy file: {e}") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: expected a single .npy array, got {type(arr).__name__}")
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    if arr.dtype.kind != "U" or arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{path}: expected a non-empty 1-D unicode string array, got dtype "
                         f"{arr.dtype} shape {arr.shape}")
    if arr.size > num_embeddings - 1:
        raise ValueError(f"{path}: {arr.size} words do not fit {num_embeddings} embedding rows "
                         f"(at most {num_embeddings - 1} words + padding row 0)")
    return [str(w) for w in arr.tolist()]


def build_word_to_id(words: Iterable[str]) -> dict[str, int]:
    """Map word ``i`` to id ``i + 1`` (0 is padding); a repeated word keeps its last id.

    Examples
    --------
    >>> build_word_to_id(["open", "door"])
    {'open': 1, 'door': 2}
    """
    return {w: i + 1 for i, w in enumerate(words)}


_WORD_RE = re.compile(r"[\w']+")


def tokenize_s3d(sentences: Sequence[str], word_to_id: Mapping[str, int],
                 max_words: int = MAX_WORDS) -> Tensor:
    """Token ids of the MIL-NCE text branch.

    Parameters
    ----------
    sentences : sequence of str
        ``B`` sentences.
    word_to_id : mapping
        From :func:`build_word_to_id`.
    max_words : int
        Ids kept per sentence (16 in the released model).

    Returns
    -------
    Tensor
        ``shape (B, max_words)`` int64: the first ``max_words`` known words, right-padded with 0.

    Notes
    -----
    Lower-case, split with the regex ``[\\w']+`` (punctuation dropped, "don't" kept whole),
    drop out-of-vocabulary words, truncate or pad. A sentence with no known word is all zeros.

    Examples
    --------
    >>> vocab = build_word_to_id(["open", "door", "cut", "tomato", "the"])
    >>> tokenize_s3d(["Open the door!", "zebra"], vocab, max_words=4).tolist()
    [[1, 5, 2, 0], [0, 0, 0, 0]]
    """
    check_int_at_least("max_words", max_words, 1)
    if isinstance(sentences, str):
        raise ValueError("sentences: expected a sequence of strings, got a single str")
    ids = torch.zeros(len(sentences), max_words, dtype=torch.int64)
    for i, sentence in enumerate(sentences):
        words = _WORD_RE.findall(str(sentence).lower())
        known = [word_to_id[w] for w in words if w in word_to_id][:max_words]
        ids[i, : len(known)] = torch.tensor(known, dtype=torch.int64)
    return ids
