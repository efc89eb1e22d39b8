"""Numerical agreement with reference implementations; each test names its source."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage
from scipy import ndimage

import fusion
from fusion.io import load_pair
from tests import _reference_impl as reference
from tests.test_io import matlab_rgb2gray_uint8

skimage_metrics = pytest.importorskip("skimage.metrics")

TID_PAIRS = ["I03", "I04", "I06", "I08", "I19"]


def official_scores(folder: Path) -> dict[str, dict[str, float]]:
    with open(folder / "official_scores.csv", newline="") as handle:
        rows = {row["Method"]: row for row in csv.DictReader(handle)}
    return {m: {p: float(rows[m][f"{p}.bmp"]) for p in TID_PAIRS} for m in rows}


def tid_pair(folder: Path, name: str) -> tuple[Path, Path]:
    return folder / "ref" / f"{name}.bmp", folder / "dist" / f"{name}.bmp"


# ------------------------------------------------ the authors' original implementations
# Source: ../shared/data/reference_values/tid2013_pairs/official_scores.csv, computed by
# IQA-PyTorch's calibration with the authors' MATLAB code on rgb2gray(uint8) input (PSNR:
# scikit-image over RGB). See that folder's README for the conventions.


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_psnr_matches_official(tid2013_pairs: Path, pair: str) -> None:
    expected = official_scores(tid2013_pairs)["psnr"][pair]  # printed to 0.01 dB
    assert fusion.psnr(*tid_pair(tid2013_pairs, pair)) == pytest.approx(expected, abs=0.005 + 1e-9)


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_ssim_matches_official_ssim_index_m(tid2013_pairs: Path, pair: str) -> None:
    expected = official_scores(tid2013_pairs)["ssim"][pair]  # ssim_index.m, no down-sampling
    assert fusion.ssim(*tid_pair(tid2013_pairs, pair)) == pytest.approx(expected, abs=5e-4)


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_gmsd_matches_official_gmsd_m(tid2013_pairs: Path, pair: str) -> None:
    expected = official_scores(tid2013_pairs)["gmsd"][pair]  # GMSD.m, printed to 15 digits
    assert fusion.gmsd(*tid_pair(tid2013_pairs, pair)) == pytest.approx(expected, abs=1e-6)


_MS_SSIM_KNOWN_GAP = pytest.mark.xfail(
    strict=True,
    reason="msssim.m as published gives 3.3e-3 (I03) and 4.4e-3 (I19) below the table, "
    "as IQA-PyTorch's own port does; the MATLAB run behind the table is not reproduced",
)


@pytest.mark.shared_data
@pytest.mark.parametrize(
    "pair",
    [pytest.param(p, marks=_MS_SSIM_KNOWN_GAP) if p in ("I03", "I19") else p for p in TID_PAIRS],
)
def test_ms_ssim_matches_official_msssim_m(tid2013_pairs: Path, pair: str) -> None:
    expected = official_scores(tid2013_pairs)["ms_ssim"][pair]
    assert fusion.ms_ssim(*tid_pair(tid2013_pairs, pair)) == pytest.approx(expected, abs=5e-4)


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_vifp_and_ms_ssim_match_transcribed_matlab_on_tid_pairs(
    tid2013_pairs: Path, pair: str
) -> None:
    # Source: tests/_reference_impl.py, vifp_mscale.m and msssim.m transcribed in float64.
    ref, dist = (np.asarray(PILImage.open(p).convert("RGB")) for p in tid_pair(tid2013_pairs, pair))
    y_ref = matlab_rgb2gray_uint8(ref).astype(np.float64)
    y_dist = matlab_rgb2gray_uint8(dist).astype(np.float64)
    assert fusion.vifp(ref, dist) == pytest.approx(reference.vifp_mscale(y_ref, y_dist), abs=1e-4)
    assert fusion.ms_ssim(ref, dist) == pytest.approx(reference.ms_ssim(y_ref, y_dist), abs=1e-5)


# ---------------------------------------------------------------- scikit-image 0.22+


def _distortions(image: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
    unit = image / 255.0
    buffer = io.BytesIO()
    PILImage.fromarray(image).save(buffer, format="JPEG", quality=20)
    jpeg = np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())).convert("RGB"))

    def to_uint8(x: np.ndarray) -> np.ndarray:
        return np.floor(np.clip(x, 0, 1) * 255 + 0.5).astype(np.uint8)

    return {
        "noise": to_uint8(unit + rng.normal(0, 0.07, unit.shape)),
        "blur": to_uint8(ndimage.gaussian_filter(unit, (1.5, 1.5, 0))),
        "jpeg": jpeg,
        "contrast": to_uint8(0.5 + 0.6 * (unit - 0.5)),
        "brighter": to_uint8(unit * 0.8 + 0.25),
    }


def _skimage_pairs() -> list[tuple[str, np.ndarray, np.ndarray]]:
    import skimage.data

    rng = np.random.default_rng(11)
    pairs = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = getattr(skimage.data, name)()[:384, :512, :3]
        pairs += [(f"{name}-{k}", image, d) for k, d in _distortions(image, rng).items()]
    for name in fusion.EXAMPLE_NAMES:
        pairs.append((f"example-{name}", *fusion.example_pair(name)))
    return pairs


SKIMAGE_PAIRS = _skimage_pairs()


@pytest.mark.parametrize("label, ref, dist", SKIMAGE_PAIRS, ids=[p[0] for p in SKIMAGE_PAIRS])
def test_ssim_and_psnr_match_scikit_image(label: str, ref: np.ndarray, dist: np.ndarray) -> None:
    # Source: skimage.metrics on the same data, with the options the issue prescribes.
    y_ref, y_dist = matlab_rgb2gray_uint8(ref), matlab_rgb2gray_uint8(dist)
    expected_ssim = skimage_metrics.structural_similarity(
        y_ref, y_dist, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
        data_range=255,
    )
    assert fusion.ssim(ref, dist) == pytest.approx(expected_ssim, abs=1e-4)
    assert fusion.ssim(y_ref, y_dist) == pytest.approx(expected_ssim, abs=1e-4)
    expected_psnr = skimage_metrics.peak_signal_noise_ratio(ref, dist, data_range=255)
    assert fusion.psnr(ref, dist) == pytest.approx(expected_psnr, abs=1e-4)


def test_ssim_float_data_with_data_range_matches_scikit_image(rng: np.random.Generator) -> None:
    a = rng.random((120, 150)) * 1000.0
    b = np.clip(a + rng.normal(0, 80, a.shape), 0, 1000)
    expected = skimage_metrics.structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1000,
    )
    assert fusion.ssim(a, b, data_range=1000) == pytest.approx(expected, abs=1e-4)
    assert fusion.psnr(a, b, data_range=1000) == pytest.approx(
        skimage_metrics.peak_signal_noise_ratio(a, b, data_range=1000), abs=1e-4
    )


EVERY_THIRD = SKIMAGE_PAIRS[::3]


@pytest.mark.parametrize("label, ref, dist", EVERY_THIRD, ids=[p[0] for p in EVERY_THIRD])
def test_vifp_and_ms_ssim_match_transcription(
    label: str, ref: np.ndarray, dist: np.ndarray
) -> None:
    # Source: tests/_reference_impl.py (vifp_mscale.m and msssim.m transcribed in float64).
    y_ref = matlab_rgb2gray_uint8(ref).astype(np.float64)
    y_dist = matlab_rgb2gray_uint8(dist).astype(np.float64)
    assert fusion.vifp(ref, dist) == pytest.approx(reference.vifp_mscale(y_ref, y_dist), abs=1e-4)
    assert fusion.ms_ssim(ref, dist) == pytest.approx(reference.ms_ssim(y_ref, y_dist), abs=1e-5)


def test_ssim_downsampling_matches_ssim_m_recipe(textured_uint8: np.ndarray) -> None:
    # ssim.m: f = max(1, round(min(M, N) / 256)); imfilter(ones(f)/f², 'symmetric') then
    # img(1:f:end, 1:f:end). For a 600×800 image f = 2; compare with scikit-image on the
    # down-sampled planes built here by hand.
    big = np.tile(textured_uint8, (3, 4, 1))[:600, :800]
    noisy = np.clip(big.astype(int) + np.random.default_rng(3).integers(-30, 30, big.shape), 0, 255)
    noisy = noisy.astype(np.uint8)
    ref, dist = load_pair(big, noisy)

    def down(y: np.ndarray) -> np.ndarray:
        padded = np.pad(y.astype(np.float64), ((0, 1), (0, 1)), mode="symmetric")
        box = (padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]) / 4
        return box[::2, ::2]

    expected = skimage_metrics.structural_similarity(
        down(ref.luma * 255.0), down(dist.luma * 255.0), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    )
    assert fusion.ssim(big, noisy, downsample=True) == pytest.approx(expected, abs=1e-4)
    from_extractor = fusion.features.SSIMExtractor().compute(noisy, big)["ssim"]
    assert from_extractor == pytest.approx(expected, abs=1e-4)


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_fsimc_matches_official_featuresim_m(tid2013_pairs: Path, pair: str) -> None:
    # FeatureSIM.m (Zhang et al. 2011), FSIMc, printed to 4 decimals in the table
    expected = official_scores(tid2013_pairs)["fsim"][pair]
    assert fusion.fsim(*tid_pair(tid2013_pairs, pair)) == pytest.approx(expected, abs=6e-5)


# Source: the authors' reference implementation of HaarPSI (Reisenhofer, Bosse, Kutyniok &
# Wiegand 2018; github.com/rgcda/haarpsi, haarpsi.py, haar_psi_numpy with the default
# preprocess_with_subsampling=True), run on the uint8 RGB arrays of the five TID2013 pairs.
HAARPSI_AUTHORS = {"I03": 0.333304, "I04": 0.428115, "I06": 0.833731, "I08": 0.710298,
                   "I19": 0.445981}


@pytest.mark.shared_data
@pytest.mark.parametrize("pair", TID_PAIRS)
def test_haarpsi_matches_authors_haarpsi_py(tid2013_pairs: Path, pair: str) -> None:
    assert fusion.haarpsi(*tid_pair(tid2013_pairs, pair)) == pytest.approx(
        HAARPSI_AUTHORS[pair], abs=1e-6)


def test_haarpsi_separable_filtering_matches_conv2_same() -> None:
    # MATLAB conv2(A, k, 'same') keeps rows/cols from floor(size(k)/2) of the full result
    from scipy.signal import convolve2d

    from fusion.features.haarpsi import _conv2_same

    gen = np.random.default_rng(3)
    for size in (2, 4, 8):
        plane, column, row = gen.random((37, 50)), gen.random(size), gen.random(size)
        full = convolve2d(plane, np.outer(column, row), mode="full")
        expected = full[size // 2:size // 2 + 37, size // 2:size // 2 + 50]
        np.testing.assert_allclose(_conv2_same(plane, column, row), expected, atol=1e-12)


def test_haarpsi_summed_area_responses_match_conv2_same() -> None:
    # the Haar responses read from a summed-area table equal the filters of haarpsi.py
    from fusion.features.haarpsi import _conv2_same, _haar_responses

    plane = np.random.default_rng(4).random((37, 50)) * 255.0
    responses = _haar_responses(plane)
    for scale in range(1, 4):
        size = 2 ** scale
        step = np.concatenate([-np.ones(size // 2), np.ones(size // 2)])
        flat = np.full(size, 2.0 ** -scale)
        np.testing.assert_allclose(responses[0, scale - 1], _conv2_same(plane, step, flat),
                                   atol=1e-9)
        np.testing.assert_allclose(responses[1, scale - 1], _conv2_same(plane, flat, step),
                                   atol=1e-9)


def test_fsim_scharr_gradient_matches_conv2_same() -> None:
    # FeatureSIM.m: conv2(Y, [3 0 -3; 10 0 -10; 3 0 -3]/16, 'same') and its transpose
    from scipy.signal import convolve2d

    from fusion.features.fsim import scharr_magnitude

    plane = np.random.default_rng(5).random((31, 44)) * 255.0
    kernel = np.array([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]) / 16.0
    gx = convolve2d(plane, kernel, mode="same")
    gy = convolve2d(plane, kernel.T, mode="same")
    np.testing.assert_allclose(scharr_magnitude(plane), np.hypot(gx, gy), atol=1e-9)
