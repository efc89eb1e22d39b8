"""Time the handcrafted full-reference features against scikit-image in the same run.

Usage::

    python benchmarks/features.py [--repeats 30] [--pairs DIR]

Pairs are 512×384 RGB uint8: by default the five TID2013 pairs in
../shared/data/reference_values/tid2013_pairs when present, otherwise 512×384 crops of
scikit-image's photographs with seeded noise. Every method is timed on the same pairs,
from uint8 arrays in memory (decoding excluded), median over ``--repeats`` rounds.

Peers: scikit-image's ``peak_signal_noise_ratio`` and Gaussian
``structural_similarity`` (the options the authors use). scikit-image has no MS-SSIM,
GMSD, VIFp, FSIM or HaarPSI, so their peers are straightforward implementations from
scikit-image, NumPy and SciPy building blocks (``structural_similarity(full=True)`` per
scale, ``ndimage`` filters, ``numpy.fft``, ``convolve2d``), the code a Python user would
otherwise write; they are labelled as such.
The table also prints the largest difference between our value and the peer's.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fusion  # noqa: E402
from fusion.features import full_reference_features  # noqa: E402
from fusion.io import BT601_LUMA_WEIGHTS  # noqa: E402
from tests._reference_impl import vifp_mscale  # noqa: E402

Pair = tuple[np.ndarray, np.ndarray]


def load_pairs(folder: Path | None) -> tuple[list[Pair], str]:
    """The benchmark pairs and a description of where they came from."""
    from PIL import Image

    default = ROOT.parent / "shared" / "data" / "reference_values" / "tid2013_pairs"
    folder = folder or (default if default.is_dir() else None)
    if folder is not None:
        pairs = []
        for ref_path in sorted((folder / "ref").glob("*.bmp")):
            ref = np.asarray(Image.open(ref_path).convert("RGB"))
            dist = np.asarray(Image.open(folder / "dist" / ref_path.name).convert("RGB"))
            pairs.append((ref, dist))
        return pairs, f"{len(pairs)} TID2013 pairs from {folder}"
    import skimage.data

    rng = np.random.default_rng(0)
    pairs = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        image = np.asarray(getattr(skimage.data, name)())
        image = np.pad(image, ((0, max(0, 384 - image.shape[0])), (0, max(0, 512 - image.shape[1])),
                               (0, 0)), mode="reflect")[:384, :512, :3]
        noisy = np.clip(image + rng.normal(0, 12, image.shape), 0, 255).astype(np.uint8)
        pairs.append((image, noisy))
    return pairs, f"{len(pairs)} scikit-image photographs with noise (512×384)"


def _luma(rgb: np.ndarray) -> np.ndarray:
    return np.floor(rgb @ BT601_LUMA_WEIGHTS + 0.5)


# --------------------------------------------------------------------------- peers


def peer_psnr(ref: np.ndarray, dist: np.ndarray) -> float:
    from skimage.metrics import peak_signal_noise_ratio

    return float(peak_signal_noise_ratio(ref, dist, data_range=255))


def peer_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    return float(structural_similarity(
        _luma(ref), _luma(dist), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    ))


def peer_ms_ssim(ref: np.ndarray, dist: np.ndarray) -> float:
    from scipy import ndimage
    from skimage.metrics import structural_similarity

    weights = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    x, y = _luma(ref), _luma(dist)
    value = 1.0
    for level, weight in enumerate(weights):
        mean, ssim_map = structural_similarity(
            x, y, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
            data_range=255, full=True,
        )
        if level == len(weights) - 1:
            value *= max(float(mean), 0.0) ** weight
        else:  # contrast-structure term: the map divided by its luminance term
            mu_x = ndimage.gaussian_filter(x, 1.5, truncate=3.5)
            mu_y = ndimage.gaussian_filter(y, 1.5, truncate=3.5)
            c1 = (0.01 * 255) ** 2
            cs = ssim_map / ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1))
            value *= max(float(cs[5:-5, 5:-5].mean()), 0.0) ** weight
        x = ndimage.uniform_filter(x, 2, mode="mirror", origin=-1)[::2, ::2]
        y = ndimage.uniform_filter(y, 2, mode="mirror", origin=-1)[::2, ::2]
    return value


def peer_gmsd(ref: np.ndarray, dist: np.ndarray) -> float:
    from scipy import ndimage

    def gradient(rgb: np.ndarray) -> np.ndarray:
        y = ndimage.uniform_filter(_luma(rgb), 2, mode="constant", origin=-1)[::2, ::2]
        gx = ndimage.prewitt(y, axis=1, mode="constant") / 3
        gy = ndimage.prewitt(y, axis=0, mode="constant") / 3
        return np.hypot(gx, gy)

    g1, g2 = gradient(ref), gradient(dist)
    gms = (2 * g1 * g2 + 170) / (g1**2 + g2**2 + 170)
    return float(np.std(gms, ddof=1))


def peer_vifp(ref: np.ndarray, dist: np.ndarray) -> float:
    """The authors' ``vifp_mscale.m`` as transcribed for the tests, on SciPy's filters."""
    from scipy import ndimage

    def valid_gaussian(image: np.ndarray, size: int, sigma: float) -> np.ndarray:
        radius = (size - 1) // 2
        return ndimage.gaussian_filter(image, sigma, radius=radius)[radius:-radius,
                                                                    radius:-radius]

    return vifp_mscale(_luma(ref), _luma(dist), valid_filter=valid_gaussian)


def _conv2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(..., 'same')`` with SciPy (2-D kernel, zero padding)."""
    from scipy.signal import convolve2d

    full = convolve2d(image, kernel, mode="full")
    top, left = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[top:top + image.shape[0], left:left + image.shape[1]]


