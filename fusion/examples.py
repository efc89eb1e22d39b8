"""Small example image pairs shipped inside the package.

Each pair is a 240×320 crop of a freely licensed photograph that scikit-image ships and a
distorted copy of it, made by :func:`make_example_pairs` (run ``python -m fusion.examples
DIR`` to remake them; the shipped PNGs were made with Pillow's JPEG encoder and SciPy):

============== ========================== ============================================
name           source (licence)            distortion
============== ========================== ============================================
coffee_jpeg    ``skimage.data.coffee``     JPEG at quality 10 (Pillow, 4:2:0 chroma)
               (CC0, Rachel Michetti)
astronaut_blur ``skimage.data.astronaut``  Gaussian blur, σ = 2 px per channel
               (public domain, NASA)
chelsea_noise  ``skimage.data.chelsea``    additive white Gaussian noise, σ = 0.05
               (CC0, Stefan van der Walt)  (of full scale), seed 2026, clipped
============== ========================== ============================================
"""

from __future__ import annotations

import io
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["EXAMPLE_NAMES", "example_pair", "example_paths", "make_example_pairs"]

#: Names of the shipped pairs; the first is the default.
EXAMPLE_NAMES = ("coffee_jpeg", "astronaut_blur", "chelsea_noise")

# (skimage.data function, top, left) of each 240×320 crop.
_CROPS = {
    "coffee_jpeg": ("coffee", 60, 150),
    "astronaut_blur": ("astronaut", 20, 100),
    "chelsea_noise": ("chelsea", 30, 70),
}
_CROP_SIZE = (240, 320)
_NOISE_SEED = 2026


def example_paths(name: str | None = None) -> tuple[Path, Path]:
    """Paths of the shipped (reference, distorted) PNG files of one example pair.

    Parameters
    ----------
    name : str, optional
        One of :data:`EXAMPLE_NAMES`; the first by default.

    Raises
    ------
    ValueError
        For an unknown name (the message lists the known ones).

    """
    name = EXAMPLE_NAMES[0] if name is None else name
    if name not in EXAMPLE_NAMES:
        raise ValueError(f"unknown example {name!r}; choose one of {', '.join(EXAMPLE_NAMES)}")
    folder = Path(str(resources.files("fusion") / "data" / "examples"))
    return folder / f"{name}_reference.png", folder / f"{name}_distorted.png"


def example_pair(name: str | None = None) -> tuple[NDArray[np.uint8], NDArray[np.uint8]]:
    """Load a shipped example pair as uint8 RGB arrays.

    Parameters
    ----------
    name : str, optional
        One of :data:`EXAMPLE_NAMES`; the first (``"coffee_jpeg"``) by default.

    Returns
    -------
    reference, distorted : ndarray of uint8, shape (240, 320, 3)

    Examples
    --------
    >>> ref, dist = example_pair()
    >>> ref.shape, dist.dtype
    ((240, 320, 3), dtype('uint8'))

    """
    from PIL import Image as PILImage

    arrays = []
    for path in example_paths(name):
        with PILImage.open(path) as pil:
            arrays.append(np.asarray(pil.convert("RGB")))
    return arrays[0], arrays[1]


def make_example_pairs(directory: str | Path) -> list[Path]:
    """Remake the example pairs from scikit-image's data into ``directory``.

    Needs scikit-image and SciPy (both in the ``test`` extra).

    Returns
    -------
    list of Path
        The files written.

    """
    try:
        import skimage.data
        from scipy import ndimage
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "make_example_pairs needs scikit-image and scipy: pip install 'fusion-iqa[test]'"
        ) from exc
    from PIL import Image as PILImage

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, (source, top, left) in _CROPS.items():
        image = getattr(skimage.data, source)()
        reference = np.ascontiguousarray(
            image[top : top + _CROP_SIZE[0], left : left + _CROP_SIZE[1], :3]
        )
        distorted = _distort(name, reference, ndimage, PILImage)
        for role, array in (("reference", reference), ("distorted", distorted)):
            path = out / f"{name}_{role}.png"
            PILImage.fromarray(array).save(path, optimize=True)
            written.append(path)
    return written


def _distort(name: str, reference: NDArray[np.uint8], ndimage: Any, pil: Any) -> NDArray[np.uint8]:
    if name == "coffee_jpeg":
        buffer = io.BytesIO()
        pil.fromarray(reference).save(buffer, format="JPEG", quality=10)
        buffer.seek(0)
        with pil.open(buffer) as decoded:
            return np.asarray(decoded.convert("RGB"))
    unit = reference.astype(np.float64) / 255.0
    if name == "astronaut_blur":
        out = ndimage.gaussian_filter(unit, sigma=(2.0, 2.0, 0.0), mode="reflect")
    elif name == "chelsea_noise":
        rng = np.random.default_rng(_NOISE_SEED)
        out = unit + rng.normal(0.0, 0.05, size=unit.shape)
    else:  # pragma: no cover - _CROPS and this function are kept in step
        raise ValueError(name)
    return np.asarray(np.floor(np.clip(out, 0.0, 1.0) * 255.0 + 0.5), dtype=np.uint8)


if __name__ == "__main__":  # pragma: no cover - a maintenance command
    for written_path in make_example_pairs(sys.argv[1] if len(sys.argv) > 1 else "."):
        print(written_path)
