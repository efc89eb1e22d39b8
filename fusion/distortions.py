"""Seeded synthetic distortions of pristine photographs, in the spirit of KADID-10k/TID2013.

Human-rated databases are small, so backbones are pre-trained on distorted copies of
pristine photographs with a known severity (RankIQA, KADIS-700k). Two sets of types:

* :data:`KADID_DISTORTIONS`: KADID-10k's own 25 types (``kadid_<type>``) at the levels of
  the database's release, plus two stronger levels (1–7; :mod:`fusion.kadid`), whose
  pairs get a human-calibrated target from :func:`severity_dataset`;
* :data:`DISTORTIONS`: thirteen home-made types, five levels each (1 = mildest); each
  level is more severe than the one before it, measured by PSNR against the original
  (tested for every type):

=================== ================================================================
type                levels 1 → 5
=================== ================================================================
gaussian_noise      white Gaussian noise on luminance, σ = .01, .025, .05, .08, .12
color_noise         independent noise per RGB channel, σ = .01, .025, .05, .08, .12
impulse_noise       salt-and-pepper, density = .005, .015, .04, .08, .15
gaussian_blur       σ = 0.6, 1.2, 2, 3, 4.5 px
motion_blur         line kernel of 3, 7, 11, 17, 25 px at a seeded angle
pixelate            block size 2, 3, 4, 6, 8 px (box down, nearest up)
jpeg                Pillow JPEG quality 60, 35, 20, 10, 4
jpeg2000            Pillow JPEG 2000 at compression ratio 20, 60, 120, 240, 480
webp                Pillow WebP quality 60, 30, 12, 4, 0
quantization        uniform levels per channel 48, 24, 12, 6, 3
contrast_decrease   contrast scaled by .8, .65, .5, .35, .2 about mean luminance
saturation_decrease mixed with its luma by .25, .45, .65, .85, 1
darken              multiplied by .85, .7, .55, .4, .25
=================== ================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from fusion._pixels import codec_operation, to_uint8
from fusion.datasets import Dataset, DatasetItem
from fusion.io import BT601_LUMA_WEIGHTS
from fusion.kadid import EXTENDED_LEVELS, KADID_TYPES

__all__ = ["DISTORTIONS", "KADID_DISTORTIONS", "LEVELS", "distort", "generate_synthetic",
           "levels_of", "severity_dataset"]

LEVELS = (1, 2, 3, 4, 5)
Array = NDArray[np.float64]
RGB8 = NDArray[np.uint8]

_SETTINGS: dict[str, tuple[float, ...]] = {
    "gaussian_noise": (0.01, 0.025, 0.05, 0.08, 0.12),
    "color_noise": (0.01, 0.025, 0.05, 0.08, 0.12),
    "impulse_noise": (0.005, 0.015, 0.04, 0.08, 0.15),
    "gaussian_blur": (0.6, 1.2, 2.0, 3.0, 4.5),
    "motion_blur": (3, 7, 11, 17, 25),
    "pixelate": (2, 3, 4, 6, 8),
    "jpeg": (60, 35, 20, 10, 4),
    "jpeg2000": (20, 60, 120, 240, 480),
    "webp": (60, 30, 12, 4, 0),
    "quantization": (48, 24, 12, 6, 3),
    "contrast_decrease": (0.8, 0.65, 0.5, 0.35, 0.2),
    "saturation_decrease": (0.25, 0.45, 0.65, 0.85, 1.0),
    "darken": (0.85, 0.7, 0.55, 0.4, 0.25),
}


def _noise(unit: Array, value: float, rng: np.random.Generator, *, per_channel: bool) -> Array:
    shape = unit.shape if per_channel else (*unit.shape[:2], 1)
    return unit + rng.normal(0.0, value, size=shape)


def _impulse(unit: Array, value: float, rng: np.random.Generator) -> Array:
    hit = rng.random(unit.shape[:2]) < value
    salt = rng.random(unit.shape[:2]) < 0.5
    out = unit.copy()
    out[hit & salt] = 1.0
    out[hit & ~salt] = 0.0
    return out


def _gaussian_blur(unit: Array, value: float, rng: np.random.Generator) -> Array:
    from scipy import ndimage

    return np.asarray(ndimage.gaussian_filter(unit, (value, value, 0), mode="reflect"))


def _motion_blur(unit: Array, value: float, rng: np.random.Generator) -> Array:
    from scipy import ndimage

    length = int(value)
    angle = rng.uniform(0, math.pi)  # rng is seeded per image and type, not per level
    kernel = np.zeros((length, length))
    centre = (length - 1) / 2
    for t in np.linspace(-centre, centre, 4 * length):
        kernel[round(centre + t * math.sin(angle)), round(centre + t * math.cos(angle))] = 1.0
    kernel /= kernel.sum()
    return np.stack([ndimage.convolve(unit[:, :, c], kernel, mode="reflect")
                     for c in range(3)], axis=2)


def _pixelate(unit: Array, value: float, rng: np.random.Generator) -> Array:
    block = int(value)
    h, w = unit.shape[:2]
    hh, ww = -(-h // block) * block, -(-w // block) * block
    padded = np.pad(unit, ((0, hh - h), (0, ww - w), (0, 0)), mode="edge")
    means = padded.reshape(hh // block, block, ww // block, block, 3).mean(axis=(1, 3))
    return np.repeat(np.repeat(means, block, axis=0), block, axis=1)[:h, :w]


def _quantize(unit: Array, value: float, rng: np.random.Generator) -> Array:
    steps = value - 1
    return np.floor(unit * steps + 0.5) / steps


def _luma(unit: Array) -> Array:
    return np.asarray(unit @ BT601_LUMA_WEIGHTS)[:, :, None]


def _contrast(unit: Array, value: float, rng: np.random.Generator) -> Array:
    mean = float(_luma(unit).mean())
    return mean + value * (unit - mean)


def _saturation(unit: Array, value: float, rng: np.random.Generator) -> Array:
    return (1 - value) * unit + value * _luma(unit)


_FUNCTIONS: dict[str, Callable[[Array, float, np.random.Generator], Array]] = {
    "gaussian_noise": lambda u, v, r: _noise(u, v, r, per_channel=False),
    "color_noise": lambda u, v, r: _noise(u, v, r, per_channel=True),
    "impulse_noise": _impulse,
    "gaussian_blur": _gaussian_blur,
    "motion_blur": _motion_blur,
    "pixelate": _pixelate,
    "jpeg": codec_operation("JPEG"),
    "jpeg2000": codec_operation("JPEG2000", quality_mode="rates"),
    "webp": codec_operation("WEBP", method=4),
    "quantization": _quantize,
    "contrast_decrease": _contrast,
    "saturation_decrease": _saturation,
    "darken": lambda u, v, r: u * v,
}

#: The distortion types, in a fixed order (their index enters the seeds).
DISTORTIONS: tuple[str, ...] = tuple(_SETTINGS)

#: KADID-10k's 25 types (:mod:`fusion.kadid`), levels 1–7 (6 and 7 beyond the database).
KADID_DISTORTIONS: tuple[str, ...] = tuple(f"kadid_{t.name}" for t in KADID_TYPES)


def levels_of(kind: str) -> tuple[int, ...]:
    """The levels a distortion type has: 1–5, or 1–7 for the KADID-10k types."""
    return EXTENDED_LEVELS if kind in KADID_DISTORTIONS else LEVELS


def distort(image: RGB8, kind: str, level: int, *, seed: int = 0, image_index: int = 0) -> RGB8:
    """A distorted copy of a uint8 RGB image.

    Parameters
    ----------
    image : ndarray of uint8, shape (H, W, 3)
    kind : str
        One of :data:`DISTORTIONS` or :data:`KADID_DISTORTIONS`.
    level : int
        1 (mildest) to 5, or to 7 for the KADID-10k types (:func:`levels_of`).
    seed, image_index : int
        The random stream is seeded by ``(seed, image_index, type)``, and for noise types
        also by ``level``: results do not depend on the order of generation, and a motion
        blur keeps its angle across levels.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)

    Examples
    --------
    >>> import fusion
    >>> ref, _ = fusion.example_pair()
    >>> distort(ref, "jpeg", 3).shape
    (240, 320, 3)
    """
    _check_kind(kind)
    if level not in levels_of(kind):
        raise ValueError(f"level of {kind!r} must be one of {levels_of(kind)}, got {level!r}")
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3
            and image.shape[2] == 3):
        raise ValueError("image must be a uint8 RGB array of shape (H, W, 3)")
    unit = image.astype(np.float64) / 255.0
    if kind in KADID_DISTORTIONS:
        from fusion._kadid_ops import OPERATIONS, map_min_max

        number = KADID_DISTORTIONS.index(kind) + 1
        per_level = kind not in ("kadid_motion_blur", "kadid_color_shift")
        rng = np.random.default_rng([seed, image_index, 100 + number]
                                    + ([level] if per_level else []))
        kadid = KADID_TYPES[number - 1]
        # the release stretches its input and its output to [0, 1] (mapmm)
        distorted = OPERATIONS[kadid.name](map_min_max(unit), float(kadid.parameters[level - 1]),
                                           rng)
        return to_uint8(map_min_max(np.clip(distorted, 0.0, 1.0)))
    kind_index = DISTORTIONS.index(kind)
    per_level = kind not in ("motion_blur",)
    key = [seed, image_index, kind_index] + ([level] if per_level else [])
    rng = np.random.default_rng(key)
    return to_uint8(_FUNCTIONS[kind](unit, float(_SETTINGS[kind][level - 1]), rng))


def _check_kind(kind: str) -> None:
    if kind in _SETTINGS or kind in KADID_DISTORTIONS:
        return
    import difflib

    known = DISTORTIONS + KADID_DISTORTIONS
    close = difflib.get_close_matches(kind, known, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown distortion {kind!r}{hint} (known: {', '.join(known)})")


def generate_synthetic(
    pristine: str | Path | Sequence[str | Path],
    out_dir: str | Path,
    *,
    kinds: Sequence[str] | None = None,
    levels: Sequence[int] = LEVELS,
    seed: int = 0,
    max_side: int | None = None,
    progress: bool = False,
) -> Dataset:
    """Distort pristine photographs into a full-reference :class:`Dataset` (unrated).

    Writes ``reference/<name>.png`` and ``distorted/<name>__<type>__<level>.png`` under
    ``out_dir`` (files that already exist are kept, so an interrupted run resumes) and a
    ``manifest.csv`` that :func:`fusion.datasets.read_manifest` reads back.

    Parameters
    ----------
    pristine : folder or sequence of image paths
        A folder is searched for ``*.png``, ``*.bmp``, ``*.jpg``, ``*.tif`` (sorted).
    out_dir : folder
    kinds : sequence of str, optional
        Distortion types (default: all of :data:`DISTORTIONS`; :data:`KADID_DISTORTIONS`
        makes KADID-10k's).
    levels : sequence of int
        Levels to make (default 1–5); a level a type does not have is skipped.
    seed : int
    max_side : int, optional
        Down-scale references (Lanczos) so that their longer side is at most this.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    Dataset
        Mode ``"fr"``, no scores; ``distortion`` and ``level`` set, content id = reference.
    """
    from PIL import Image

    sources = _pristine_paths(pristine)
    out = Path(out_dir)
    (out / "reference").mkdir(parents=True, exist_ok=True)
    (out / "distorted").mkdir(parents=True, exist_ok=True)
    chosen = list(kinds) if kinds is not None else list(DISTORTIONS)
    for kind in chosen:
        _check_kind(kind)
    jobs = [(i, src, kind, level) for i, src in enumerate(sources) for kind in chosen
            for level in levels if level in levels_of(kind)]
    items = []
    bar = _progress(len(jobs), progress)
    references: dict[int, RGB8] = {}
    for index, source, kind, level in jobs:
        stem = source.stem
        ref_path = out / "reference" / f"{stem}.png"
        if index not in references:
            with Image.open(source) as opened:
                rgb = opened.convert("RGB")
            if max_side is not None and max(rgb.size) > max_side:
                scale = max_side / max(rgb.size)
                rgb = rgb.resize((max(1, round(rgb.width * scale)),
                                  max(1, round(rgb.height * scale))), Image.Resampling.LANCZOS)
            references = {index: np.asarray(rgb)}
            if not ref_path.exists():
                Image.fromarray(references[index]).save(ref_path)
        dist_path = out / "distorted" / f"{stem}__{kind}__{level}.png"
        if not dist_path.exists():
            distorted = distort(references[index], kind, level, seed=seed, image_index=index)
            temporary = dist_path.with_suffix(".tmp.png")
            Image.fromarray(distorted).save(temporary)
            temporary.replace(dist_path)  # never leave a half-written image behind
        items.append(DatasetItem(image=dist_path, reference=ref_path, score=None,
                                 raw_score=None, content_id=stem, distortion=kind, level=level))
        bar.update(1)
    bar.close()
    dataset = Dataset(name="synthetic", mode="fr", items=tuple(items), scale=None, root=out,
                      description=f"synthetic distortions of {len(sources)} pristine images, "
                                  f"seed {seed}")
    dataset.write_manifest(out / "manifest.csv")
    return dataset


def severity_dataset(synthetic: Dataset, *, target: str = "calibrated",
                     score_file: str | Path | None = None) -> Dataset:
    """A synthetic set with a target for each pair, and each reference against itself.

    Parameters
    ----------
    synthetic : Dataset
        From :func:`generate_synthetic`.
    target : {"calibrated", "level"}
        ``"calibrated"`` (default): the human-calibrated target of each KADID-10k (type,
        level), :func:`fusion.kadid.calibrated_targets` — the database's mean rating of
        that group on 0–100, extrapolated past level 5; only the :data:`KADID_DISTORTIONS`
        have one. ``"level"``: ``100·(1 − k/6)`` for level ``k`` of any type, which treats
        level 3 of darkening as level 3 of JPEG (the old target).
    score_file : path, optional
        KADID-10k's ``names_with_mos.txt``; required for ``"calibrated"``.

    Returns
    -------
    Dataset
        Each reference is added paired with itself as level 0, target 100, so that an
        undistorted pair is in distribution. The targets are NOT ratings of these
        images: say so where a model trained on them is described.

    Raises
    ------
    ValueError
        For an unknown ``target``, a missing ``score_file``, or a type without a
        calibrated target.

    Examples
    --------
    >>> import tempfile, fusion
    >>> from fusion.examples import example_paths
    >>> data = generate_synthetic([example_paths("coffee_jpeg")[0]], tempfile.mkdtemp(),
    ...                           kinds=["jpeg"], levels=[1, 5])
    >>> [(i.level, round(i.score, 1)) for i in severity_dataset(data, target="level")]
    [(1, 83.3), (5, 16.7), (0, 100.0)]
    """
    from dataclasses import replace

    from fusion.datasets import ScoreScale

    if target == "level":
        items = [replace(i, score=100.0 * (1 - (i.level or 0) / 6),
                         raw_score=float(i.level or 0)) for i in synthetic]
        scale = ScoreScale(6.0, 0.0, higher_is_better=True, kind="severity")
        rule = "target 100·(1 − level/6)"
    elif target == "calibrated":
        if score_file is None:
            raise ValueError("target='calibrated' needs score_file= (KADID-10k's "
                             "names_with_mos.txt); or pass target='level'")
        from fusion.kadid import calibrated_targets

        targets = calibrated_targets(score_file)
        unknown = sorted({str(i.distortion) for i in synthetic
                          if i.distortion not in KADID_DISTORTIONS})
        if unknown:
            raise ValueError(f"no calibrated target for {', '.join(unknown)}: only the KADID-10k "
                             "types (KADID_DISTORTIONS) have one; pass target='level'")
        items = [replace(i, score=targets[(str(i.distortion).removeprefix("kadid_"),
                                           int(i.level or 0))], raw_score=float(i.level or 0))
                 for i in synthetic]
        scale = ScoreScale(100.0, 0.0, higher_is_better=True, kind="kadid-calibrated")
        rule = ("target the KADID-10k mean rating of each (type, level) on 0–100, "
                "extrapolated past level 5")
    else:
        raise ValueError(f"target must be 'calibrated' or 'level', got {target!r}")
    pristine = {i.content_id: i.reference for i in synthetic}
    items += [DatasetItem(image=ref, reference=ref, score=100.0, raw_score=0.0,
                          content_id=content, distortion="none", level=0)
              for content, ref in pristine.items() if ref is not None]
    return replace(synthetic, items=tuple(items), scale=scale,
                   description=f"{synthetic.description}, and each reference against itself "
                               f"(level 0, target 100); {rule}; NOT human ratings of these "
                               "images")


def _pristine_paths(pristine: str | Path | Sequence[str | Path]) -> list[Path]:
    if isinstance(pristine, (str, Path)) and Path(pristine).is_dir():
        folder = Path(pristine)
        paths = sorted(p for p in folder.iterdir()
                       if p.suffix.lower() in (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff"))
        if not paths:
            raise ValueError(f"no images in {folder}")
        return paths
    if isinstance(pristine, (str, Path)):
        raise FileNotFoundError(f"pristine folder not found: {pristine}")
    paths = [Path(p) for p in pristine]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"pristine image(s) not found: {', '.join(missing[:5])}")
    if len({p.stem for p in paths}) != len(paths):
        raise ValueError("pristine images must have distinct file names (stems)")
    return paths


class _NoProgress:
    def update(self, n: int) -> None:
        """Ignore progress."""

    def close(self) -> None:
        """Nothing to close."""


def _progress(total: int, show: bool) -> _NoProgress:
    if not show:
        return _NoProgress()
    from tqdm.auto import tqdm

    bar: _NoProgress = tqdm(total=total, desc="distorting", unit="img")
    return bar
