"""Image input: accepted forms, conversion, and a clear error for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.errors import (
    ImageNotFoundError,
    ImageReadError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    ShapeMismatchError,
)
from fusion.io import BT601_LUMA_WEIGHTS, Image, load_image, load_pair


def matlab_rgb2gray_uint8(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray for uint8 input: weighted sum in double, rounded half away from 0."""
    weights = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.floor(rgb.astype(np.float64) @ weights + 0.5).astype(np.uint8)


# --------------------------------------------------------------------- accepted forms


def test_uint8_rgb_converted_once_to_float32(textured_uint8: np.ndarray) -> None:
    img = load_image(textured_uint8)
    assert img.rgb.dtype == np.float32 and img.luma.dtype == np.float32
    assert img.rgb.shape == (200, 240, 3) and img.luma.shape == (200, 240)
    np.testing.assert_allclose(img.rgb, textured_uint8 / 255.0, atol=1e-7)
    np.testing.assert_array_equal(
        np.round(img.luma * 255.0).astype(np.uint8), matlab_rgb2gray_uint8(textured_uint8)
    )
    assert img.integer_levels == 255
    assert not img.rgb.flags.writeable and not img.luma.flags.writeable


def test_luma_weights_are_matlab_rgb2gray() -> None:
    # MATLAB rgb2gray documentation: 0.2989 R + 0.5870 G + 0.1140 B (BT.601).
    np.testing.assert_allclose(BT601_LUMA_WEIGHTS, [0.2989, 0.5870, 0.1140], atol=5e-5)
    assert abs(BT601_LUMA_WEIGHTS.sum() - 1.0) < 1e-12


def test_float_rgb_luma_is_not_rounded(rng: np.random.Generator) -> None:
    data = rng.random((32, 40, 3))
    img = load_image(data)
    np.testing.assert_allclose(img.luma, data @ BT601_LUMA_WEIGHTS, atol=1e-6)
    assert img.integer_levels is None


@pytest.mark.parametrize("shape", [(32, 40), (32, 40, 1)])
def test_grey_arrays_are_replicated(shape: tuple[int, ...]) -> None:
    grey = np.arange(32 * 40, dtype=np.uint16).reshape(shape) * 50
    img = load_image(grey)
    expected = grey.reshape(32, 40) / 65535.0
    np.testing.assert_allclose(img.luma, expected, atol=1e-7)
    np.testing.assert_allclose(img.rgb[..., 2], expected, atol=1e-7)
    assert img.integer_levels == 65535


def test_rgba_is_composited_on_black() -> None:
    rgba = np.zeros((20, 20, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[..., 3] = 255
    rgba[:10, :, 3] = 0  # transparent top half → black
    img = load_image(rgba)
    assert np.all(img.rgb[:10] == 0.0)
    np.testing.assert_allclose(img.rgb[10:], 200 / 255.0, atol=1e-7)
    half = rgba.copy()
    half[..., 3] = 128
    np.testing.assert_allclose(load_image(half).rgb, np.floor(200 * 128 / 255 + 0.5) / 255,
                               atol=1e-7)


def test_data_range_scales_float_and_integer_data() -> None:
    values = np.linspace(0, 255, 20 * 20).reshape(20, 20)
    np.testing.assert_allclose(load_image(values, data_range=255).luma, values / 255, atol=1e-6)
    twelve_bit = (np.arange(400).reshape(20, 20) * 10).astype(np.uint16)
    img = load_image(twelve_bit, data_range=4095)
    np.testing.assert_allclose(img.luma, twelve_bit / 4095, atol=1e-7)


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "I;16", "F", "CMYK", "1", "LA"])
def test_pil_modes(mode: str, textured_uint8: np.ndarray) -> None:
    base = PILImage.fromarray(textured_uint8)
    if mode == "I;16":
        pil = PILImage.fromarray(np.asarray(base.convert("L")).astype(np.uint16) * 257)
    elif mode == "F":
        pil = PILImage.fromarray(np.asarray(base.convert("L"), np.float32) / 255.0)
    else:
        pil = base.convert(mode)
    img = load_image(pil)
    assert img.shape == (200, 240)
    assert float(img.luma.min()) >= 0.0 and float(img.luma.max()) <= 1.0


@pytest.mark.parametrize("suffix", [".png", ".bmp", ".jpg", ".tif"])
def test_paths_str_and_pathlib(tmp_path: Path, suffix: str, textured_uint8: np.ndarray) -> None:
    path = tmp_path / f"img{suffix}"
    PILImage.fromarray(textured_uint8).save(path)
    a = load_image(path)
    b = load_image(str(path))
    np.testing.assert_array_equal(a.rgb, b.rgb)
    if suffix != ".jpg":
        np.testing.assert_allclose(a.rgb, textured_uint8 / 255.0, atol=1e-7)


def test_image_objects_pass_through(textured_uint8: np.ndarray) -> None:
    img = load_image(textured_uint8)
    assert load_image(img) is img


def test_sixteen_bit_png_keeps_precision(tmp_path: Path) -> None:
    data = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "grey16.png"
    PILImage.fromarray(data).save(path)
    np.testing.assert_allclose(load_image(path).luma, data / 65535.0, atol=1e-7)