_YIQ = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])


def peer_haarpsi(ref: np.ndarray, dist: np.ndarray) -> float:
    """HaarPSI as the authors' NumPy code computes it: 2-D ``convolve2d`` per filter."""
    def planes(rgb: np.ndarray) -> list[np.ndarray]:
        yiq = rgb.astype(np.float64) @ _YIQ.T
        return [_conv2_same(yiq[:, :, k], np.full((2, 2), 0.25))[::2, ::2] for k in range(3)]

    (y1, i1, q1), (y2, i2, q2) = planes(ref), planes(dist)
    similarity = lambda a, b: (2 * a * b + 30.0) / (a * a + b * b + 30.0)  # noqa: E731
    sims, weights = [], []
    for transpose in (False, True):
        responses = []
        for scale in (1, 2, 3):
            kernel = np.full((2 ** scale, 2 ** scale), 2.0 ** -scale)
            kernel[: 2 ** (scale - 1)] *= -1
            kernel = kernel.T if transpose else kernel
            responses.append((np.abs(_conv2_same(y1, kernel)), np.abs(_conv2_same(y2, kernel))))
        weights.append(np.maximum(*responses[2]))
        sims.append((similarity(*responses[0]) + similarity(*responses[1])) / 2)
    box = np.full((2, 2), 0.25)
    chroma = [np.abs(_conv2_same(p, box)) for p in (i1, i2, q1, q2)]
    sims.append((similarity(chroma[0], chroma[1]) + similarity(chroma[2], chroma[3])) / 2)
    weights.append((weights[0] + weights[1]) / 2)
    pooled = sum(float(np.sum(w / (1 + np.exp(-4.2 * s))))
                 for s, w in zip(sims, weights, strict=True))
    pooled /= sum(float(np.sum(w)) for w in weights)
    return float((np.log(pooled / (1 - pooled)) / 4.2) ** 2)


