"""Time the handcrafted full-reference features against scikit-image in the same run.

Usage::

    python benchmarks/features.py [--repeats 30] [--pairs DIR]

Pairs are 512×384 RGB uint8: by default the five TID2013 pairs in
../shared/data/reference_values/tid2013_pairs when present, otherwise 512×384 crops of
scikit-image's photographs with seeded noise. Every method is timed on the same pairs,
from uint8 arrays in memory (decoding excluded), median over ``--repeats`` rounds.

Peers: scikit-image's ``peak_signal_noise_ratio`` and Gaussian
``structural_similarity`` (the options the authors use). scikit-image has no MS-SSIM,
GMSD or VIFp, so their peers are straightforward implementations from scikit-image and
SciPy building blocks (``structural_similarity(full=True)`` per scale, ``ndimage``
filters), the code a Python user would otherwise write; they are labelled as such.
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


def peer_all(ref: np.ndarray, dist: np.ndarray) -> dict[str, float]:
    return {
        "psnr": peer_psnr(ref, dist), "ssim": peer_ssim(ref, dist),
        "ms_ssim": peer_ms_ssim(ref, dist), "gmsd": peer_gmsd(ref, dist),
        "vifp": peer_vifp(ref, dist),
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
    print(f"| **whole vector** (PSNR, MSE, SSIM↓2, MS-SSIM, GMSD, VIFp) | {all_ms:.2f} | "
          f"{peer_all_ms:.2f} | {peer_all_ms / all_ms:.1f}× | | the five peers above |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
