"""The one contract of every feature source, handcrafted or learned, and its one runner.

In the spirit of VMAF's feature extractors and pyiqa's metrics, an extractor is a small
versioned object with

* ``name`` and an integer ``version``; ``key`` is ``name_Vversion``, what feature
  caches and model bundles record (bumping the numerics bumps the version);
* ``mode``: ``"fr"`` (needs a reference) or ``"nr"`` (the image alone);
* ``feature_names`` and ``higher_is_better`` (per feature: True, False, or None for a
  value without a quality direction);
* ``min_side``: the smallest image side it accepts;
* one call, ``compute(distorted, reference=None) -> dict[str, float]``, distorted image
  first and the reference optional, as pyiqa's ``metric(distorted, reference)``.

(The plain metric functions, :func:`fusion.ssim` and kin, take the reference first, as
scikit-image's do.)

:func:`run_extractors` is the only place extractors are run: prediction, the feature
table, the cache and batch scoring all go through it. It loads (and validates) the
input once for all extractors, so derived planes are shared through the image's memo,
and it applies the one policy for a non-finite value: :class:`NonFiniteFeatureError`
naming the extractor and the features.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import ClassVar, Literal

from fusion.errors import NonFiniteFeatureError
from fusion.io import Image, ImageInput, load_image, load_pair

__all__ = ["Extractor", "Mode", "check_finite", "load_for", "run_extractors"]

Mode = Literal["nr", "fr"]


class Extractor(ABC):
    """Base class of every feature extractor (see the module docstring).

    Subclasses set the class attributes and implement :meth:`_compute` on loaded images.
    """

    name: ClassVar[str]
    version: ClassVar[int]
    mode: ClassVar[Mode]
    feature_names: ClassVar[tuple[str, ...]]
    #: For each feature, whether a higher value means better quality (None: no direction).
    higher_is_better: ClassVar[tuple[bool | None, ...]]
    min_side: ClassVar[int] = 16

    @property
    def key(self) -> str:
        """``name_Vversion``: the cache and bundle key of this extractor."""
        return f"{self.name}_V{self.version}"

    def compute(self, distorted: ImageInput,
                reference: ImageInput | None = None) -> dict[str, float]:
        """The features of one image (no-reference) or one pair (full-reference).

        Parameters
        ----------
        distorted : image
            Anything :func:`fusion.io.load_image` accepts; loaded images are reused as is.
        reference : image, optional
            Required by full-reference extractors, refused by no-reference ones.

        Returns
        -------
        dict of str to float
            One finite value per name in ``feature_names``, in that order.

        Raises
        ------
        ValueError
            If the reference is missing (``"fr"``) or given (``"nr"``), for invalid
            images (:mod:`fusion.io`), and :class:`NonFiniteFeatureError` if a value is
            not finite.
        """
        return run_extractors((self,), distorted, reference)[self.key]

    @abstractmethod
    def _compute(self, distorted: Image, reference: Image | None) -> dict[str, float]:
        """Compute the features of loaded images (``reference`` is None in ``"nr"``)."""

    def __eq__(self, other: object) -> bool:
        # Two extractors of one class and key compute the same numbers (the version
        # changes with the numerics), e.g. an extractor and its deep copy.
        return type(other) is type(self) and other.key == self.key

    def __hash__(self) -> int:
        return hash((type(self), self.key))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()  # {self.key}: {', '.join(self.feature_names)}"


def load_for(extractors: Sequence[Extractor], distorted: ImageInput,
             reference: ImageInput | None = None, *,
             names: tuple[str, str] = ("distorted", "reference"),
             data_range: float | None = None) -> tuple[Image, Image | None]:
    """Load the input of ``extractors`` once, checked against all of their needs.

    Parameters
    ----------
    extractors : sequence of Extractor
        All of one mode.
    distorted, reference : image
        As for :meth:`Extractor.compute`.
    names : (str, str)
        The arguments' names in error messages.
    data_range : float, optional
        The white level of array input (see :func:`fusion.io.load_image`).

    Returns
    -------
    distorted : Image
    reference : Image or None
    """
    modes = {e.mode for e in extractors}
    if len(modes) > 1:
        raise ValueError(f"extractors of both modes in one call: "
                         f"{', '.join(e.key for e in extractors)}")
    mode = modes.pop() if modes else ("fr" if reference is not None else "nr")
    min_side = max((e.min_side for e in extractors), default=1)
    if mode == "nr":
        if reference is not None:
            raise ValueError(f"no-reference features take no {names[1]}: "
                             f"{', '.join(e.key for e in extractors)}")
        return load_image(distorted, name=names[0], min_side=min_side,
                          data_range=data_range), None
    if reference is None:
        raise ValueError(f"full-reference features need a {names[1]}: "
                         f"{', '.join(e.key for e in extractors)}")
    ref, dist = load_pair(reference, distorted, min_side=min_side,
                          names=(names[1], names[0]), data_range=data_range)
    return dist, ref


def check_finite(extractor_key: str, values: dict[str, float]) -> dict[str, float]:
    """Return ``values`` if every one is finite, else raise :class:`NonFiniteFeatureError`."""
    bad = {k: v for k, v in values.items() if not math.isfinite(v)}
    if bad:
        listed = ", ".join(f"{k}={v}" for k, v in list(bad.items())[:5])
        raise NonFiniteFeatureError(
            f"feature extractor {extractor_key} gave {len(bad)} non-finite value(s) for "
            f"this image: {listed}")
    return values


def run_extractors(extractors: Sequence[Extractor], distorted: ImageInput,
                   reference: ImageInput | None = None, *, skip: Collection[str] = (),
                   names: tuple[str, str] = ("distorted", "reference")
                   ) -> dict[str, dict[str, float]]:
    """Run extractors on one image (or pair): loaded once, every value checked finite.

    Parameters
    ----------
    extractors, distorted, reference, names
        As for :func:`load_for`.
    skip : collection of str
        Extractor keys not to compute (e.g. those already in a feature cache).

    Returns
    -------
    dict of str to dict of str to float
        Extractor key → its feature values, in the extractors' order.

    Raises
    ------
    ValueError
        For invalid input (see :func:`load_for`), and :class:`NonFiniteFeatureError`
        naming the extractor and features if a value is not finite.
    """
    todo = [e for e in extractors if e.key not in skip]
    dist, ref = load_for(todo or extractors, distorted, reference, names=names)
    return {e.key: check_finite(e.key, e._compute(dist, ref)) for e in todo}
