"""Anchor images: inputs whose place on the quality scale no viewer disputes.

Human-rated training sets hold photographs, so a model fitted on them alone has never
seen a blank frame, a field of random noise or a 1-bit rendering of a photograph, and
extrapolates there: before anchors, the no-reference default scored pure noise 84 and a
bilevel photograph 100, above the pristine photograph (74). Anchors teach the stacker
where such inputs lie, by a documented rule rather than a guess at human scores:

* **No-reference** (``kind`` → target): every anchor is an image whose picture content
  is destroyed or absent — ``flat`` (the photograph's mean colour), ``gradient`` (a
  smooth ramp between two of its colours), ``uniform_noise`` and ``gaussian_noise``
  (random pixels, no content), ``noisy_photo`` (the photograph under white Gaussian
  noise of σ = 0.5, clipped), ``bilevel`` (thresholded at its mean luma) and
  ``dithered`` (Pillow's 1-bit Floyd–Steinberg) — and its target is the bottom of the
  human scale of the training data (``floor``: the lowest training score).
* **Full-reference**: an identical pair of any of those images is a perfect copy
  (target 100, as every identical pair of the synthetic set); the photograph against
  its flat, noise or bilevel anchor is worse than any graded distortion (target 0).

Anchors are generated from pristine photographs with a seed; the anchors of one
photograph form one content group (in full-reference mode the photograph's own, shared
with its graded distortions), so cross-validation keeps them content-disjoint too.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion.datasets import Dataset, DatasetItem
from fusion.features.contract import Mode
from fusion.io import load_image

__all__ = ["ANCHOR_KINDS", "anchor_dataset", "anchor_images"]

RGB8 = NDArray[np.uint8]

#: The destroyed-content images made from each photograph.
ANCHOR_KINDS = ("flat", "gradient", "uniform_noise", "gaussian_noise", "noisy_photo",
                "bilevel", "dithered")


def anchor_images(photo: RGB8, *, seed: int = 0) -> dict[str, RGB8]:
    """The anchor images of one uint8 RGB photograph, by kind (see the module docstring).

    Examples
    --------
    >>> import fusion
    >>> anchors = anchor_images(fusion.example_pair()[0])
    >>> sorted(anchors) == sorted(ANCHOR_KINDS)
    True
    >>> len(np.unique(anchors["flat"].reshape(-1, 3), axis=0))  # one colour
    1
    """
    from PIL import Image as PILImage

    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[2] != 3:
        raise ValueError(f"photo must be uint8 RGB (H, W, 3), got {photo.dtype} {photo.shape}")
    rng = np.random.default_rng(seed)
    height, width, _ = photo.shape
    unit = photo.astype(np.float64) / 255.0
    mean = unit.reshape(-1, 3).mean(axis=0)
    dark = np.percentile(unit.reshape(-1, 3), 10, axis=0)
    light = np.percentile(unit.reshape(-1, 3), 90, axis=0)
    ramp = np.linspace(0.0, 1.0, width)[None, :, None]
    luma = load_image(photo).luma
    made = {
        "flat": np.broadcast_to(mean, unit.shape),
        "gradient": np.broadcast_to(dark + (light - dark) * ramp, unit.shape),
        "uniform_noise": rng.random(unit.shape),
        "gaussian_noise": 0.5 + 0.25 * rng.standard_normal(unit.shape),
        "noisy_photo": unit + 0.5 * rng.standard_normal((height, width, 1)),
        "bilevel": np.repeat((luma >= luma.mean())[:, :, None], 3, axis=2),
    }
    out = {kind: np.round(np.clip(value, 0, 1) * 255).astype(np.uint8)
           for kind, value in made.items()}
    dithered = PILImage.fromarray(photo).convert("1").convert("RGB")
    out["dithered"] = np.asarray(dithered, dtype=np.uint8)
    return {kind: out[kind] for kind in ANCHOR_KINDS}


def anchor_dataset(photos: Sequence[str | Path], out_dir: str | Path, *, mode: Mode,
                   floor: float = 0.0, seed: int = 0) -> Dataset:
    """Write the anchors of ``photos`` as PNG files and return them as a rated dataset.

    Parameters
    ----------
    photos : sequence of paths
        Pristine photographs (each one content group).
    out_dir : path
        Where the anchor images are written (existing files are kept: resumable).
    mode : {"nr", "fr"}
        No-reference anchors score ``floor``; full-reference anchors are the identical
        pairs of every anchor (100) and the photograph against each anchor (0).
    floor : float
        The target of a no-reference anchor: the bottom of the training data's scale.
    seed : int
        Seeds the noise.
    """
    from PIL import Image as PILImage

    if mode not in ("nr", "fr"):
        raise ValueError(f"mode must be 'nr' or 'fr', got {mode!r}")
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    items: list[DatasetItem] = []
    for index, photo_path in enumerate(photos):
        photo_path = Path(photo_path)
        # Full-reference anchors share the photograph's content group with its graded
        # distortions, so no photograph is on both sides of a split.
        content = photo_path.stem if mode == "fr" else f"anchor:{photo_path.stem}"
        rgb = np.round(load_image(photo_path).rgb * 255).astype(np.uint8)
        for kind, image in anchor_images(rgb, seed=seed + index).items():
            file = folder / f"{photo_path.stem}_{kind}.png"
            if not file.exists():
                PILImage.fromarray(image).save(file)
            if mode == "nr":
                items.append(DatasetItem(file, None, floor, floor, content, kind, None))
            else:
                items.append(DatasetItem(file, file, 100.0, 100.0, content, kind, 0))
                items.append(DatasetItem(file, photo_path, 0.0, 0.0, content, kind, 6))
    description = (f"anchors ({', '.join(ANCHOR_KINDS)}) of {len(photos)} photographs; "
                   + (f"target {floor:g} (the training scale's floor)" if mode == "nr" else
                      "target 100 for identical pairs, 0 against the photograph"))
    return Dataset(f"anchors_{mode}", mode, tuple(items), None, folder, description)
