"""Turning what callers hand in (a path, bytes, a PIL image, a numpy array) into a PIL image.

Every inference entry point decodes here: ``fer-predict`` (files), ``fer-serve``
(uploaded bytes) and :class:`~fer_keras.inference.recognizer.EmotionRecognizer` (any of
them). Files and uploads go through :func:`open_image`, which checks the format and the
pixel count before decoding; arrays through :func:`image_from_array`, whose channel order
is stated by the caller (``rgb``, or ``bgr`` for OpenCV frames), never guessed.
"""

from __future__ import annotations

import io
import os
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_keras.errors import FerError, problem
from fer_keras.validation import check_choice

# The formats of constants.IMAGE_EXTENSIONS. PIL can open more (EPS shells out to
# Ghostscript, PSD, ICO...): untrusted uploads must not reach those decoders.
ACCEPTED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "BMP", "WEBP", "GIF", "TIFF")
# The channel order of a 3- or 4-channel array: PIL/matplotlib/imageio give RGB, OpenCV gives BGR.
CHANNELS: tuple[str, ...] = ("rgb", "bgr")


class UnreadableImage(FerError):
    """An input that is not a usable image. ``reason`` is one of
    ``empty``, ``unsupported``, ``too_large``, ``corrupt`` (the server maps it to a status)."""

    def __init__(self, where: str, reason: str, message: str):
        self.reason = reason
        self.detail = message
        super().__init__(problem(where, message))


def open_image(
    source: str | os.PathLike | bytes, *, where: str | None = None, max_pixels: int | None = None
) -> Image.Image:
    """Decode a file path or raw bytes to a fully loaded PIL image (EXIF orientation applied).

    The pixel count is checked from the header before anything is decoded, so a
    small file that claims a huge image (a decompression bomb) costs nothing.

    Args:
        source: a path, or the bytes of an upload.
        where: the name to use in error messages (default: the path, or ``upload``).
        max_pixels: the largest accepted width x height (default ``PIL.Image.MAX_IMAGE_PIXELS``,
            set in :mod:`fer_keras.data.images`).

    Raises:
        UnreadableImage: missing, empty, not an accepted image format, too many pixels, or corrupt/truncated.

    Example:
        >>> img = open_image("photo.jpg")  # doctest: +SKIP
        >>> img.size  # doctest: +SKIP
        (640, 480)
    """
    is_bytes = isinstance(source, (bytes, bytearray, memoryview))
    where = where or ("upload" if is_bytes else str(source))
    limit = max_pixels if max_pixels is not None else Image.MAX_IMAGE_PIXELS
    if is_bytes and len(source) == 0:
        raise UnreadableImage(where, "empty", "empty file (0 bytes)")
    if not is_bytes and os.path.isdir(source):
        raise UnreadableImage(where, "unsupported", "is a folder, not an image file")
    try:
        img = Image.open(io.BytesIO(source) if is_bytes else source, formats=ACCEPTED_FORMATS)
    except FileNotFoundError:
        raise UnreadableImage(where, "corrupt", "file not found") from None
    except UnidentifiedImageError:
        if not is_bytes and os.path.getsize(source) == 0:
            raise UnreadableImage(where, "empty", "empty file (0 bytes)") from None
        kinds = ", ".join(f.lower() for f in ACCEPTED_FORMATS)
        raise UnreadableImage(where, "unsupported", f"not an image in a supported format ({kinds})") from None
    except Image.DecompressionBombError as err:
        raise UnreadableImage(where, "too_large", str(err)) from None
    except Exception as err:  # noqa: BLE001 - any header failure is a bad input, never a crash
        raise UnreadableImage(where, "corrupt", f"cannot read the image header ({type(err).__name__}: {err})") from None
    with img:
        width, height = img.size
        if width * height > limit:
            raise UnreadableImage(
                where, "too_large", f"image is {width}x{height} = {width * height} pixels; the limit is {limit}"
            )
        if width < 1 or height < 1:
            raise UnreadableImage(where, "corrupt", f"image has no pixels ({width}x{height})")
        try:
            img.load()
            return ImageOps.exif_transpose(img)
        except Exception as err:  # noqa: BLE001 - truncated/corrupt data is a bad input, never a crash
            raise UnreadableImage(where, "corrupt", f"cannot decode the image ({type(err).__name__}: {err})") from None


def image_from_array(array: np.ndarray, channels: str = "rgb", where: str = "image") -> Image.Image:
    """A uint8 image array as a PIL image.

    Accepted shapes: ``(H, W)`` or ``(H, W, 1)`` grayscale, ``(H, W, 3)`` colour and
    ``(H, W, 4)`` colour with alpha, whose channel order ``channels`` states: ``rgb``
    (PIL, imageio, matplotlib) or ``bgr`` (OpenCV's ``cv2.imread`` and video frames;
    ``bgra`` for 4 channels). Float arrays are refused rather than guessed at ([0, 1] or
    [0, 255]?): convert them to uint8 first.

    Raises:
        FerError: a wrong dtype or shape, named after ``where``.

    Example:
        >>> image_from_array(np.zeros((4, 6, 3), np.uint8), channels="bgr").size
        (6, 4)
    """
    check_choice("channels", channels, CHANNELS)
    if array.dtype != np.uint8:
        raise FerError(
            problem(where, f"a numpy image must be uint8 (pixels 0-255); got dtype {array.dtype} (convert it first)")
        )
    shape = array.shape
    colour = array.ndim == 3 and shape[2] in (1, 3, 4)
    if not (array.ndim == 2 or colour) or min(shape[:2], default=0) < 1:
        raise FerError(
            problem(where, f"a numpy image must have shape (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got {shape}")
        )
    if array.ndim == 3 and shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 3 and channels == "bgr":
        array = array[:, :, [2, 1, 0, 3][: shape[2]]]
    # uint8 (H, W), (H, W, 3) and (H, W, 4) arrays become L, RGB and RGBA images.
    return Image.fromarray(np.ascontiguousarray(array))


def as_image(item: Any, channels: str = "rgb", where: str | None = None) -> Image.Image:
    """Any accepted input as a PIL image: a path or bytes (:func:`open_image`), a PIL
    image (used as given) or a numpy array (:func:`image_from_array`).

    Raises:
        FerError: an unreadable file or an unusable array or type, naming the input
            (``where``, else the path, else ``image``).
    """
    if isinstance(item, (str, os.PathLike, bytes, bytearray, memoryview)):
        return open_image(item, where=where)
    where = where or "image"
    if isinstance(item, Image.Image):
        if min(item.size) < 1:
            raise FerError(problem(where, f"image has no pixels ({item.width}x{item.height})"))
        return item
    if isinstance(item, np.ndarray):
        return image_from_array(item, channels, where)
    raise FerError(problem(where, f"must be a path, bytes, a PIL image or a numpy array; got {type(item).__name__}"))
