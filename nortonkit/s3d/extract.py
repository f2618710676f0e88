"""Feature extraction: decoded uint8 chunks through S3D to Norton's per-second video features.

* :func:`chunks_to_input` turns uint8 chunks into the model's float input exactly as the
  official preprocessing does; :func:`embed_chunks` gives their L2-normalised embeddings.
* :func:`extract_features` streams a video (decoding in a background thread) into the
  ``(N, 512)`` float16 rows stored in Norton's ``<video_id>.npy`` files; row ``i`` covers second
  ``[i, i + 1)``.

Shapes use the package glossary plus ``V`` frames per one-second chunk (30), ``H``/``W`` frame
height/width (224) and ``N`` one-second rows of a video.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from nortonkit.validation import check_int_at_least, check_tensor

from .network import S3D
from .video import CHUNK_FPS, FRAME_SIZE, iter_chunks

__all__ = ["chunks_to_input", "embed_chunks", "extract_features"]

_UINT8_TO_UNIT = torch.arange(256, dtype=torch.float32) / 255.0  # exact IEEE x / 255


def chunks_to_input(chunks: Tensor) -> Tensor:
    """uint8 chunks ``shape (B, V, H, W, 3)`` -> model input ``shape (B, 3, V, H, W)`` in [0, 1].

    Values are ``x / 255`` in float32 exactly as the official preprocessing computes them on
    the CPU (a lookup table keeps GPUs from using a reciprocal multiply); no mean/std.

    Examples
    --------
    >>> chunks_to_input(torch.full((1, 2, 2, 2, 3), 255, dtype=torch.uint8)).shape
    torch.Size([1, 3, 2, 2, 2])
    """
    check_tensor("chunks", chunks, ndim=5, floating=False, shape=(None, None, None, 3))
    if chunks.dtype != torch.uint8:
        raise ValueError(f"chunks: expected dtype torch.uint8, got {chunks.dtype}")
    lut = _UINT8_TO_UNIT.to(chunks.device)
    x = lut[chunks.int()]  # (B, V, H, W, 3)
    return x.permute(0, 4, 1, 2, 3).contiguous()  # (B, 3, V, H, W)


def embed_chunks(model: S3D, chunks: Tensor, *, amp: bool = False) -> Tensor:
    """L2-normalised ``video_embedding`` ``shape (B, 512)`` float32 of uint8 chunks.

    Parameters
    ----------
    model : S3D
        In eval mode; the chunks are moved to its device.
    chunks : Tensor
        ``shape (B, V, H, W, 3)`` uint8 from :func:`iter_chunks`.
    amp : bool
        Autocast to float16 on CUDA (faster, not bit-faithful; off by default).

    Notes
    -----
    Stored feature of Norton's data: :math:`e / \\max(\\lVert e \\rVert_2, 10^{-12})`
    (``F.normalize``), as the official extractor's ``--l2_normalize 1``.

    Examples
    --------
    >>> net = S3D(with_text=False).eval()
    >>> e = embed_chunks(net, torch.zeros(1, 6, 32, 32, 3, dtype=torch.uint8))
    >>> e.shape, round(float(e.norm()), 4)
    (torch.Size([1, 512]), 1.0)
    """
    if model.training:
        raise ValueError("model: expected eval mode (BatchNorm running statistics); "
                         "call model.eval()")
    device = next(model.parameters()).device
    if amp and device.type != "cuda":
        raise ValueError(f"amp: autocast is only supported on CUDA, model is on {device}")
    with torch.inference_mode():
        x = chunks_to_input(chunks.to(device, non_blocking=True))
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            emb = model(x).video_embedding
        return F.normalize(emb.float(), dim=1, eps=1e-12)


class _Raised(NamedTuple):
    exc: BaseException


def _prefetch(factory: Callable[[], Iterator[Any]], depth: int) -> Iterator[Any]:
    """Run ``factory()`` in a thread, ``depth`` items ahead; errors re-raise in the caller."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    end = object()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        gen = factory()
        try:
            for item in gen:
                if not put(item):
                    return
            put(end)
        except BaseException as e:  # forwarded to the consumer
            put(_Raised(e))
        finally:
            gen.close()

    thread = threading.Thread(target=work, name="s3d-decode", daemon=True)
    thread.start()
    try:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, _Raised):
                raise item.exc
            yield item
    finally:
        stop.set()
        thread.join()


def extract_features(path: str | Path, model: S3D, *, batch_size: int = 1, amp: bool = False,
                     fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                     rotation: Literal["auto", "official"] = "auto",
                     last_chunk: Literal["pad", "repeat", "drop"] = "pad", prefetch: int = 2,
                     on_chunks: Callable[[int], None] | None = None) -> np.ndarray:
    """Per-second S3D features of one video, as stored in Norton's ``<video_id>.npy`` files.

    Parameters
    ----------
    path : str or Path
        Video file.
    model : S3D
        From :func:`load_s3d`, in eval mode, on the device to use.
    batch_size : int
        Chunks (seconds) per forward pass; batches never mix videos, so results do not depend
        on what else is extracted.
    amp : bool
        CUDA autocast (see :func:`embed_chunks`).
    fps, size, rotation, last_chunk
        As in :func:`iter_chunks`; the defaults reproduce the released features.
    prefetch : int
        Batches decoded ahead in a background thread (0: decode inline).
    on_chunks : callable, optional
        Called with the number of chunks after each batch (progress bars).

    Returns
    -------
    numpy.ndarray
        ``shape (N, 512)`` float16, rows L2-normalised (norms 1 within 1e-3).

    Raises
    ------
    ValueError
        Naming the file when it cannot be decoded or yields no complete chunk.

    Notes
    -----
    Norton Appendix A: one S3D token per second at 30 fps. Memory stays flat in the video
    length: uint8 chunks are decoded, batched, moved to the device and only then converted.

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=30)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(40):
    ...         c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), i, np.uint8))))
    ...     c.mux(s.encode())
    >>> feats = extract_features(p, S3D(with_text=False).eval(), size=32, batch_size=2)
    >>> feats.shape, feats.dtype
    ((2, 512), dtype('float16'))
    """
    check_int_at_least("batch_size", batch_size, 1)
    check_int_at_least("prefetch", prefetch, 0)
    cuda = next(model.parameters()).device.type == "cuda"

    def batches() -> Iterator[Tensor]:
        pending: list[np.ndarray] = []
        for chunk in iter_chunks(path, fps=fps, size=size, rotation=rotation,
                                 last_chunk=last_chunk):
            pending.append(chunk)
            if len(pending) == batch_size:
                yield _stack(pending, cuda)
                pending = []
        if pending:
            yield _stack(pending, cuda)

    source = _prefetch(batches, prefetch) if prefetch else batches()
    rows: list[Tensor] = []
    for batch in source:
        rows.append(embed_chunks(model, batch, amp=amp).cpu())
        if on_chunks is not None:
            on_chunks(batch.shape[0])
    if not rows:
        raise ValueError(f"{path}: no complete one-second chunk (last_chunk={last_chunk!r})")
    return torch.cat(rows).numpy().astype(np.float16)  # (N, 512)


def _stack(chunks: list[np.ndarray], pin: bool) -> Tensor:
    batch = torch.from_numpy(np.stack(chunks))  # (B, V, H, W, 3) uint8
    return batch.pin_memory() if pin else batch
