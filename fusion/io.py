"""Image input: the one place where images enter the library and are validated.

Every public function that takes an image accepts a path, a :class:`PIL.Image.Image`, a
NumPy array or an already loaded :class:`Image`, and sends it through :func:`load_image`,
which converts it once to

* ``rgb``: float32 RGB in [0, 1], shape (H, W, 3), and
* ``luma``: float32 luma in [0, 1], shape (H, W), per ITU-R BT.601 as MATLAB's ``rgb2gray``
  computes it (0.298936 R + 0.587043 G + 0.114021 B).

Conventions
-----------
* Accepted arrays: H×W, H×W×1, H×W×3 and H×W×4 of dtype uint8, uint16 or floating point.
  Integer data is divided by its white level (255, 65535, or ``data_range`` when given);
  float data must lie in [0, 1] unless ``data_range`` is given (values within 1e-6 of the
  range are clipped to it; anything further out is an error).
* Alpha is composited on black (``rgb * alpha``), then dropped.
* Grey images (H×W, H×W×1, Pillow modes ``L``/``I;16``/``F``) are replicated to three
  channels; their luma is the grey plane itself.
* For integer inputs the luma plane is rounded to the input's integer grid, because
  MATLAB's ``rgb2gray`` returns ``uint8`` for ``uint8`` input and the authors' reference
  implementations of SSIM, MS-SSIM and GMSD were run on that rounded plane.
* Files are decoded with Pillow at their stored orientation (EXIF orientation is ignored,
  so a reference and its distorted copy stay aligned). Pillow reads 16-bit RGB files at
  8 bits; pass a uint16 array to keep 16 bits.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, Union

import numpy as np
from numpy.typing import NDArray

from fusion._scratch import scratch
from fusion.errors import (
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    ShapeMismatchError,
)

__all__ = [
    "BT601_LUMA_WEIGHTS",
    "DEFAULT_MAX_PIXELS",
    "MIN_IMAGE_SIDE",
    "Image",
    "ImageInput",
    "load_image",
    "load_pair",
    "require_min_side",
]

#: MATLAB ``rgb2gray`` weights (the first row of the inverse NTSC YIQ matrix, ITU-R BT.601).
BT601_LUMA_WEIGHTS = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])

#: The smallest height or width accepted at all; computations that need more say so.
MIN_IMAGE_SIDE = 16

#: Images with more pixels are refused unless ``max_pixels`` is raised (about 1.2 GB as
#: float32 RGB); it also guards against decompression bombs.
DEFAULT_MAX_PIXELS = 100_000_000

_FLOAT_SLACK = 1e-6

_T = TypeVar("_T")
_A = TypeVar("_A", bound=np.generic)


class Image:
    """A validated image whose float32 RGB and luma planes in [0, 1] are built on demand.

    Build it with :func:`load_image`, not directly. Each plane is computed once, on first
    use (a luma-only metric never builds the RGB plane), and is read-only so that
    intermediate results derived from it can be shared safely.

    Attributes
    ----------
    integer_levels : int or None
        The white level of an integer source (255 for uint8), None for float data.
    name : str
        The argument name used in error messages (``"reference"``, ``"image"``, ...).

    """

    def __init__(self, source: NDArray[Any], scale: float, integer_levels: int | None,
                 name: str = "image") -> None:
        self._source = source
        self._scale = scale
        self.integer_levels = integer_levels
        self.name = name
        self._memo: dict[Any, Any] = {}
        source.flags.writeable = False

    def __repr__(self) -> str:
        height, width = self.shape
        return f"<fusion Image {self.name!r} {height}×{width}, levels={self.integer_levels}>"

    @property
    def shape(self) -> tuple[int, int]:
        """Height and width in pixels."""
        return (int(self._source.shape[0]), int(self._source.shape[1]))

    @property
    def source(self) -> NDArray[Any]:
        """The validated pixels in their own dtype: (H, W) or (H, W, 3), on [0, white level].

        A private read-only copy of the input (alpha already composited on black): integer
        counts for integer inputs, floats otherwise. The white level is
        ``integer_levels`` for integer data and ``data_range`` (default 1) for floats.
        """
        return self._source

    @property
    def rgb(self) -> NDArray[np.float32]:
        """Colour planes in [0, 1], float32, shape (H, W, 3)."""
        return self.memoised("rgb", self._make_rgb)

    @property
    def luma(self) -> NDArray[np.float32]:
        """BT.601 luma in [0, 1], float32, shape (H, W).

        Rounded to the integer grid for integer sources, as MATLAB's ``rgb2gray`` does.
        """
        return self.memoised("luma", self._make_luma)

    @property
    def luma255(self) -> NDArray[np.float32]:
        """Luma on the 0–255 scale that many metrics' constants assume (computed once)."""
        return self.memoised("luma255",
                             lambda: _read_only(self.luma * np.float32(255.0)))

    def reduced(self, max_pixels: int) -> Image:
        """The image at a working resolution of at most ``max_pixels`` pixels.

        Itself when it is small enough; otherwise the source averaged over f×f boxes,
        with the smallest integer f that brings H·W / f² under ``max_pixels`` (the last
        H mod f rows and W mod f columns are dropped, as in the authors' SSIM
        down-sampling), rounded back to the source's dtype for integer data. Computed in
        strips, so the cost stays near the source's own memory; memoised.

        Examples
        --------
        >>> import numpy as np
        >>> image = load_image(np.zeros((4000, 3000, 3), np.uint8))
        >>> image.reduced(4_000_000).shape
        (2000, 1500)
        """
        height, width = self.shape
        if max_pixels < 1:
            raise ValueError(f"max_pixels must be positive, got {max_pixels}")
        if height * width <= max_pixels:
            return self
        factor = max(2, math.ceil(math.sqrt(height * width / max_pixels)))
        while (height // factor) * (width // factor) > max_pixels:
            factor += 1

        def build() -> Image:
            source = _box_reduce(self._source, factor)
            return Image(source, self._scale, self.integer_levels, self.name)

        return self.memoised(("reduced", factor), build)

    def crop(self, top: int, left: int, height: int, width: int) -> Image:
        """The ``height`` × ``width`` region at (``top``, ``left``), as a new image.

        It reads the same source values with the same white level (no copy of the
        source; its derived planes are computed afresh).

        Examples
        --------
        >>> import numpy as np
        >>> load_image(np.zeros((40, 60), np.uint8)).crop(10, 20, 16, 16).shape
        (16, 16)
        """
        rows, cols = self.shape
        if not (top >= 0 and left >= 0 and height > 0 and width > 0
                and top + height <= rows and left + width <= cols):
            raise ValueError(f"crop ({top}, {left}, {height}, {width}) is outside the "
                             f"{rows}×{cols} image")
        source = self._source[top:top + height, left:left + width]
        return Image(source, self._scale, self.integer_levels, self.name)

    def memoised(self, key: Any, compute: Callable[[], _T]) -> _T:
        """Return ``compute()``, computed once per image and key.

        Used to share derived planes (the luma pyramid, gradients) between features
        computed on the same image.
        """
        if key not in self._memo:
            self._memo[key] = compute()
        value: _T = self._memo[key]
        return value

    def _make_rgb(self) -> NDArray[np.float32]:
        if self._source.ndim == 2:
            return _read_only(np.repeat(self.luma[:, :, None], 3, axis=2))
        return _read_only(_scaled(self._source, self._scale))

    def _make_luma(self) -> NDArray[np.float32]:
        if self._source.ndim == 2:
            return _read_only(_scaled(self._source, self._scale))
        if self.integer_levels is not None:
            counts = _rgb2gray_counts(self._source, self.integer_levels)
            counts /= np.float32(self._scale)
            return _read_only(counts)
        luma64 = _scaled(self._source, self._scale, np.float64) @ BT601_LUMA_WEIGHTS
        return _read_only(luma64.astype(np.float32))


def _box_reduce(source: NDArray[Any], factor: int) -> NDArray[Any]:
    """Mean over ``factor``×``factor`` boxes, in strips of about 4 M source values."""
    height, width = source.shape[0] // factor, source.shape[1] // factor
    rest = source.shape[2:]
    accumulate: type[np.floating[Any]] = (np.float64 if source.dtype == np.float64
                                          else np.float32)
    out: NDArray[Any] = np.empty((height, width, *rest), dtype=accumulate)
    per_row = width * factor * factor * (rest[0] if rest else 1)
    rows = max(1, (1 << 22) // per_row)
    for y in range(0, height, rows):
        stop = min(height, y + rows)
        block = source[y * factor : stop * factor, : width * factor].reshape(
            stop - y, factor, width, factor, *rest)
        # Summing the strided axis first keeps the reduction contiguous (4× faster).
        out[y:stop] = block.sum(axis=1, dtype=accumulate).sum(axis=2)
    out /= accumulate(factor * factor)
    if np.issubdtype(source.dtype, np.integer):
        out = np.floor(out + accumulate(0.5))
    result: NDArray[Any] = out.astype(source.dtype, copy=False)
    return result


def _scaled(data: NDArray[Any], scale: float, dtype: type = np.float32) -> NDArray[Any]:
    out: NDArray[Any] = data.astype(dtype)
    if scale != 1.0:
        out /= dtype(scale)
    return out


def _read_only(array: NDArray[_A]) -> NDArray[_A]:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


ImageInput = Union[str, "os.PathLike[str]", NDArray[Any], "PILImage", Image]
PILImage = Any  # PIL.Image.Image, kept untyped so that importing this module stays light


def load_image(
    image: ImageInput,
    *,
    name: str = "image",
    data_range: float | None = None,
    min_side: int = MIN_IMAGE_SIDE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> Image:
    """Load and validate one image.

    Parameters
    ----------
    image : str, os.PathLike, PIL.Image.Image, ndarray or Image
        The image. An :class:`Image` is returned unchanged (after the size checks).
    name : str, default "image"
        The argument name to use in error messages.
    data_range : float, optional
        The white level of the data: values must lie in [0, data_range] and are divided
        by it. By default 255 for uint8, 65535 for uint16 and 1 for float data.
    min_side : int, default MIN_IMAGE_SIDE
        Smallest accepted height or width.
    max_pixels : int or None, default DEFAULT_MAX_PIXELS
        Largest accepted H·W; None disables the check.

    Returns
    -------
    Image

    Raises
    ------
    TypeError
        If ``image`` is not one of the accepted types.
    InvalidImageError
        For an unsupported dtype or channel count, non-finite values or values outside
        the data range.
    ImageTooSmallError, ImageTooLargeError
        If a side is below ``min_side`` or H·W exceeds ``max_pixels``.
    ImageReadError
        If a path does not exist, is not a file, or cannot be fully decoded.

    Examples
    --------
    >>> import numpy as np
    >>> img = load_image(np.full((32, 32, 3), 255, np.uint8))
    >>> img.rgb.dtype, img.shape, float(img.luma.max())
    (dtype('float32'), (32, 32), 1.0)

    """
    if isinstance(image, Image):
        _check_size(image.shape, name, min_side, max_pixels)
        return image
    if isinstance(image, (str, os.PathLike)):
        array = _read_file(Path(image), name, max_pixels)
    elif isinstance(image, np.ndarray):
        array = image
    elif _is_pil_image(image):
        array = _pil_to_array(image, name)
    else:
        raise TypeError(
            f"{name} must be a path, a PIL image, a NumPy array or a fusion Image; "
            f"got {type(image).__name__}"
        )
    return _from_array(array, name, data_range, min_side, max_pixels)


def load_pair(
    reference: ImageInput,
    distorted: ImageInput,
    *,
    data_range: float | None = None,
    min_side: int = MIN_IMAGE_SIDE,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    names: tuple[str, str] = ("reference", "distorted"),
) -> tuple[Image, Image]:
    """Load a (reference, distorted) pair and check that their shapes match.

    Parameters are those of :func:`load_image`, applied to both images; ``names`` are the
    argument names used in error messages.

    Returns
    -------
    reference, distorted : Image

    Raises
    ------
    ShapeMismatchError
        If the two images differ in height or width; the message gives both shapes.

    """
    ref = load_image(
        reference, name=names[0], data_range=data_range, min_side=min_side,
        max_pixels=max_pixels,
    )
    dist = load_image(
        distorted, name=names[1], data_range=data_range, min_side=min_side,
        max_pixels=max_pixels,
    )
    if ref.shape != dist.shape:
        raise ShapeMismatchError(
            f"{names[0]} has shape {ref.shape[0]}×{ref.shape[1]} (H×W) but {names[1]} has "
            f"shape {dist.shape[0]}×{dist.shape[1]}; they must match"
        )
    return ref, dist


def require_min_side(image: Image, min_side: int, what: str) -> None:
    """Raise :class:`ImageTooSmallError` if ``image`` is too small for ``what``.

    Parameters
    ----------
    image : Image
        A loaded image.
    min_side : int
        Smallest height or width that ``what`` needs.
    what : str
        The computation, for the message (e.g. ``"MS-SSIM (5 scales)"``).

    """
    _check_min_side(image.shape, image.name, min_side, f"{what} needs at least")


def _check_min_side(shape: tuple[int, int], name: str, min_side: int, needs: str) -> None:
    height, width = shape
    if min(height, width) < min_side:
        raise ImageTooSmallError(
            f"{name} is {height}×{width} pixels; {needs} {min_side}×{min_side}"
        )


# --------------------------------------------------------------------------- internals


def _is_pil_image(obj: object) -> bool:
    module = type(obj).__module__
    if not module.startswith("PIL."):
        return False
    from PIL import Image as PILModule

    return isinstance(obj, PILModule.Image)


def _read_file(path: Path, name: str, max_pixels: int | None) -> NDArray[Any]:
    if not path.exists():
        raise ImageNotFoundError(f"{name}: no such file: {path}")
    if not path.is_file():
        raise ImageReadError(f"{name}: {path} is not a file")
    import warnings

    from PIL import Image as PILModule
    from PIL import UnidentifiedImageError

    try:
        # Our own max_pixels guard (checked from the header, before decoding) replaces
        # Pillow's decompression-bomb limits, so that the documented limit is the one
        # that holds: Pillow's warning (above 89.5 M pixels) is ignored, and its error
        # (above 179 M) is lifted for the one open, so that max_pixels decides.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PILModule.DecompressionBombWarning)
            with _open_unguarded(path) as pil:
                width, height = pil.size
                if max_pixels is not None and width * height > max_pixels:
                    raise ImageTooLargeError(
                        f"{name}: {path} is {height}×{width} = {height * width:,} pixels, "
                        f"more than max_pixels={max_pixels:,}"
                    )
                pil.load()  # decode fully now, so that truncation is reported here
                return _pil_to_array(pil, name)
    except (UnidentifiedImageError, PILModule.DecompressionBombError) as exc:
        raise ImageReadError(f"{name}: cannot decode {path} as an image ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        if isinstance(exc, InvalidImageError):
            raise
        raise ImageReadError(
            f"{name}: cannot read {path}; the file is corrupt or truncated ({exc})"
        ) from exc


_PIL_LIMIT_LOCK = threading.Lock()


def _open_unguarded(path: Path) -> Any:
    """``PIL.Image.open`` (header only) without Pillow's own pixel limit.

    Pillow refuses files over 2 × ``MAX_IMAGE_PIXELS`` already at open; that module-wide
    limit is lifted for this one call, under a lock, so that the caller's ``max_pixels``
    check (before any decoding) decides, with the exact size in its message.
    """
    from PIL import Image as PILModule

    try:
        return PILModule.open(path)
    except PILModule.DecompressionBombError:
        with _PIL_LIMIT_LOCK:
            saved = PILModule.MAX_IMAGE_PIXELS
            PILModule.MAX_IMAGE_PIXELS = None
            try:
                return PILModule.open(path)
            finally:
                PILModule.MAX_IMAGE_PIXELS = saved


def _pil_to_array(pil: Any, name: str) -> NDArray[Any]:
    mode = pil.mode
    if mode in ("L", "RGB", "RGBA", "F") or mode.startswith("I;16"):
        pass
    elif mode == "1":
        pil = pil.convert("L")
    elif mode == "P":
        has_alpha = "transparency" in pil.info
        pil = pil.convert("RGBA" if has_alpha else "RGB")
    elif mode in ("LA", "La", "RGBa", "PA"):
        pil = pil.convert("RGBA")
    elif mode == "I":
        array = np.asarray(pil)
        if array.size and (array.min() < 0 or array.max() > 65535):
            raise InvalidImageError(
                f"{name}: 32-bit integer image with values outside 0–65535 is not supported"
            )
        return array.astype(np.uint16)
    else:  # CMYK, YCbCr, LAB, HSV, ...
        pil = pil.convert("RGB")
    return np.asarray(pil)


def _from_array(
    array: NDArray[Any],
    name: str,
    data_range: float | None,
    min_side: int,
    max_pixels: int | None,
) -> Image:
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] in (3, 4))):
        raise InvalidImageError(
            f"{name} has shape {array.shape}; expected H×W, H×W×1, H×W×3 or H×W×4"
        )
    _check_size((array.shape[0], array.shape[1]), name, min_side, max_pixels)
    levels = _integer_levels(array, name, data_range)
    if levels is not None:
        return Image(_integer_source(array, name, levels), levels, levels, name)
    scale = float(data_range or 1.0)
    return Image(_checked_float(array, name, scale, data_range), scale, None, name)


def _check_size(
    shape: tuple[int, int], name: str, min_side: int, max_pixels: int | None
) -> None:
    _check_min_side(shape, name, min_side, "the smallest accepted size is")
    height, width = shape
    if max_pixels is not None and height * width > max_pixels:
        raise ImageTooLargeError(
            f"{name} is {height}×{width} = {height * width:,} pixels, more than "
            f"max_pixels={max_pixels:,}"
        )


def _integer_levels(array: NDArray[Any], name: str, data_range: float | None) -> int | None:
    if array.dtype == np.uint8 or array.dtype == np.uint16:
        if data_range is None:
            return int(np.iinfo(array.dtype).max)
        if data_range <= 0 or data_range != int(data_range):
            raise InvalidImageError(
                f"data_range={data_range!r} must be a positive integer for integer {name}"
            )
        return int(data_range)
    if np.issubdtype(array.dtype, np.floating):
        return None
    raise InvalidImageError(
        f"{name} has dtype {array.dtype}; supported dtypes are uint8, uint16 and float "
        "(convert integer data with .astype(np.uint8) or .astype(np.uint16))"
    )


def _integer_source(array: NDArray[Any], name: str, levels: int) -> NDArray[Any]:
    if levels < int(np.iinfo(array.dtype).max) and array.size and int(array.max()) > levels:
        raise InvalidImageError(
            f"{name} has values up to {int(array.max())}, above data_range={levels}"
        )
    if array.ndim == 3 and array.shape[2] == 4:  # composite on black, stay on the grid
        alpha = array[:, :, 3:].astype(np.float32) / np.float32(levels)
        composited: NDArray[Any] = np.floor(array[:, :, :3] * alpha + np.float32(0.5))
        return composited.astype(array.dtype)
    return np.array(array, copy=True, order="C")


def _rgb2gray_counts(source: NDArray[Any], levels: int) -> NDArray[np.float32]:
    """MATLAB ``rgb2gray`` on integer data: the weighted sum rounded half away from zero.

    The sum is taken in float32 (error below 2e-7 × the white level), in row chunks that
    reuse scratch buffers; the few pixels whose sum lies that close to a rounding tie
    (with a 10× margin) are recomputed in float64 as MATLAB does, so the result equals
    MATLAB's exactly.
    """
    height, width, _ = source.shape
    tolerance = np.float32(1e-3 + 2e-6 * levels)
    weights = BT601_LUMA_WEIGHTS.astype(np.float32)
    out = np.empty((height, width), dtype=np.float32)
    step = max(1, 65536 // width)
    for start in range(0, height, step):
        stop = min(start + step, height)
        counts = scratch("rgb2gray_counts", (stop - start, width, 3))
        np.copyto(counts, source[start:stop], casting="unsafe")
        weighted = scratch("rgb2gray_weighted", (stop - start, width))
        np.matmul(counts, weights, out=weighted)
        rounded = out[start:stop]
        np.add(weighted, np.float32(0.5), out=rounded)
        np.floor(rounded, out=rounded)
        weighted -= rounded  # in [-0.5, 0.5); ties sit at ±0.5
        np.abs(weighted, out=weighted)
        weighted -= np.float32(0.5)
        near_tie = np.abs(weighted) < tolerance
        if near_tie.any():
            exact = counts[near_tie].astype(np.float64) @ BT601_LUMA_WEIGHTS
            rounded[near_tie] = np.floor(exact + 0.5)
    return out


def _checked_float(
    array: NDArray[Any], name: str, scale: float, data_range: float | None
) -> NDArray[Any]:
    if data_range is not None and not (np.isfinite(data_range) and data_range > 0):
        raise InvalidImageError(f"data_range must be a positive finite number, got {data_range!r}")
    data = array.astype(np.float32) if array.dtype != np.float64 else array
    finite = np.isfinite(data)
    if not finite.all():
        bad = int(data.size - np.count_nonzero(finite))
        raise InvalidImageError(f"{name} contains {bad} non-finite value(s) (NaN or inf)")
    low, high = float(data.min()), float(data.max())
    if low < -_FLOAT_SLACK * scale or high > scale * (1 + _FLOAT_SLACK):
        hint = "" if data_range is not None else "; pass data_range=... for other scales"
        raise InvalidImageError(
            f"{name} is float data spanning [{low:g}, {high:g}], outside [0, {scale:g}]{hint}"
        )
    data = np.clip(data, 0.0, scale)  # a new array: the input is never aliased
    if data.ndim == 3 and data.shape[2] == 4:
        data = data[:, :, :3] * (data[:, :, 3:] / scale)
    result: NDArray[Any] = np.ascontiguousarray(data)
    return result
