"""No-reference features: definitions, fits on known distributions, orderings, bad input."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage, special

import fusion
from fusion.datasets import read_manifest
from fusion.distortions import distort
from fusion.feature_table import compute_features
from fusion.features import NO_REFERENCE_EXTRACTORS, no_reference_features
from fusion.features.cues import (
    blockiness,
    colourfulness,
    noise_sigma,
    sharpness_laplacian_variance,
)
from fusion.features.nss import BRISQUE_FEATURE_NAMES, aggd_fit, brisque_features, ggd_fit, mscn
from fusion.features.pseudo_reference import median3x3, pseudo_reference_features

REFERENCES = [fusion.example_pair(name)[0] for name in fusion.EXAMPLE_NAMES]


def _luma255(rgb: np.ndarray) -> np.ndarray:
    return fusion.load_image(rgb).luma255


def _ggd_samples(alpha: float, sigma: float, n: int, rng: np.random.Generator) -> np.ndarray:
    magnitude = rng.gamma(1 / alpha, 1.0, n) ** (1 / alpha)
    x = magnitude * np.where(rng.random(n) < 0.5, -1.0, 1.0)
    return x * sigma / math.sqrt(special.gamma(3 / alpha) / special.gamma(1 / alpha))


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0, 3.5])
def test_ggd_fit_recovers_known_parameters(alpha: float, rng: np.random.Generator) -> None:
    shape, variance = ggd_fit(_ggd_samples(alpha, 1.7, 400_000, rng))
    assert shape == pytest.approx(alpha, rel=0.03)
    assert variance == pytest.approx(1.7**2, rel=0.02)


@pytest.mark.parametrize("alpha, left, right", [(2.0, 0.5, 1.5), (1.0, 1.0, 1.0),
                                                (0.7, 2.0, 0.8)])
def test_aggd_fit_recovers_known_parameters(alpha: float, left: float, right: float,
                                            rng: np.random.Generator) -> None:
    # AGGD (Lasmar et al. 2009): mass βl/(βl+βr) on the left; σ² = β²Γ(3/α)/Γ(1/α).
    n = 400_000
    on_left = rng.random(n) < left / (left + right)
    magnitude = rng.gamma(1 / alpha, 1.0, n) ** (1 / alpha)
    x = np.where(on_left, -left * magnitude, right * magnitude)
    shape, mean, left_var, right_var = aggd_fit(x)
    g1, g2, g3 = (special.gamma(k / alpha) for k in (1, 2, 3))
    assert shape == pytest.approx(alpha, rel=0.03)
    assert left_var == pytest.approx(left**2 * g3 / g1, rel=0.03)
    assert right_var == pytest.approx(right**2 * g3 / g1, rel=0.03)
    assert mean == pytest.approx((right - left) * g2 / g1, abs=0.03 * (left + right))


def test_mscn_matches_brisque_definition() -> None:
    # brisque_feature.m: μ = filter2(w, I, 'same') (zero padding), w = fspecial('gaussian',
    # 7, 7/6); σ = sqrt(|filter2(w, I.^2, 'same') − μ²|); MSCN = (I − μ) / (σ + 1).
    luma = _luma255(REFERENCES[1]).astype(np.float64)
    r = np.arange(7) - 3
    w1 = np.exp(-(r**2) / (2 * (7 / 6) ** 2))
    window = np.outer(w1, w1) / np.outer(w1, w1).sum()
    mu = ndimage.correlate(luma, window, mode="constant")
    sigma = np.sqrt(np.abs(ndimage.correlate(luma**2, window, mode="constant") - mu**2))
    expected = (luma - mu) / (sigma + 1)
    ours = mscn(_luma255(REFERENCES[1]))
    # float32: where σ² ≈ 0 its square root magnifies rounding (|error| < 5e-3 on
    # coefficients of magnitude ~1); the fitted statistics are what must agree.
    np.testing.assert_allclose(ours, expected, atol=5e-3)
    assert ggd_fit(ours)[0] == pytest.approx(ggd_fit(expected)[0], abs=0.002)
    assert ggd_fit(ours)[1] == pytest.approx(ggd_fit(expected)[1], rel=1e-3)
    product = ours * np.roll(ours, 1, axis=1)
    expected_product = expected * np.roll(expected, 1, axis=1)
    np.testing.assert_allclose(aggd_fit(product), aggd_fit(expected_product), rtol=2e-3,
                               atol=2e-3)


def test_brisque_feature_vector() -> None:
    features = brisque_features(_luma255(REFERENCES[0]))
    assert tuple(features) == BRISQUE_FEATURE_NAMES and len(features) == 36
    assert all(math.isfinite(v) for v in features.values())
    assert 1.0 < features["nss_s1_ggd_alpha"] < 3.5  # natural images: near-Gaussian MSCN


def test_median3x3_equals_scipy(rng: np.random.Generator) -> None:
    plane = rng.random((37, 53)).astype(np.float32)
    np.testing.assert_array_equal(median3x3(plane),
                                  ndimage.median_filter(plane, size=3, mode="mirror"))


def test_immerkaer_noise_estimate(rng: np.random.Generator) -> None:
    # Immerkær 1996: unbiased for white Gaussian noise on a smooth image.
    flat = np.full((300, 300), 120.0) + rng.normal(0, 10.0, (300, 300))
    assert noise_sigma(flat.astype(np.float32)) == pytest.approx(10.0, rel=0.05)
    assert noise_sigma(np.full((50, 50), 80.0, np.float32)) == 0.0


def test_laplacian_variance_definition() -> None:
    luma = _luma255(REFERENCES[2])
    expected = ndimage.laplace(luma.astype(np.float64))[1:-1, 1:-1].var()
    assert sharpness_laplacian_variance(luma) == pytest.approx(expected, rel=1e-9)


def test_colourfulness_definition() -> None:
    # Hasler & Süsstrunk 2003, eq. (3).
    rgb = REFERENCES[0].astype(np.float64)
    rg = rgb[..., 0] - rgb[..., 1]
    yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
    expected = math.hypot(rg.std(), yb.std()) + 0.3 * math.hypot(rg.mean(), yb.mean())
    assert colourfulness(rgb.astype(np.float32)) == pytest.approx(expected, rel=1e-5)
    assert colourfulness(np.full((20, 20, 3), 90, np.float32)) == 0.0


def test_blockiness_definition() -> None:
    # Steps only across the 8×8 grid: boundary differences 10, interior ones 0 → ratio ≫ 1.
    blocks = np.kron(np.arange(64).reshape(8, 8) % 2 * 10.0, np.ones((8, 8)))
    ramp = np.add.outer(np.arange(64.0), np.arange(64.0))  # the same step everywhere
    assert blockiness(blocks.astype(np.float32)) > 100
    assert blockiness(ramp.astype(np.float32)) == pytest.approx(1.0)


def _series(feature: str, kind: str) -> list[list[float]]:
    return [[no_reference_features(distort(ref, kind, level, image_index=i))[feature]
             for level in (1, 2, 3, 4, 5)] for i, ref in enumerate(REFERENCES)]


@pytest.mark.parametrize("feature, kind, sign", [
    ("sharpness_laplacian_var", "gaussian_blur", -1),   # more blur, less sharpness
    ("sharpness_gradient", "gaussian_blur", -1),
    ("noise_sigma", "gaussian_noise", +1),              # more noise, higher estimate
    ("blockiness", "jpeg", +1),                         # lower quality, more blocking
    ("colourfulness", "saturation_decrease", -1),
    ("exposure_std", "contrast_decrease", -1),
    ("pr_s1_blur_ssim", "gaussian_blur", +1),           # a blurry image changes little
    ("pr_s1_denoise_psnr", "gaussian_noise", -1),       # denoising removes more noise
])
def test_orderings_from_the_distortion_generator(feature: str, kind: str, sign: int) -> None:
    for values in _series(feature, kind):
        assert np.all(sign * np.diff(values) > 0), (feature, kind, values)


def test_extractors_and_vector() -> None:
    assert [e.key for e in NO_REFERENCE_EXTRACTORS] == [
        "nss_brisque_V1", "pseudo_reference_V1", "cues_V2"]
    image = REFERENCES[0]
    values = no_reference_features(image)
    assert len(values) == 36 + 30 + 9 and all(math.isfinite(v) for v in values.values())
    for extractor in NO_REFERENCE_EXTRACTORS:
        assert extractor.compute(image) == {k: values[k] for k in extractor.feature_names}
    assert len(pseudo_reference_features(fusion.load_image(image))) == 30


@pytest.mark.parametrize("make", [
    lambda: np.full((64, 80, 3), 128, np.uint8),                 # constant
    lambda: np.zeros((64, 80), np.uint8),                        # black, grey layout
    lambda: np.full((64, 80, 4), 200, np.uint8),                 # RGBA
    lambda: (np.arange(64 * 80) % 2 * 255).reshape(64, 80).astype(np.uint8),  # stripes
])
def test_degenerate_images_give_finite_values(make: object) -> None:
    values = no_reference_features(make())  # type: ignore[operator]
    assert all(math.isfinite(v) for v in values.values())


def test_bad_input() -> None:
    with pytest.raises(fusion.ImageTooSmallError, match="32×32"):
        no_reference_features(np.zeros((20, 200), np.uint8))
    bad = np.full((64, 64), 0.5)
    bad[3, 3] = np.nan
    with pytest.raises(fusion.InvalidImageError, match="non-finite"):
        no_reference_features(bad)


def test_compute_features_on_a_no_reference_manifest(tmp_path: Path) -> None:
    lines = ["image,score"]
    for i, ref in enumerate(REFERENCES):
        PILImage.fromarray(ref).save(tmp_path / f"{i}.png")
        lines.append(f"{i}.png,{50 + i}")
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n")
    dataset = read_manifest(tmp_path / "m.csv")
    first = compute_features(dataset, cache=tmp_path / "c.h5", progress=False)
    again = compute_features(dataset, cache=tmp_path / "c.h5", progress=False)
    assert first.values.shape == (3, 75) and again.computed == 0
    np.testing.assert_array_equal(first.values, again.values)
    with pytest.raises(ValueError, match="is a nr dataset"):
        compute_features(dataset, fusion.features.FULL_REFERENCE_EXTRACTORS)
