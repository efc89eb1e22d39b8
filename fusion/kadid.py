"""KADID-10k's 25 distortion types, their level tables and human-calibrated targets.

A synthetic pair made with KADID-10k's own distortion at its own level has a target that
people set: the database's mean rating of that (type, level) over its 81 contents (the
group mean explains 89 % of the variance of the per-image score). This module holds

* :data:`KADID_TYPES`: per type, the five parameter values of the release's
  ``imdist_generator.m`` (Lin, Hosu & Saupe, "KADID-10k: A Large-scale Artificially
  Distorted IQA Database", QoMEX 2019; the same table is in the KADIS-700k release) and
  two stronger values of our own (levels 6 and 7, beyond the database's range), and the
  family each type belongs to;
* :func:`calibrated_targets`: the target of every (type, level) on 0–100 from the score
  file, read by :func:`group_means`, with levels 6 and 7 extrapolated by
  :func:`extrapolate_levels`.

The operations themselves are in :mod:`fusion._kadid_ops`; :func:`fusion.distortions.distort`
applies them under the names ``kadid_<type>``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["EXTENDED_LEVELS", "FAMILIES", "KADID_LEVELS", "KADID_TYPES", "KadidType",
           "calibrated_targets", "extrapolate_levels", "group_means", "kadid_type",
           "tid2013_agreement"]

KADID_LEVELS = (1, 2, 3, 4, 5)
#: Levels 6 and 7 are stronger than anything in the database (see :func:`extrapolate_levels`).
EXTENDED_LEVELS = (1, 2, 3, 4, 5, 6, 7)

#: The families used for leave-one-family-out evaluation and diagnostics.
FAMILIES = ("blur", "noise", "compression", "colour", "exposure_contrast", "spatial")


@dataclass(frozen=True)
class KadidType:
    """One KADID-10k distortion type.

    Attributes
    ----------
    number : int
        Its number in the database (the ``TT`` of ``Ixx_TT_LL.png``), 1–25.
    name : str
        Our name (the registry name is ``"kadid_" + name``).
    family : str
        One of :data:`FAMILIES`.
    published : tuple of float
        The parameter of levels 1–5, as in the release's ``imdist_generator.m``.
    extended : tuple of float
        Our parameters of levels 6 and 7 (stronger than level 5).
    """

    number: int
    name: str
    family: str
    published: tuple[float, float, float, float, float]
    extended: tuple[float, float]

    @property
    def parameters(self) -> tuple[float, ...]:
        """The parameter of levels 1–7."""
        return self.published + self.extended


_T = KadidType
#: The 25 types in the database's order. Parameters as in the release: blur σ / disk
#: radius / line length in px; colour-diffusion and colour-shift amount; palette size;
#: saturation factors (HSV, then L*a*b*); JPEG 2000 compression ratio; JPEG quality;
#: noise variances on [0, 1]; impulse density; tone-curve amounts; mean shift; jitter σ
#: in px; number of displaced 16-px patches; pixelation strength; grey levels; number
#: of 32-px colour blocks; unsharp amount; contrast-curve amount.
KADID_TYPES: tuple[KadidType, ...] = (
    _T(1, "gaussian_blur", "blur", (0.1, 0.5, 1, 2, 5), (8, 12)),
    _T(2, "lens_blur", "blur", (1, 2, 4, 6, 8), (11, 15)),
    _T(3, "motion_blur", "blur", (1, 2, 4, 6, 10), (15, 22)),
    _T(4, "color_diffusion", "colour", (1, 3, 6, 8, 12), (16, 20)),
    _T(5, "color_shift", "colour", (1, 3, 6, 8, 12), (16, 22)),
    _T(6, "color_quantization", "colour", (64, 48, 32, 16, 8), (5, 3)),
    _T(7, "color_saturation_hsv", "colour", (0.4, 0.2, 0.1, 0, -0.4), (-0.7, -1.0)),
    _T(8, "color_saturation_lab", "colour", (1, 2, 3, 6, 9), (13, 18)),
    _T(9, "jpeg2000", "compression", (16, 32, 45, 120, 400), (800, 1600)),
    _T(10, "jpeg", "compression", (43, 36, 24, 7, 4), (3, 2)),
    _T(11, "white_noise", "noise", (0.001, 0.002, 0.003, 0.005, 0.01), (0.02, 0.04)),
    _T(12, "white_noise_color", "noise", (0.0001, 0.0005, 0.001, 0.002, 0.003),
       (0.005, 0.008)),
    _T(13, "impulse_noise", "noise", (0.001, 0.005, 0.01, 0.02, 0.03), (0.05, 0.08)),
    _T(14, "multiplicative_noise", "noise", (0.001, 0.005, 0.01, 0.02, 0.05), (0.1, 0.2)),
    _T(15, "denoise", "noise", (0.01, 0.03, 0.05, 0.1, 0.15), (0.2, 0.3)),
    _T(16, "brighten", "exposure_contrast", (0.1, 0.2, 0.4, 0.7, 1.1), (1.5, 1.9)),
    _T(17, "darken", "exposure_contrast", (0.05, 0.1, 0.2, 0.4, 0.8), (0.9, 0.95)),
    _T(18, "mean_shift", "exposure_contrast", (0.15, 0.08, 0, -0.08, -0.15), (-0.25, -0.35)),
    _T(19, "jitter", "spatial", (0.05, 0.1, 0.2, 0.5, 1), (2, 3)),
    _T(20, "non_eccentricity_patch", "spatial", (20, 40, 60, 80, 100), (150, 200)),
    _T(21, "pixelate", "spatial", (0.01, 0.05, 0.1, 0.2, 0.5), (0.65, 0.8)),
    _T(22, "quantization", "spatial", (20, 16, 13, 10, 7), (5, 3)),
    _T(23, "color_block", "spatial", (2, 4, 6, 8, 10), (15, 20)),
    _T(24, "high_sharpen", "exposure_contrast", (1, 2, 3, 6, 12), (20, 30)),
    _T(25, "contrast_change", "exposure_contrast", (0.3, 0.15, 0, -0.4, -0.6), (-0.75, -0.9)),
)

_BY_NAME = {t.name: t for t in KADID_TYPES}


def kadid_type(name: str) -> KadidType:
    """The type called ``name`` (with or without the ``kadid_`` prefix)."""
    key = name.removeprefix("kadid_")
    if key not in _BY_NAME:
        raise ValueError(f"unknown KADID-10k type {name!r} "
                         f"(known: {', '.join(sorted(_BY_NAME))})")
    return _BY_NAME[key]


def group_means(score_file: str | Path, *, database: str = "kadid10k"
                ) -> dict[tuple[int, int], float]:
    """Mean normalised score (0–100) of each (type number, level) of a score file.

    Read by the project's own readers (:func:`fusion.datasets.read_kadid10k`,
    :func:`fusion.datasets.read_tid2013`), which normalise each database's scale to
    0–100, higher = better; the images need not be present.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If a line cannot be read (the reader names file and line).
    """
    from fusion.datasets.native import read_kadid10k, read_tid2013

    path = Path(score_file)
    readers = {"kadid10k": read_kadid10k, "tid2013": read_tid2013}
    if database not in readers:
        raise ValueError(f"database must be one of {sorted(readers)}, got {database!r}")
    dataset = readers[database](path.parent, score_file=path)
    groups: dict[tuple[int, int], list[float]] = defaultdict(list)
    for item in dataset:
        groups[(int(item.distortion or 0), int(item.level or 0))].append(float(item.score or 0))
    return {key: float(np.mean(values)) for key, values in groups.items()}


def extrapolate_levels(published: list[float] | tuple[float, ...]) -> tuple[float, float]:
    """Targets of levels 6 and 7 from the type's level-1 to level-5 targets.

    Rule: continue the type's curve past level 5 by its mean fall per level over levels
    3 → 5 (at least 2 points a level, so a stronger level never scores higher), and never
    below 0: ``t6 = max(0, t5 − d)``, ``t7 = max(0, t5 − 2d)`` with
    ``d = max(2, (t3 − t5)/2)``.

    Examples
    --------
    >>> extrapolate_levels([90.0, 80.0, 60.0, 40.0, 20.0])
    (0.0, 0.0)
    >>> extrapolate_levels([80.0, 88.0, 90.0, 84.0, 72.0])
    (63.0, 54.0)
    """
    if len(published) != 5:
        raise ValueError(f"need the five published levels, got {len(published)}")
    fall = max(2.0, (published[2] - published[4]) / 2)
    return max(0.0, published[4] - fall), max(0.0, published[4] - 2 * fall)


def calibrated_targets(score_file: str | Path) -> dict[tuple[str, int], float]:
    """Human-calibrated target on 0–100 of every (type name, level 1–7).

    The mean KADID-10k rating of the (type, level) over its contents, mapped from the
    database's 1–5 scale by ``25·(m − 1)`` (:func:`group_means`); levels 6 and 7 by
    :func:`extrapolate_levels`.

    Examples
    --------
    >>> targets = calibrated_targets("../shared/data/score_files/kadid10k/names_with_mos.txt")
    ... # doctest: +SKIP
    >>> round(targets[("jpeg", 5)], 1)  # doctest: +SKIP
    8.8
    """
    groups = group_means(score_file)
    targets: dict[tuple[str, int], float] = {}
    for kind in KADID_TYPES:
        try:
            means = [groups[(kind.number, level)] for level in KADID_LEVELS]
        except KeyError as missing:
            raise ValueError(f"{score_file}: no ratings of type {kind.number} "
                             f"({kind.name}), level {missing.args[0][1]}") from None
        for level, value in zip(KADID_LEVELS, means, strict=True):
            targets[(kind.name, level)] = value
        targets[(kind.name, 6)], targets[(kind.name, 7)] = extrapolate_levels(means)
    return targets


#: KADID-10k types that TID2013 also has (TID2013 type number), for a cross-check.
TID2013_SHARED = {"gaussian_blur": 8, "jpeg": 10, "jpeg2000": 11, "white_noise": 1,
                  "white_noise_color": 2, "impulse_noise": 6, "denoise": 9,
                  "quantization": 7, "color_quantization": 22, "non_eccentricity_patch": 14,
                  "color_block": 15, "multiplicative_noise": 19,
                  "color_saturation_hsv": 18}


def tid2013_agreement(kadid_scores: str | Path, tid_scores: str | Path) -> float:
    """Spearman correlation of KADID-10k's and TID2013's (type, level) means, shared types.

    TID2013's level ``k`` is another parameter than KADID-10k's level ``k``, which is why
    the targets come from KADID-10k alone; this number says how far the two panels agree.
    """
    from fusion.metrics import srcc

    kadid = calibrated_targets(kadid_scores)
    tid = group_means(tid_scores, database="tid2013")
    pairs = [(kadid[(name, level)], tid[(number, level)])
             for name, number in TID2013_SHARED.items() for level in KADID_LEVELS
             if (number, level) in tid]
    kadid_means, tid_means = zip(*pairs, strict=True)
    return srcc(kadid_means, tid_means)
