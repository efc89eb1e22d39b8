"""Properties every metric must have: ideal value for identical images, symmetry where the
metric is symmetric, monotone response to increasing noise and blur."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import ndimage

import fusion
from fusion.features import FULL_REFERENCE_EXTRACTORS, PSNR_CAP_DB, full_reference_features

# (function, ideal value for identical images, higher_is_better)
METRICS = {
    "ssim": (fusion.ssim, 1.0, True),
    "ms_ssim": (fusion.ms_ssim, 1.0, True),
    "gmsd": (fusion.gmsd, 0.0, False),
    "vifp": (fusion.vifp, 1.0, True),
    "psnr": (fusion.psnr, math.inf, True),
}
SYMMETRIC = ("ssim", "ms_ssim", "gmsd", "psnr")


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    return fusion.example_pair("astronaut_blur")[0]


def _noisy(image: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(image / 255.0 + rng.normal(0, sigma, image.shape), 0, 1)


def _blurred(image: np.ndarray, sigma: float) -> np.ndarray:
    return ndimage.gaussian_filter(image / 255.0, (sigma, sigma, 0))


@pytest.mark.parametrize("name", list(METRICS))
def test_identical_images_give_the_ideal_value(name: str, reference: np.ndarray) -> None:
    func, ideal, _ = METRICS[name]
    with np.errstate(all="raise"):  # no division or invalid-value warning on the way
        value = func(reference, reference.copy())
    if math.isinf(ideal):
        assert value == ideal
    else:
        assert value == pytest.approx(ideal, abs=1e-6)


def test_identical_constant_images_are_defined() -> None:
    flat = np.full((200, 200), 0.3)
    assert fusion.ssim(flat, flat) == pytest.approx(1.0, abs=1e-6)
    assert fusion.gmsd(flat, flat) == 0.0
    assert fusion.ms_ssim(flat, flat) == pytest.approx(1.0, abs=1e-6)
    assert math.isfinite(fusion.vifp(flat, np.full((200, 200), 0.5)))


@pytest.mark.parametrize("name", SYMMETRIC)
def test_symmetric_metrics(name: str, reference: np.ndarray) -> None:
    func = METRICS[name][0]
    other = _noisy(reference, 0.05)
    assert func(reference / 255.0, other) == pytest.approx(func(other, reference / 255.0), abs=1e-6)


def test_vifp_is_not_symmetric_and_the_order_matters(reference: np.ndarray) -> None:
    blurred = _blurred(reference, 2.0)
    forward = fusion.vifp(reference / 255.0, blurred)
    backward = fusion.vifp(blurred, reference / 255.0)
    assert forward < 0.5 and backward < 0.5
    assert abs(forward - backward) > 0.03


def test_vifp_rewards_a_linear_contrast_stretch(reference: np.ndarray) -> None:
    # Sheikh & Bovik 2006, section IV: a contrast gain g > 1 without clipping gives VIF > 1.
    mid = 0.25 + 0.5 * reference / 255.0
    assert fusion.vifp(mid, 0.5 + 1.3 * (mid - 0.5)) > 1.0
    assert fusion.vifp(mid, 0.5 + 0.7 * (mid - 0.5)) < 1.0


@pytest.mark.parametrize("name", list(METRICS))
@pytest.mark.parametrize("distortion", ["noise", "blur"])
def test_monotone_in_severity(name: str, distortion: str, reference: np.ndarray) -> None:
    func, _, higher_is_better = METRICS[name]
    levels = [0.01, 0.03, 0.06, 0.1, 0.2] if distortion == "noise" else [0.5, 1, 2, 3, 5]
    make = _noisy if distortion == "noise" else _blurred
    values = [func(reference / 255.0, make(reference, level)) for level in levels]
    steps = np.diff(values)
    assert np.all(steps < 0) if higher_is_better else np.all(steps > 0), values


def test_extractors_are_versioned_and_named() -> None:
    keys = [e.key for e in FULL_REFERENCE_EXTRACTORS]
    assert keys == ["psnr_V1", "ssim_V1", "ms_ssim_V1", "gmsd_V1", "vifp_V1", "fsim_V1",
                    "haarpsi_V1"]
    for extractor in FULL_REFERENCE_EXTRACTORS:
        assert isinstance(extractor.version, int) and extractor.version >= 1
        assert extractor.key in repr(extractor)


def test_feature_vector_equals_the_plain_functions(reference: np.ndarray) -> None:
    distorted = np.floor(_noisy(reference, 0.04) * 255 + 0.5).astype(np.uint8)
    values = full_reference_features(reference, distorted)
    assert list(values) == [n for e in FULL_REFERENCE_EXTRACTORS for n in e.feature_names]
    assert values["psnr"] == pytest.approx(fusion.psnr(reference, distorted), abs=1e-12)
    assert values["mse"] == pytest.approx(fusion.mse(reference, distorted), abs=1e-15)
    assert values["ms_ssim"] == pytest.approx(fusion.ms_ssim(reference, distorted), abs=1e-12)
    assert values["gmsd"] == pytest.approx(fusion.gmsd(reference, distorted), abs=1e-12)
    assert values["vifp"] == pytest.approx(fusion.vifp(reference, distorted), abs=1e-12)
    # 240×320: round(240 / 256) = 1, so the extractor's auto down-sampling is a no-op here
    assert values["ssim"] == pytest.approx(fusion.ssim(reference, distorted), abs=1e-12)
    for extractor in FULL_REFERENCE_EXTRACTORS:
        single = extractor.compute(distorted, reference)
        assert single == {k: values[k] for k in extractor.feature_names}


def test_feature_vector_identical_pair_is_finite(reference: np.ndarray) -> None:
    values = full_reference_features(reference, reference)
    assert values["psnr"] == PSNR_CAP_DB and values["mse"] == 0.0
    assert all(math.isfinite(v) for v in values.values())


def test_feature_vector_refuses_pairs_too_small_for_ms_ssim() -> None:
    with pytest.raises(fusion.ImageTooSmallError, match="161×161"):
        full_reference_features(np.zeros((100, 400)), np.zeros((100, 400)))


def test_return_maps(reference: np.ndarray) -> None:
    other = _noisy(reference, 0.05)
    score, ssim_map = fusion.ssim(reference / 255.0, other, return_map=True)
    assert ssim_map.shape == (240 - 10, 320 - 10)
    assert score == pytest.approx(float(ssim_map.mean()), abs=1e-6)
    score, gms = fusion.gmsd(reference / 255.0, other, return_map=True)
    assert gms.shape == (120, 160)
    assert score == pytest.approx(float(np.std(gms, ddof=1)), abs=1e-6)


def test_odd_sizes_and_portrait(rng: np.random.Generator) -> None:
    a = rng.random((201, 173, 3))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    values = full_reference_features(a, b)
    assert all(math.isfinite(v) for v in values.values())
    assert 0 < values["ms_ssim"] < 1 and 0 < values["ssim"] < 1