def peer_fsim(ref: np.ndarray, dist: np.ndarray) -> float:
    """FSIMc in float64 with ``numpy.fft`` and SciPy ``convolve2d`` (a straightforward
    port of ``FeatureSIM.m``: 16 log-Gabor filters built per call)."""
    rows, cols = ref.shape[:2]
    factor = max(1, int(np.floor(min(rows, cols) / 256 + 0.5)))
    box = np.full((factor, factor), 1.0 / factor ** 2)

    def planes(rgb: np.ndarray) -> list[np.ndarray]:
        yiq = rgb.astype(np.float64) @ _YIQ.T
        return [_conv2_same(yiq[:, :, k], box)[::factor, ::factor] for k in range(3)]

    def congruency(image: np.ndarray) -> np.ndarray:
        h, w = image.shape
        def frequencies(n: int) -> np.ndarray:
            return (np.arange(n) - n // 2) / n if n % 2 == 0 else \
                (np.arange(n) - (n - 1) / 2) / (n - 1)

        x, y = np.meshgrid(frequencies(w), frequencies(h))
        radius = np.fft.ifftshift(np.hypot(x, y))
        theta = np.fft.ifftshift(np.arctan2(-y, x))
        radius[0, 0] = 1.0
        low = 1.0 / (1.0 + (radius / 0.45) ** 30)
        spectrum = np.fft.fft2(image)
        energy_all, amplitude_all = np.zeros((h, w)), np.zeros((h, w))
        for o in range(4):
            angle = o * np.pi / 4
            dtheta = np.abs(np.arctan2(
                np.sin(theta) * np.cos(angle) - np.cos(theta) * np.sin(angle),
                np.cos(theta) * np.cos(angle) + np.sin(theta) * np.sin(angle)))
            spread = np.exp(-dtheta ** 2 / (2 * (np.pi / 4 / 1.2) ** 2))
            filters, responses = [], []
            for s in range(4):
                gabor = np.exp(-np.log(radius * 6 * 2 ** s) ** 2 / (2 * np.log(0.55) ** 2)) * low
                gabor[0, 0] = 0.0
                filters.append(gabor * spread)
                responses.append(np.fft.ifft2(spectrum * filters[-1]))
            even = sum(r.real for r in responses)
            odd = sum(r.imag for r in responses)
            norm = np.hypot(even, odd) + 1e-4
            energy = sum(r.real * even / norm + r.imag * odd / norm
                         - np.abs(r.real * odd / norm - r.imag * even / norm) for r in responses)
            spatial = [np.real(np.fft.ifft2(f)) * np.sqrt(h * w) for f in filters]
            sums = 2 * sum(np.sum(a * a) for a in spatial) + 4 * sum(
                np.sum(spatial[i] * spatial[j]) for i in range(4) for j in range(i + 1, 4))
            noise = -np.median(np.abs(responses[0]) ** 2) / np.log(0.5) / np.sum(filters[0] ** 2)
            tau = np.sqrt(noise * sums / 2)
            threshold = tau * np.sqrt(np.pi / 2) + 2 * np.sqrt((2 - np.pi / 2) * tau ** 2)
            energy_all += np.maximum(energy - threshold / 1.7, 0.0)
            amplitude_all += sum(np.abs(r) for r in responses)
        return energy_all / amplitude_all

    (y1, i1, q1), (y2, i2, q2) = planes(ref), planes(dist)
    pc1, pc2 = congruency(y1), congruency(y2)
    scharr = np.array([[3.0, 0.0, -3.0], [10.0, 0.0, -10.0], [3.0, 0.0, -3.0]]) / 16
    g1 = np.hypot(_conv2_same(y1, scharr), _conv2_same(y1, scharr.T))
    g2 = np.hypot(_conv2_same(y2, scharr), _conv2_same(y2, scharr.T))
    weight = np.maximum(pc1, pc2)
    chroma = ((2 * i1 * i2 + 200) / (i1 ** 2 + i2 ** 2 + 200)
              * (2 * q1 * q2 + 200) / (q1 ** 2 + q2 ** 2 + 200))
    similarity = ((2 * pc1 * pc2 + 0.85) / (pc1 ** 2 + pc2 ** 2 + 0.85)
                  * (2 * g1 * g2 + 160) / (g1 ** 2 + g2 ** 2 + 160)
                  * np.real(np.power(chroma.astype(complex), 0.03)) * weight)
    return float(similarity.sum() / weight.sum())


def peer_all(ref: np.ndarray, dist: np.ndarray) -> dict[str, float]:
    return {
        "psnr": peer_psnr(ref, dist), "ssim": peer_ssim(ref, dist),
        "ms_ssim": peer_ms_ssim(ref, dist), "gmsd": peer_gmsd(ref, dist),
        "vifp": peer_vifp(ref, dist), "fsimc": peer_fsim(ref, dist),
        "haarpsi": peer_haarpsi(ref, dist),
    }


# --------------------------------------------------------------------------- timing


def median_ms(func: Callable[[np.ndarray, np.ndarray], object], pairs: list[Pair],
              repeats: int) -> float:
    """Median over rounds of the mean time per pair, in milliseconds."""
    for ref, dist in pairs:  # warm-up: imports, caches, BLAS threads
        func(ref, dist)
    rounds = []
    for _ in range(repeats):
        start = time.perf_counter()
        for ref, dist in pairs:
            func(ref, dist)
        rounds.append((time.perf_counter() - start) / len(pairs) * 1e3)
    return statistics.median(rounds)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--pairs", type=Path, default=None,
                        help="folder with ref/*.bmp and dist/*.bmp (default: TID2013 pairs)")
    args = parser.parse_args(argv)
    pairs, origin = load_pairs(args.pairs)

    rows = [
        ("PSNR (RGB)", fusion.psnr, peer_psnr, "skimage peak_signal_noise_ratio", "psnr"),
        ("SSIM (luma)", fusion.ssim, peer_ssim, "skimage structural_similarity (Gaussian)",
         "ssim"),
        ("MS-SSIM", fusion.ms_ssim, peer_ms_ssim, "skimage SSIM per scale + ndimage (ours)",
         "ms_ssim"),
        ("GMSD", fusion.gmsd, peer_gmsd, "ndimage prewitt/uniform (ours)", "gmsd"),
        ("VIFp", fusion.vifp, peer_vifp, "ndimage gaussian_filter (ours)", "vifp"),
        ("FSIMc", fusion.fsim, peer_fsim, "numpy.fft float64 + convolve2d (ours)", "fsimc"),
        ("HaarPSI", fusion.haarpsi, peer_haarpsi, "2-D convolve2d, as the authors' NumPy code",
         "haarpsi"),
    ]
    print(f"# Handcrafted full-reference features, {origin}")
    print(f"# median of {args.repeats} rounds, ms per pair from uint8 arrays; "
          f"numpy {np.__version__}, python {sys.version.split()[0]}\n")
    print("| feature | fusion-iqa ms | peer ms | peer / fusion | max abs diff | peer |")
    print("|---|---:|---:|---:|---:|---|")
    for label, ours, peer, peer_name, _key in rows:
        ours_ms = median_ms(ours, pairs, args.repeats)
        peer_ms = median_ms(peer, pairs, args.repeats)
        diff = max(abs(ours(r, d) - peer(r, d)) for r, d in pairs)
        print(f"| {label} | {ours_ms:.2f} | {peer_ms:.2f} | {peer_ms / ours_ms:.1f}× | "
              f"{diff:.1e} | {peer_name} |")
    all_ms = median_ms(full_reference_features, pairs, args.repeats)
    peer_all_ms = median_ms(peer_all, pairs, args.repeats)
    print(f"| **whole vector** (PSNR, MSE, SSIM↓2, MS-SSIM, GMSD, VIFp, FSIM(c), HaarPSI) | "
          f"{all_ms:.2f} | {peer_all_ms:.2f} | {peer_all_ms / all_ms:.1f}× | | the seven peers "
          "above |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