# --------------------------------------------------------------------- bad input


def test_mismatched_shapes_name_both() -> None:
    with pytest.raises(ShapeMismatchError,
                       match=r"reference has shape 32×40.*distorted has shape 32×41"):
        load_pair(np.zeros((32, 40)), np.zeros((32, 41)))
    with pytest.raises(ValueError, match="image_true"):
        fusion.psnr(np.zeros((32, 40)), np.zeros((33, 40)))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad: float) -> None:
    data = np.full((32, 32), 0.5)
    data[3, 4] = bad
    with pytest.raises(InvalidImageError, match=r"distorted contains 1 non-finite"):
        load_pair(np.full((32, 32), 0.5), data)


@pytest.mark.parametrize("low, high", [(-0.1, 0.5), (0.0, 1.5), (0.0, 255.0)])
def test_float_outside_unit_range_without_data_range(low: float, high: float) -> None:
    data = np.linspace(low, high, 32 * 32).reshape(32, 32)
    with pytest.raises(InvalidImageError, match=r"outside \[0, 1\].*data_range"):
        load_image(data)


def test_integer_above_data_range() -> None:
    with pytest.raises(InvalidImageError, match="above data_range=1000"):
        load_image(np.full((32, 32), 2000, np.uint16), data_range=1000)


@pytest.mark.parametrize("data_range", [0, -1, float("nan"), float("inf")])
def test_invalid_data_range(data_range: float) -> None:
    with pytest.raises(InvalidImageError, match="data_range"):
        load_image(np.zeros((32, 32)), data_range=data_range)


@pytest.mark.parametrize("dtype", [np.int32, np.int8, np.bool_, np.complex64, np.uint32])
def test_unsupported_dtypes(dtype: type) -> None:
    with pytest.raises(InvalidImageError, match=f"dtype {np.dtype(dtype)}"):
        load_image(np.zeros((32, 32), dtype=dtype))


@pytest.mark.parametrize("shape", [(32, 32, 2), (32, 32, 5), (32,), (2, 32, 32, 3)])
def test_unsupported_shapes(shape: tuple[int, ...]) -> None:
    with pytest.raises(InvalidImageError, match=r"expected H×W, H×W×1, H×W×3 or H×W×4"):
        load_image(np.zeros(shape, np.uint8))


def test_too_small() -> None:
    with pytest.raises(ImageTooSmallError, match=r"image is 8×64 pixels.*16×16"):
        load_image(np.zeros((8, 64), np.uint8))
    with pytest.raises(ImageTooSmallError, match=r"MS-SSIM \(5 scales\) needs at least 161×161"):
        fusion.ms_ssim(np.zeros((100, 300)), np.zeros((100, 300)))
    with pytest.raises(ImageTooSmallError, match=r"VIFp \(4 scales\) needs at least 41×41"):
        fusion.vifp(np.zeros((40, 300)), np.zeros((40, 300)))


def test_too_large_array_and_file(tmp_path: Path) -> None:
    with pytest.raises(ImageTooLargeError, match="max_pixels=1,000"):
        load_image(np.zeros((40, 40), np.uint8), max_pixels=1000)
    path = tmp_path / "big.png"
    PILImage.new("L", (2000, 1000)).save(path)
    with pytest.raises(ImageTooLargeError, match="2,000,000 pixels"):
        load_image(path, max_pixels=1_000_000)


def test_wrong_python_type() -> None:
    with pytest.raises(TypeError, match="reference must be a path, a PIL image"):
        load_pair([[0, 1], [1, 0]], np.zeros((32, 32)))  # type: ignore[arg-type]


def test_missing_path_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ImageNotFoundError, match="no such file") as info:
        load_image(tmp_path / "nope.png")
    assert isinstance(info.value, FileNotFoundError)
    with pytest.raises(ImageReadError, match="not a file"):
        load_image(tmp_path)


def test_unreadable_and_truncated_files(tmp_path: Path, textured_uint8: np.ndarray) -> None:
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not an image at all" * 10)
    with pytest.raises(ImageReadError, match="cannot decode"):
        load_image(garbage)

    whole = tmp_path / "whole.jpg"
    PILImage.fromarray(textured_uint8).save(whole, quality=90)
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(ImageReadError, match="corrupt or truncated"):
        load_image(truncated)

    png = tmp_path / "whole.png"
    PILImage.fromarray(textured_uint8).save(png)
    cut_png = tmp_path / "cut.png"
    cut_png.write_bytes(png.read_bytes()[:-2000])
    with pytest.raises(OSError, match=r"cut\.png"):
        load_image(cut_png)


def test_errors_are_builtin_subclasses() -> None:
    assert issubclass(InvalidImageError, ValueError)
    assert issubclass(ShapeMismatchError, ValueError)
    assert issubclass(ImageReadError, OSError)


def test_image_memo_is_per_image(textured_uint8: np.ndarray) -> None:
    img = load_image(textured_uint8)
    calls = []
    first = img.memoised("k", lambda: calls.append(1) or 5)
    second = img.memoised("k", lambda: calls.append(1) or 6)
    assert (first, second, len(calls)) == (5, 5, 1)
    assert isinstance(img, Image)
