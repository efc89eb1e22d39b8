"""FSIM and FSIMc, Zhang, Zhang, Mou & Zhang, IEEE TIP 20(8), 2011.

Follows the authors' ``FeatureSIM.m``: the pair on the 0–255 scale as YIQ (luma
``Y = 0.299 R + 0.587 G + 0.114 B`` and chroma I, Q), averaged over F×F boxes with
``conv2 'same'`` (zero padding) and sub-sampled by ``F = max(1, round(min(H, W)/256))``;
phase congruency of Y by Kovesi's ``phasecong2`` as the authors ship it (4 scales from
wavelength 6, ×2, σ_f 0.55; 4 orientations, dθ/σ 1.2; noise threshold k = 2 then /1.7),
Scharr gradients ``[3 0 −3; 10 0 −10; 3 0 −3]/16``; similarity constants T1 = 0.85,
T2 = 160, T3 = T4 = 200, λ = 0.03; both scores are weighted by max(PC_ref, PC_dist).
Higher is better; identical images give 1.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from fusion.features._filters import YIQ, boxed_rgb255, similarity
from fusion.io import Image, ImageInput, load_pair, require_min_side

__all__ = ["FSIM_MIN_SIDE", "fsim", "fsim_of", "phase_congruency", "real_power",
           "scharr_magnitude"]

Plane = NDArray[np.float32]

#: Smallest side FSIM accepts (phase congruency of a few pixels means nothing).
FSIM_MIN_SIDE = 16

def fsim(image_true: ImageInput, image_test: ImageInput, *, data_range: float | None = None,
         chromatic: bool = True) -> float:
    """FSIMc (default) or FSIM of a pair; higher = better, 1 for identical images.

    Parameters
    ----------
    image_true, image_test : image
        Reference and test image (anything :func:`fusion.io.load_image` accepts); a grey
        image has no chroma, so FSIMc equals FSIM for it.
    data_range : float, optional
        White level of the input data.
    chromatic : bool
        FSIMc (with the I/Q chroma term) or FSIM.

    Examples
    --------
    >>> import numpy as np
    >>> a = np.random.default_rng(0).random((64, 64, 3))
    >>> round(fsim(a, a), 6)
    1.0
    """
    ref, dist = load_pair(image_true, image_test, data_range=data_range,
                          names=("image_true", "image_test"))
    require_min_side(ref, FSIM_MIN_SIDE, "FSIM")
    return fsim_of(ref, dist)["fsimc" if chromatic else "fsim"]


def fsim_of(reference: Image, distorted: Image) -> dict[str, float]:
    """FSIM and FSIMc of a loaded pair (reference first)."""
    y1, i1, q1 = _yiq_planes(reference)
    y2, i2, q2 = _yiq_planes(distorted)
    pc1, pc2 = _phase_congruency_of(reference, y1), _phase_congruency_of(distorted, y2)
    g1, g2 = scharr_magnitude(y1), scharr_magnitude(y2)
    weight = np.maximum(pc1, pc2)  # float32 planes, float64 sums
    total = float(weight.sum(dtype=np.float64))
    if total <= 0.0:  # no phase congruency anywhere (a flat pair): nothing differs
        return {"fsim": 1.0, "fsimc": 1.0}
    base = similarity(g1, g2, 160.0) * similarity(pc1, pc2, 0.85) * weight
    chroma = similarity(i1, i2, 200.0) * similarity(q1, q2, 200.0)
    coloured = base * real_power(chroma, 0.03)
    return {"fsim": float(base.sum(dtype=np.float64)) / total,
            "fsimc": float(coloured.sum(dtype=np.float64)) / total}


def real_power(x: NDArray[np.floating], exponent: float) -> NDArray[np.floating]:
    """MATLAB's ``real(x.^p)``: for x < 0 the principal power is |x|^p·e^{iπp}.

    The chroma similarity is negative where the two chroma values have opposite signs
    and are large; the authors' code keeps the real part of that complex power.
    """
    magnitude = np.power(np.abs(x), exponent)
    return np.asarray(np.where(x < 0, magnitude * math.cos(math.pi * exponent), magnitude))


def _yiq_planes(image: Image) -> tuple[Plane, Plane, Plane]:
    def build() -> tuple[Plane, Plane, Plane]:
        factor = max(1, math.floor(min(image.shape) / 256 + 0.5))
        boxed = boxed_rgb255(image, factor)
        if boxed.shape[2] == 1:  # grey: Y is the plane, no chroma
            grey = np.ascontiguousarray(boxed[:, :, 0], dtype=np.float32)
            return grey, np.zeros_like(grey), np.zeros_like(grey)
        # the colour transform in float64 (as the box sums), the metric in float32
        planes = tuple((boxed @ weights).astype(np.float32) for weights in YIQ)
        return planes

    return image.memoised("fsim_yiq", build)


def scharr_magnitude(plane: NDArray[np.floating]) -> NDArray[np.floating]:
    """Gradient magnitude with ``conv2(plane, kernel, 'same')`` (zero padding).

    The Scharr kernel is separable, ``[3 10 3]ᵀ/16 ⊗ [1 0 −1]``: a central difference
    along one axis, a 3-tap smoothing along the other. (``conv2`` flips the kernel; the
    magnitude does not depend on the sign.)
    """
    padded = np.pad(plane, 1)
    across = padded[:, 2:] - padded[:, :-2]  # (H + 2, W)
    down = padded[2:, :] - padded[:-2, :]  # (H, W + 2)
    gx = (3.0 * (across[:-2] + across[2:]) + 10.0 * across[1:-1]) / 16.0
    gy = (3.0 * (down[:, :-2] + down[:, 2:]) + 10.0 * down[:, 1:-1]) / 16.0
    return np.asarray(np.hypot(gx, gy))


def _phase_congruency_of(image: Image, luma: Plane) -> Plane:
    return image.memoised("fsim_pc", lambda: phase_congruency(luma))


@lru_cache(maxsize=8)
def _filters(rows: int, cols: int
             ) -> tuple[NDArray[np.float32], NDArray[np.float64], NDArray[np.float64]]:
    """The 16 log-Gabor × angular filters, first-scale energies and noise sums.

    Per orientation: the energy of its first-scale filter, and 2·Σ A_s² + 4·Σ A_i·A_j
    over its spatial filters (the noise model of ``phasecong2``).
    """
    def frequencies(n: int) -> NDArray[np.float64]:
        if n % 2:
            return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
        return np.arange(-n / 2, n / 2) / n

    x, y = np.meshgrid(frequencies(cols), frequencies(rows))
    radius = np.fft.ifftshift(np.sqrt(x ** 2 + y ** 2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius[0, 0] = 1.0
    low_pass = 1.0 / (1.0 + (radius / 0.45) ** 30)  # Kovesi's lowpassfilter(.45, 15)
    scales = 4
    orientations = 4
    log_gabors = []
    for s in range(scales):
        centre = 1.0 / (6.0 * 2.0 ** s)
        gabor = np.exp(-(np.log(radius / centre)) ** 2 / (2 * math.log(0.55) ** 2)) * low_pass
        gabor[0, 0] = 0.0
        log_gabors.append(gabor)
    theta_sigma = math.pi / orientations / 1.2
    bank = np.empty((orientations, scales, rows, cols))
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    for o in range(orientations):
        angle = o * math.pi / orientations
        ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread = np.exp(-np.arctan2(ds, dc) ** 2 / (2 * theta_sigma ** 2))
        for s in range(scales):
            bank[o, s] = log_gabors[s] * spread
    first_energy = np.array([np.sum(bank[o, 0] ** 2) for o in range(orientations)])
    # the noise model: sums over the spatial filters of each orientation
    sums = np.empty(orientations)
    for o in range(orientations):
        spatial = np.real(np.fft.ifft2(bank[o], axes=(-2, -1))) * math.sqrt(rows * cols)
        squares = float(np.sum(spatial ** 2))
        cross = 0.0
        for i in range(scales - 1):
            for j in range(i + 1, scales):
                cross += float(np.sum(spatial[i] * spatial[j]))
        sums[o] = 2 * squares + 4 * cross
    bank32 = bank.astype(np.float32)
    for array in (bank32, first_energy, sums):
        array.flags.writeable = False
    return bank32, first_energy, sums


def phase_congruency(plane: NDArray[np.floating]) -> Plane:
    """Kovesi's phase congruency (``phasecong2`` as shipped with ``FeatureSIM.m``).

    Parameters
    ----------
    plane : ndarray, shape (H, W)
        Grey values on the 0–255 scale.

    Returns
    -------
    ndarray of float32, shape (H, W)
        Phase congruency in [0, 1].
    """
    rows, cols = plane.shape
    bank, first_energy, noise_sums = _filters(rows, cols)
    # complex64 on NumPy ≥ 2 (2× faster than complex128); NumPy's FFTs, not SciPy's,
    # so that the handcrafted features do not import SciPy (0.2 s)
    spectrum = np.fft.fft2(np.asarray(plane, dtype=np.float32))
    product = np.empty(bank.shape[1:], dtype=np.complex64)
    energy_all = np.zeros((rows, cols), np.float32)
    amplitude_all = np.zeros((rows, cols), np.float32)
    for o in range(bank.shape[0]):
        np.multiply(spectrum, bank[o], out=product)
        responses = np.fft.ifft2(product, axes=(-2, -1))
        total = responses.sum(axis=0)  # Σ even + i·Σ odd over the scales
        magnitude = np.abs(total)
        denominator = magnitude + np.float32(1e-4)
        conjugate = np.conj(total / denominator)  # conj of the unit mean phase vector
        # Σ_s (e_s·mean_e + o_s·mean_o) = Re(total·conj(mean)) = |total|²/(|total| + ε),
        # from the sums alone; the deviations |e_s·mean_o − o_s·mean_e| =
        # |Im(r_s·conj(mean))| need every scale
        energy = magnitude * magnitude / denominator
        energy -= np.abs((responses * conjugate).imag).sum(axis=0)
        amplitudes = np.abs(responses)
        noise_median = _median(np.square(amplitudes[0]))  # (the authors' noise estimate)
        mean_noise = -noise_median / math.log(0.5)
        noise_power = mean_noise / first_energy[o]
        tau = math.sqrt(noise_power * noise_sums[o] / 2)
        threshold = (tau * math.sqrt(math.pi / 2) + 2.0 * math.sqrt((2 - math.pi / 2) * tau ** 2))
        energy -= np.float32(threshold / 1.7)
        energy_all += np.maximum(energy, np.float32(0.0), out=energy)
        amplitude_all += amplitudes.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        result = np.where(amplitude_all > 0, energy_all / amplitude_all, np.float32(0.0))
    return np.asarray(result, dtype=np.float32)


def _median(values: NDArray[np.float32]) -> float:
    """``np.median`` of a scratch array, which it reorders (one partition instead of a copy)."""
    flat = values.reshape(-1)
    middle = flat.size // 2
    flat.partition(middle)
    upper = float(flat[middle])
    if flat.size % 2:
        return upper
    return (float(flat[:middle].max()) + upper) / 2
