"""The 25 distortion operations of KADID-10k, written from the database's description.

Each operation takes an RGB image as float64 in [0, 1] (H, W, 3), its parameter (the
value of the database's level table, :data:`fusion.kadid.KADID_TYPES`) and a seeded
generator, and returns the distorted image in the same form (the caller clips and
rounds). They follow the release's ``imdist_generator.m`` (Lin, Hosu & Saupe, KADID-10k,
QoMEX 2019) and its public ports: MATLAB's ``fspecial``/``imfilter`` with replicated
borders, its not-a-knot ``spline`` for tone curves, CIE L*a*b* from scikit-image. Where
the release calls something we cannot ship, a stated substitute is used:

* ``denoise`` adds the level's Gaussian noise and removes it with total-variation
  denoising (Chambolle, weight σ), where the release uses MATLAB's pretrained DnCNN;
* ``color_quantization`` uses Pillow's median-cut palette with Floyd–Steinberg
  dithering, where the release uses MATLAB's ``rgb2ind`` (minimum variance, dithered);
* ``quantization`` uses equal-width grey-level thresholds, where the release uses
  ``multithresh`` (multi-level Otsu).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from fusion._pixels import codec_operation, to_uint8, unit_of

Array = NDArray[np.float64]
Operation = Callable[[Array, float, np.random.Generator], Array]

__all__ = ["OPERATIONS", "map_min_max"]


def map_min_max(x: Array) -> Array:
    """Stretch to [0, 1] (the release's ``mapmm``); a constant array is left as is."""
    low, high = float(np.min(x)), float(np.max(x))
    return (x - low) / (high - low) if high > low else x


def _filter(unit: Array, kernel: Array) -> Array:
    """MATLAB ``imfilter(..., 'replicate')`` of every channel (correlation)."""
    from scipy import ndimage

    return np.stack([ndimage.correlate(unit[:, :, c], kernel, mode="nearest")
                     for c in range(unit.shape[2])], axis=2)


def _gaussian(unit: Array, sigma: float, size: int | None = None) -> Array:
    """``imfilter(x, fspecial('gaussian', size, sigma), 'replicate')``, separably.

    ``size`` defaults to the release's ``2·ceil(2σ) + 1``.
    """
    from scipy import ndimage

    radius = ((size if size is not None else 2 * math.ceil(2 * sigma) + 1) - 1) // 2
    return np.asarray(ndimage.gaussian_filter(unit, (sigma, sigma, 0), mode="nearest",
                                              radius=(radius, radius, 0)))


def _disk_kernel(radius: float) -> Array:
    """``fspecial('disk', r)``: the area of the disk in each pixel (8×8 supersampled)."""
    r = math.ceil(radius - 0.5)
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    centres = np.arange(-r, r + 1, dtype=np.float64)
    y = (centres[:, None] + sub[None, :]).reshape(-1)
    inside = (y[:, None] ** 2 + y[None, :] ** 2) <= radius * radius
    kernel = inside.reshape(2 * r + 1, 8, 2 * r + 1, 8).mean(axis=(1, 3))
    return np.asarray(kernel / kernel.sum())


def _motion_kernel(length: float, angle: float) -> Array:
    """A line of ``length`` pixels at ``angle`` (radians), 1 px wide, anti-aliased."""
    half = max(length - 1, 0) / 2
    size = 2 * math.ceil(half) + 1
    c = size // 2
    yy, xx = np.mgrid[-c:c + 1, -c:c + 1].astype(np.float64)
    along = xx * math.cos(angle) + yy * math.sin(angle)
    across = -xx * math.sin(angle) + yy * math.cos(angle)
    beyond = np.maximum(np.abs(along) - half, 0.0)
    kernel = np.maximum(1.0 - np.hypot(across, beyond), 0.0)
    return np.asarray(kernel / kernel.sum())


def _lab(unit: Array) -> Array:
    from skimage.color import rgb2lab

    return np.asarray(rgb2lab(np.clip(unit, 0.0, 1.0)))


def _rgb(lab: Array) -> Array:
    import warnings

    from skimage.color import lab2rgb

    with warnings.catch_warnings():  # colours outside sRGB are clipped, as intended
        warnings.simplefilter("ignore", UserWarning)
        return np.asarray(lab2rgb(lab))


def _curve(points_x: list[float], points_y: list[float], x: Array) -> Array:
    """MATLAB ``spline`` through the points (not-a-knot), clamped to [0, 1]."""
    from scipy.interpolate import CubicSpline

    if len(points_x) == 3:  # MATLAB's spline through three points is their parabola
        coefficients = np.polyfit(points_x, points_y, 2)
        return np.asarray(np.clip(np.polyval(coefficients, x), 0.0, 1.0))
    spline = CubicSpline(points_x, points_y, bc_type="not-a-knot")
    return np.asarray(np.clip(spline(x), 0.0, 1.0))


def _tone(x: Array, middle: float) -> Array:
    return _curve([0.0, 0.5, 1.0], [0.0, middle, 1.0], x)


def _gaussian_blur(unit: Array, sigma: float, rng: np.random.Generator) -> Array:
    return _gaussian(unit, sigma)


def _lens_blur(unit: Array, radius: float, rng: np.random.Generator) -> Array:
    return _filter(unit, _disk_kernel(radius))


def _motion_blur(unit: Array, length: float, rng: np.random.Generator) -> Array:
    return _filter(unit, _motion_kernel(length, rng.uniform(0.0, math.pi)))


def _color_diffusion(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    lab = _lab(unit)
    lab[:, :, 1:] = _gaussian(lab[:, :, 1:], 1.5 * amount + 2) * amount
    return _rgb(lab)


def _color_shift(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    grey = unit @ np.array([0.2989, 0.5870, 0.1140])
    dy, dx = np.gradient(grey)
    edges = map_min_max(_gaussian(np.hypot(dx, dy)[:, :, None], 4.0, 17)[:, :, 0])
    low, high = np.percentile(edges, [1, 99])
    edges = map_min_max(np.clip(edges, low, high))  # a robust stretch: 1 on strong edges
    direction = rng.random(2)
    shift = np.round(direction / max(float(np.hypot(*direction)), 1e-12) * amount).astype(int)
    green = unit[:, :, 1]
    h, w = green.shape
    padded = np.pad(green, ((shift[1], shift[1]), (shift[0], shift[0])), mode="edge")
    moved = padded[: h, : w]  # the channel moved down/right by the shift
    out = unit.copy()
    out[:, :, 1] = moved * edges + green * (1 - edges)
    return out


def _color_quantization(unit: Array, colours: float, rng: np.random.Generator) -> Array:
    from PIL import Image

    image = Image.fromarray(to_uint8(unit))
    palette = image.quantize(colors=int(colours), method=Image.Quantize.MEDIANCUT,
                             dither=Image.Dither.FLOYDSTEINBERG)
    return unit_of(palette.convert("RGB"))


def _color_saturation_hsv(unit: Array, factor: float, rng: np.random.Generator) -> Array:
    from skimage.color import hsv2rgb, rgb2hsv

    hsv = np.asarray(rgb2hsv(np.clip(unit, 0.0, 1.0)))
    hsv[:, :, 1] *= factor
    hsv[:, :, 1] = np.abs(hsv[:, :, 1])  # a negative saturation reads as its opposite hue
    hsv[:, :, 0] = np.where(factor < 0, (hsv[:, :, 0] + 0.5) % 1.0, hsv[:, :, 0])
    return np.asarray(hsv2rgb(np.clip(hsv, 0.0, 1.0)))


def _color_saturation_lab(unit: Array, factor: float, rng: np.random.Generator) -> Array:
    lab = _lab(unit)
    lab[:, :, 1:] *= factor
    return _rgb(lab)


def _white_noise(unit: Array, variance: float, rng: np.random.Generator) -> Array:
    return unit + rng.normal(0.0, math.sqrt(variance), size=unit.shape)


def _white_noise_color(unit: Array, variance: float, rng: np.random.Generator) -> Array:
    from skimage.color import rgb2ycbcr, ycbcr2rgb

    ycbcr = np.asarray(rgb2ycbcr(np.clip(unit, 0.0, 1.0))) / 255.0
    ycbcr += rng.normal(0.0, math.sqrt(variance), size=unit.shape)
    return np.asarray(ycbcr2rgb(ycbcr * 255.0))


def _impulse_noise(unit: Array, density: float, rng: np.random.Generator) -> Array:
    out = unit.copy()
    hit = rng.random(unit.shape) < density
    salt = rng.random(unit.shape) < 0.5
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


def _multiplicative_noise(unit: Array, variance: float, rng: np.random.Generator) -> Array:
    half_width = math.sqrt(3 * variance)  # MATLAB imnoise 'speckle': uniform, this variance
    return unit + unit * rng.uniform(-half_width, half_width, size=unit.shape)


def _denoise(unit: Array, variance: float, rng: np.random.Generator) -> Array:
    from skimage.restoration import denoise_tv_chambolle

    sigma = math.sqrt(variance)
    noisy = np.clip(unit + rng.normal(0.0, sigma, size=unit.shape), 0.0, 1.0)
    denoised = denoise_tv_chambolle(noisy, weight=sigma, channel_axis=-1)  # type: ignore[no-untyped-call]
    return np.asarray(denoised)


def _brighten(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    lab = _lab(unit)
    lab[:, :, 0] = _tone(lab[:, :, 0] / 100.0, 0.5 + amount / 2) * 100.0
    in_lab = np.clip(_rgb(lab), 0.0, 1.0)
    return (2 * _tone(unit, 0.5 + amount / 2) + in_lab) / 3


def _darken(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    return _tone(unit, 0.5 - amount / 2)


def _mean_shift(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    return np.clip(unit + amount, 0.0, 1.0)


def _jitter(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    from scipy import ndimage

    out = unit
    h, w = unit.shape[:2]
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    for _ in range(5):  # the release scatters five times
        shift = rng.normal(0.0, amount, size=(2, h, w))
        where = [rows - shift[0], cols - shift[1]]
        out = np.stack([ndimage.map_coordinates(out[:, :, c], where, order=1, mode="nearest")
                        for c in range(3)], axis=2)
    return out


def _non_eccentricity(unit: Array, patches: float, rng: np.random.Generator) -> Array:
    out = unit.copy()
    size, radius = 16, 16
    h, w = unit.shape[:2]
    if h < size + 2 * radius + 1 or w < size + 2 * radius + 1:
        return out
    for _ in range(int(patches)):
        top = round(rng.random() * (h - size - 2 * radius)) + radius
        left = round(rng.random() * (w - size - 2 * radius)) + radius
        patch = out[top:top + size, left:left + size].copy()
        new_top = round((rng.random() - 0.5) * radius + top)
        new_left = round((rng.random() - 0.5) * radius + left)
        out[new_top:new_top + size, new_left:new_left + size] = patch
    return out


def _pixelate(unit: Array, strength: float, rng: np.random.Generator) -> Array:
    from PIL import Image

    scale = 0.95 - strength ** 0.6
    h, w = unit.shape[:2]
    small = (max(1, int(w * scale)), max(1, int(h * scale)))
    image = Image.fromarray(to_uint8(unit))
    blocky = image.resize(small, Image.Resampling.BOX).resize((w, h), Image.Resampling.NEAREST)
    return unit_of(blocky)


def _quantization(unit: Array, levels: float, rng: np.random.Generator) -> Array:
    thresholds = np.linspace(0.0, 1.0, int(levels) + 1)[1:-1]
    return map_min_max(np.digitize(unit, thresholds).astype(np.float64))


def _color_block(unit: Array, patches: float, rng: np.random.Generator) -> Array:
    out = unit.copy()
    size = 32
    h, w = unit.shape[:2]
    for _ in range(int(patches)):
        colour = rng.random(3)
        top = math.floor(rng.random() * max(h - size, 1))
        left = math.floor(rng.random() * max(w - size, 1))
        out[top:top + size, left:left + size] = colour
    return out


def _high_sharpen(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    lab = _lab(unit)
    lightness = lab[:, :, :1]
    blurred = _gaussian(lightness, 6.0, 13)
    lab[:, :, :1] = lightness + amount * (lightness - blurred)
    return _rgb(lab)


def _contrast_change(unit: Array, amount: float, rng: np.random.Generator) -> Array:
    return _curve([0.0, 0.3, 0.5, 0.7, 1.0],
                  [0.0, 0.25 - amount / 4, 0.5, 0.75 + amount / 4, 1.0], unit)


#: KADID-10k's operations, keyed by our type name, in the database's type order (1–25).
OPERATIONS: dict[str, Operation] = {
    "gaussian_blur": _gaussian_blur,
    "lens_blur": _lens_blur,
    "motion_blur": _motion_blur,
    "color_diffusion": _color_diffusion,
    "color_shift": _color_shift,
    "color_quantization": _color_quantization,
    "color_saturation_hsv": _color_saturation_hsv,
    "color_saturation_lab": _color_saturation_lab,
    "jpeg2000": codec_operation("JPEG2000", quality_mode="rates"),
    "jpeg": codec_operation("JPEG"),
    "white_noise": _white_noise,
    "white_noise_color": _white_noise_color,
    "impulse_noise": _impulse_noise,
    "multiplicative_noise": _multiplicative_noise,
    "denoise": _denoise,
    "brighten": _brighten,
    "darken": _darken,
    "mean_shift": _mean_shift,
    "jitter": _jitter,
    "non_eccentricity_patch": _non_eccentricity,
    "pixelate": _pixelate,
    "quantization": _quantization,
    "color_block": _color_block,
    "high_sharpen": _high_sharpen,
    "contrast_change": _contrast_change,
}
