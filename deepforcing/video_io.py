"""Write generated frames to H.264 mp4 as they are produced, atomically; read videos back for metrics/tests.

:class:`Mp4Writer` encodes with PyAV (libx264, ``yuv420p``) into a hidden temporary file in the destination
directory and renames it over the destination only when the writer is closed without an error, so a
``<unit>.mp4`` that exists is always complete (a killed or failed run leaves no partial file; resume logic can
trust existence). On an exception inside the ``with`` block (Ctrl-C included, and SIGTERM under
:func:`deepforcing.interrupts.stop_on_signals`) the temporary file is removed; only SIGKILL can leave one, and
the harness removes those of dead processes before it regenerates the unit.

Encoder defaults follow Self-Forcing's ``torchvision.io.write_video(..., fps=16)``: libx264, ``yuv420p``,
x264's default rate control (CRF 23, preset ``medium``). ``yuv420p`` needs even width and height: odd sizes
fail loudly by default (``pad_odd=True`` replicates the last row/column instead).
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path
from types import TracebackType

import numpy as np

from deepforcing.errors import UserError

logger = logging.getLogger(__name__)


def _to_uint8_thwc(frames, rounding: str) -> np.ndarray:
    """Float [-1, 1] ``[T, 3, H, W]`` or uint8 ``[T, H, W, 3]`` (torch or numpy) -> uint8 THWC numpy."""
    if hasattr(frames, "detach"):  # torch.Tensor, without importing torch here
        frames = frames.detach().cpu()
        if frames.dtype.is_floating_point:
            frames = frames.float()
        frames = frames.numpy()
    arr = np.asarray(frames)
    if arr.ndim == 3:
        arr = arr[None]
    if arr.ndim != 4:
        raise UserError(f"frames must be [T, 3, H, W] float or [T, H, W, 3] uint8, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        if arr.shape[-1] != 3:
            raise UserError(f"uint8 frames must be [T, H, W, 3], got shape {arr.shape}")
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise UserError(f"frames must be float in [-1, 1] or uint8, got dtype {arr.dtype}")
    if arr.shape[1] != 3:
        raise UserError(f"float frames must be [T, 3, H, W] in [-1, 1], got shape {arr.shape}")
    x = (np.clip(arr.astype(np.float32), -1.0, 1.0) + 1.0) * 127.5  # [T, 3, H, W] in [0, 255]
    x = np.floor(x) if rounding == "floor" else np.rint(x)
    return np.ascontiguousarray(x.astype(np.uint8).transpose(0, 2, 3, 1))  # [T, H, W, 3]


class Mp4Writer:
    """Context manager that appends frames to an H.264 mp4 and publishes it atomically on close.

    Example::

        with Mp4Writer("runs/x/videos/unit.mp4", fps=16) as w:
            for chunk in chunks:
                w.write(decoder.decode(chunk)[0])  # [T, 3, H, W] float in [-1, 1]

    Args:
        path: Destination ``.mp4``. Parent directories are created.
        fps: Frame rate (Self-Forcing writes 16).
        crf: x264 constant rate factor (``None`` = x264 default, 23, as torchvision's ``write_video``).
        preset: x264 preset (``None`` = x264 default, ``medium``).
        codec: PyAV encoder name.
        pad_odd: If True, odd widths/heights are padded by repeating the last column/row; if False (default)
            they raise :class:`~deepforcing.errors.UserError`.
        rounding: ``"round"`` (default) maps ``[-1, 1]`` to uint8 by rounding; ``"floor"`` truncates like
            Self-Forcing's ``uint8`` cast of ``255 * x``.

    Raises:
        UserError: If the destination directory cannot be created or written.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        fps: int = 16,
        crf: int | None = None,
        preset: str | None = None,
        codec: str = "libx264",
        pad_odd: bool = False,
        rounding: str = "round",
    ):
        if rounding not in ("round", "floor"):
            raise UserError(f"rounding must be 'round' or 'floor', got {rounding!r}")
        if fps <= 0:
            raise UserError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = int(fps)
        self.crf, self.preset, self.codec = crf, preset, codec
        self.pad_odd, self.rounding = pad_odd, rounding
        self.frames_written = 0
        self._container = None
        self._stream = None
        self._size: tuple[int, int] | None = None  # (H, W) as encoded
        self._closed = True  # until the temporary file is open
        self.tmp_path: Path | None = None
        parent = self.path.parent
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UserError(
                f"cannot create output directory {parent} for {self.path}: {e.strerror or e}",
                hint="choose a writable output path",
            ) from e
        if not os.access(parent, os.W_OK | os.X_OK):
            raise UserError(
                f"output directory {parent} is not writable (for {self.path})",
                hint="choose a writable output path",
            )
        self.tmp_path = parent / f".{self.path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp.mp4"
        try:
            self._container = _open_output(self.tmp_path)
        except OSError as e:
            self._remove_tmp()
            raise UserError(
                f"cannot write video {self.path}: {e.strerror or e}", hint="choose a writable output path"
            ) from e
        except BaseException:  # e.g. Ctrl-C / SIGTERM while opening: no half-created temporary file stays
            self._remove_tmp()
            raise
        self._closed = False

    # ---------------------------------------------------------------- context manager
    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ---------------------------------------------------------------- writing
    def _open_stream(self, h: int, w: int) -> None:
        if h % 2 or w % 2:
            if not self.pad_odd:
                raise UserError(
                    f"H.264 (yuv420p) needs even frame width and height, got {w}x{h} for {self.path}",
                    hint="crop/pad the frames or pass pad_odd=True to repeat the last row/column",
                )
            logger.warning("padding odd frame size %dx%d to even for %s", w, h, self.path)
        stream = self._container.add_stream(self.codec, rate=self.fps)
        stream.width, stream.height = w + (w % 2), h + (h % 2)
        stream.pix_fmt = "yuv420p"
        # x264's macroblock-tree rate control made the bytes of a video differ between processes now and then
        # (1 in ~3 runs of the same frames after a generation, single-threaded x264 in PyAV 18): with it off, a
        # unit's video is byte-identical wherever it is generated, which the content-addressed store relies on.
        opts = {"x264-params": "mbtree=0"} if self.codec == "libx264" else {}
        if self.crf is not None:
            opts["crf"] = str(self.crf)
        if self.preset is not None:
            opts["preset"] = self.preset
        stream.options = opts
        self._stream = stream
        self._size = (h, w)

    def write(self, frames) -> int:
        """Encode more frames.

        Args:
            frames: float ``[T, 3, H, W]`` in ``[-1, 1]`` (values outside are clipped) or uint8 ``[T, H, W,
                3]``; torch tensors or numpy arrays. A single frame (3-D) is accepted too.

        Returns:
            Total frames written so far.

        Raises:
            UserError: On a bad shape/dtype, an odd size (unless ``pad_odd``), a size change, or after close.
        """
        import av

        if self._closed:
            raise UserError(f"Mp4Writer for {self.path} is already closed")
        arr = _to_uint8_thwc(frames, self.rounding)  # [T, H, W, 3] uint8
        _, h, w, _ = arr.shape
        if self._stream is None:
            self._open_stream(h, w)
        elif (h, w) != self._size:
            raise UserError(f"frame size changed from {self._size} to {(h, w)} while writing {self.path}")
        if h % 2 or w % 2:
            arr = np.pad(arr, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
        for img in arr:
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            for packet in self._stream.encode(frame):
                self._container.mux(packet)
        self.frames_written += arr.shape[0]
        return self.frames_written

    def close(self) -> Path:
        """Flush the encoder, close the file and atomically rename it to ``path``.

        Returns:
            The destination path.

        Raises:
            UserError: If no frame was written (nothing is published), or on an I/O error (the temporary file
                is removed).
        """
        if self._closed:
            return self.path
        if self.frames_written == 0:
            self.abort()
            raise UserError(f"no frames were written to {self.path}; nothing was saved")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            self._container = None
            with open(self.tmp_path, "rb") as f:
                os.fsync(f.fileno())
            os.replace(self.tmp_path, self.path)
        except BaseException:
            self.abort()
            raise
        self._closed = True
        logger.info("wrote %d frames (%s, %d fps) to %s", self.frames_written, self._size, self.fps, self.path)
        return self.path

    def __del__(self):
        if not getattr(self, "_closed", True):
            self.abort()

    def abort(self) -> None:
        """Discard everything: delete the temporary file and close the container (``path`` is untouched).

        The file is unlinked first, so that a second interrupt arriving while the encoder is being closed cannot
        leave it behind.
        """
        self._closed = True
        self._remove_tmp()
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - best effort while already failing
                pass
            self._container = None
        self._remove_tmp()  # in case closing the container re-created it

    def _remove_tmp(self) -> None:
        try:
            if self.tmp_path is not None:
                self.tmp_path.unlink(missing_ok=True)
        except OSError:
            logger.warning("could not remove temporary file %s", self.tmp_path)


def _open_output(path: Path):
    import av

    return av.open(str(path), mode="w", format="mp4")


def write_video(path: str | os.PathLike, frames, fps: int = 16, **kwargs) -> Path:
    """Write a whole video at once (see :class:`Mp4Writer` for arguments)."""
    with Mp4Writer(path, fps=fps, **kwargs) as w:
        w.write(frames)
    return Path(path)


def read_video(path: str | os.PathLike):
    """Decode a video file to RGB frames (the metrics' decoder, without its fps).

    Args:
        path: Video file.

    Returns:
        ``torch.uint8`` tensor ``[T, H, W, 3]``.

    Raises:
        UserError: If the file is missing, has no frames or cannot be decoded.
    """
    from deepforcing.metrics.video_io import decode_video

    return decode_video(path).frames
