"""Video decoding and frame sampling with PyAV, as the official S3D extractor's ffmpeg command.

* :func:`frame_geometry` gives the scale and centre-crop of the official ``scale`` + ``crop``
  filters (:class:`FrameGeometry`).
* :func:`iter_frames` decodes a video through the same libavfilter chain as the official ffmpeg
  command (``fps=30``, bicubic ``scale`` of the short side to 224, centre ``crop=224:224``,
  ``rgb24``), giving byte-identical frames; :func:`iter_chunks` streams them as uint8
  one-second chunks; :func:`expected_rows` predicts how many chunks a video gives.

Shapes use ``V`` frames per one-second chunk (30) and ``H``/``W`` frame height/width (224).
PyAV is imported only by the decoding functions.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from nortonkit.validation import check_choice, check_int_at_least

__all__ = [
    "FrameGeometry",
    "frame_geometry",
    "iter_frames",
    "iter_chunks",
    "expected_rows",
    "CHUNK_FPS",
    "FRAME_SIZE",
]

CHUNK_FPS = 30  # decoding rate; one chunk = CHUNK_FPS frames = one second
FRAME_SIZE = 224


class FrameGeometry(NamedTuple):
    """Scaled size and centre-crop offsets of the official ``scale`` + ``crop`` filters."""

    scaled_width: int
    scaled_height: int
    crop_x: int
    crop_y: int


def frame_geometry(width: int, height: int, size: int = FRAME_SIZE) -> FrameGeometry:
    """Short side to ``size`` (long side truncated), then a centred ``size`` x ``size`` crop.

    Examples
    --------
    >>> frame_geometry(320, 240)
    FrameGeometry(scaled_width=298, scaled_height=224, crop_x=37, crop_y=0)
    >>> frame_geometry(240, 426)
    FrameGeometry(scaled_width=224, scaled_height=397, crop_x=0, crop_y=86)
    """
    check_int_at_least("width", width, 1)
    check_int_at_least("height", height, 1)
    if width >= height:
        w, h = int(width * size / height), size
    else:
        w, h = size, int(height * size / width)
    return FrameGeometry(w, h, int((w - size) / 2), int((h - size) / 2))


def _rotation_filters(rotation_ccw: float) -> list[tuple[str, str | None]]:
    # The ffmpeg CLI's autorotate: theta = -display rotation, in [0, 360).
    theta = (-round(rotation_ccw)) % 360
    return {90: [("transpose", "clock")], 180: [("hflip", None), ("vflip", None)],
            270: [("transpose", "cclock")]}.get(theta, [])


def _pull_all(graph: Any) -> Iterator[np.ndarray]:
    while True:
        try:
            frame = graph.pull()
        except (BlockingIOError, EOFError):  # av.error.* subclass both builtins
            return
        yield frame.to_ndarray()  # (H, W, 3) uint8


def iter_frames(path: str | Path, *, fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                rotation: Literal["auto", "official"] = "auto") -> Iterator[np.ndarray]:
    """Decode a video like the official extractor's ffmpeg command, one RGB frame at a time.

    Parameters
    ----------
    path : str or Path
        Any file FFmpeg reads; the first video stream is used, audio is ignored.
    fps, size : int
        Output rate and crop size (30 and 224 for the released features).
    rotation : {"auto", "official"}
        Rotated videos (display-matrix side data, e.g. phone videos) are rotated upright like
        the ffmpeg CLI does. ``"auto"`` sizes the scale from the upright frame (no distortion);
        ``"official"`` sizes it from the coded frame as the official extractor's ffprobe step
        did, which stretches 90/270-degree videos. Both agree for unrotated videos.

    Yields
    ------
    numpy.ndarray
        ``shape (size, size, 3)`` uint8 RGB frames at ``fps``.

    Raises
    ------
    ValueError
        Naming the file: unreadable or empty file, no video stream, zero decoded frames, or a
        resolution change mid-stream. Undecodable packets are skipped (as the ffmpeg CLI does)
        with a ``RuntimeWarning`` naming the file.

    Notes
    -----
    Norton Appendix A: 30 fps input to S3D. The PyAV filter graph ``buffer -> fps=30 ->
    scale=W:H:flags=bicubic -> crop=size:size:x:y -> format=rgb24 -> buffersink`` is the same
    libavfilter chain as the official ``ffmpeg -filter_complex`` command, so frames are
    byte-identical to it. Output frame ``k`` (time ``k / fps``) shows the source frame whose
    timestamp rounds to the latest slot ``<= k``; ``round(duration * fps)`` frames come out.

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "grey.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=25)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(5):
    ...         f = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 40 * i, np.uint8))
    ...         c.mux(s.encode(f))
    ...     c.mux(s.encode())
    >>> frames = list(iter_frames(p, size=32))
    >>> len(frames), frames[0].shape, frames[0].dtype
    (6, (32, 32, 3), dtype('uint8'))
    """
    import av  # noqa: PLC0415 -- optional heavy dependency (av)

    check_int_at_least("fps", fps, 1)
    check_int_at_least("size", size, 2)
    check_choice("rotation", rotation, ("auto", "official"))
    path = Path(path)
    with _open_video(path) as container:
        stream = _video_stream(path, container)
        graph, coded, skipped = None, None, 0
        for packet in container.demux(stream):
            try:
                frames = packet.decode()
            except av.error.InvalidDataError:
                skipped += 1
                continue
            for frame in frames:
                if graph is None:
                    coded = (frame.width, frame.height)
                    graph = _build_graph(stream, frame, fps, size, rotation)
                elif (frame.width, frame.height) != coded:
                    raise ValueError(f"{path}: resolution changes mid-stream from {coded} to "
                                     f"{(frame.width, frame.height)}; not supported")
                graph.push(frame)
                yield from _pull_all(graph)
        if skipped:
            warnings.warn(f"{path}: skipped {skipped} undecodable packet(s)", RuntimeWarning,
                          stacklevel=2)
        if graph is None:
            raise ValueError(f"{path}: the video stream decoded to 0 frames")
        graph.push(None)  # flush: the fps filter emits its trailing duplicates
        yield from _pull_all(graph)


def _open_video(path: Path) -> Any:
    """The PyAV container of ``path``; raises naming the file when it is missing or unreadable."""
    import av  # noqa: PLC0415 -- optional heavy dependency (av)

    if not path.is_file():
        raise FileNotFoundError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot open as a video file: {e}") from None


def _video_stream(path: Path, container: Any) -> Any:
    """The first video stream of ``container``, decoded with automatic threading."""
    if not container.streams.video:
        kinds = sorted({s.type for s in container.streams})
        raise ValueError(f"{path}: no video stream (streams found: {kinds or 'none'})")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    return stream


def _build_graph(stream: Any, frame: Any, fps: int, size: int, rotation: str) -> Any:
    import av  # noqa: PLC0415 -- optional heavy dependency (av)

    rot = _rotation_filters(frame.rotation)
    w, h = frame.width, frame.height
    if rotation == "auto" and rot and rot[0][0] == "transpose":
        w, h = h, w
    geo = frame_geometry(w, h, size)
    graph = av.filter.Graph()
    nodes = [graph.add_buffer(template=stream)]
    nodes += [graph.add(name, args) if args else graph.add(name) for name, args in rot]
    nodes += [
        graph.add("fps", str(fps)),
        graph.add("scale", f"{geo.scaled_width}:{geo.scaled_height}:flags=bicubic"),
        graph.add("crop", f"{size}:{size}:{geo.crop_x}:{geo.crop_y}"),
        graph.add("format", "rgb24"),
        graph.add("buffersink"),
    ]
    for a, b in zip(nodes, nodes[1:]):
        a.link_to(b)
    graph.configure()
    return graph


def iter_chunks(path: str | Path, *, fps: int = CHUNK_FPS, size: int = FRAME_SIZE,
                rotation: Literal["auto", "official"] = "auto",
                last_chunk: Literal["pad", "repeat", "drop"] = "pad") -> Iterator[np.ndarray]:
    """Stream one-second uint8 chunks of ``fps`` frames; nothing else is held in memory.

    Parameters
    ----------
    path, fps, size, rotation
        As in :func:`iter_frames`.
    last_chunk : {"pad", "repeat", "drop"}
        A final partial second is completed with black frames (``"pad"``, the official
        behaviour and the one the released features have), with copies of its last frame
        (``"repeat"``), or dropped (``"drop"``).

    Yields
    ------
    numpy.ndarray
        ``shape (V, H, W, 3)`` uint8 with ``V = fps``; chunk ``i`` holds frames
        ``[i * fps, (i + 1) * fps)``, i.e. second ``[i, i + 1)``. ``ceil(frames / fps)`` chunks
        (one fewer with ``"drop"`` when the last is partial).

    Notes
    -----
    Norton Appendix A: "one video token per second at 30 fps". The official extractor holds
    the whole video as float32 (18 MB per second); this keeps one uint8 chunk (4.5 MB).

    Examples
    --------
    >>> import tempfile, pathlib, av
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "v.mp4"
    >>> with av.open(str(p), "w") as c:
    ...     s = c.add_stream("mpeg4", rate=30)
    ...     s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
    ...     for i in range(45):
    ...         c.mux(s.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 200, np.uint8))))
    ...     c.mux(s.encode())
    >>> chunks = list(iter_chunks(p, size=32))
    >>> [c.shape for c in chunks], bool(chunks[1][14].min() > 150), int(chunks[1][15:].max())
    ([(30, 32, 32, 3), (30, 32, 32, 3)], True, 0)
    """
    check_choice("last_chunk", last_chunk, ("pad", "repeat", "drop"))
    buf = np.empty((fps, size, size, 3), np.uint8)
    n = 0
    for frame in iter_frames(path, fps=fps, size=size, rotation=rotation):
        buf[n] = frame
        n += 1
        if n == fps:
            yield buf
            buf, n = np.empty((fps, size, size, 3), np.uint8), 0
    if n and last_chunk != "drop":
        buf[n:] = 0 if last_chunk == "pad" else buf[n - 1]
        yield buf



def expected_rows(n_frames: int, source_fps: float, fps: int = CHUNK_FPS) -> int:
    """Rows for a constant-rate video of ``n_frames`` at ``source_fps`` (``"pad"`` policy).

    ``ceil(round(n_frames * fps / source_fps) / fps)``, i.e. about ``ceil(duration)``.

    Examples
    --------
    >>> expected_rows(88, 25), expected_rows(100, 30), expected_rows(50, 24)
    (4, 4, 3)
    """
    out_frames = math.floor(n_frames * fps / source_fps + 0.5)
    return -(-out_frames // fps)
