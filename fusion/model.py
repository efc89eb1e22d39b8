"""The fusion model: backbone and handcrafted features → stacker → calibrated 0–100 score.

:class:`FusionModel` follows the scikit-learn estimator pattern: the configuration (mode,
extractors, interval coverage, seed …) is stored by ``__init__``; :meth:`FusionModel.fit`
learns the stacking regressor (``stacker_``) and the conformal interval (``interval_``)
from a feature table and returns the model; :meth:`FusionModel.predict` checks that it
is fitted, loads and validates the image(s) once, runs every extractor through
:func:`fusion.features.run_extractors` and returns a :class:`fusion.Prediction`.
Nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from fusion.backbone_extractor import BackboneExtractor
from fusion.diagnostics import Diagnoser, Diagnostics
from fusion.features.contract import Extractor, load_for, run_extractors
from fusion.io import Image, ImageInput
from fusion.prediction import Prediction, QualityMap

__all__ = ["FusionModel"]

_PARAMS = ("mode", "extractors", "coverage", "calibration", "calibration_fraction", "seed",
           "name", "metadata", "working_pixels", "monotone", "interval_width")

#: How :meth:`FusionModel.fit` calibrates the interval (see its ``calibration`` argument).
CALIBRATIONS = ("cross", "split")

#: How wide :meth:`FusionModel.fit` makes the interval (see its ``interval_width`` argument).
INTERVAL_WIDTHS = ("constant", "by_score")

#: Images above this many pixels are box-averaged to a working resolution below it
#: before any feature is computed (see :meth:`fusion.io.Image.reduced`), so that time and
#: memory stay flat for huge images. Every training image of the defaults is smaller.
WORKING_PIXELS = 4_000_000
_NAMES = ("image", "reference")


class FusionModel:
    """Extractors + stacking regressor + conformal interval, for one mode.

    Parameters
    ----------
    mode : {"nr", "fr"}
        No-reference (``predict(image)``) or full-reference (``predict(image,
        reference)``).
    extractors : sequence of Extractor
        The feature sources, all of ``mode``, in column order: exported backbones
        (:class:`fusion.backbone_extractor.BackboneExtractor`) and handcrafted ones.
    coverage : float, default 0.9
        Nominal coverage of the prediction interval.
    calibration : {"cross", "split"}, default "cross"
        How the interval is calibrated on predictions for contents the stacker did not
        see. ``"cross"`` (cross-conformal): the stacker is fitted on every training
        item, and the interval on the out-of-fold predictions of refits on
        content-disjoint folds (:func:`fusion.stacking.grouped_splits`, 5 folds: six
        stacker fits in all). ``"split"`` (split conformal): ``calibration_fraction`` of
        the contents is kept apart and the stacker never sees it (one fit; the
        finite-sample coverage guarantee of split conformal holds, but the stacker
        learns from fewer items). On the CLIVE share (content-disjoint 5-fold, accurate
        preset) cross calibration gave SRCC 0.798 against 0.796, 90.5 % coverage
        against 91.5 % and a half-width of 19.6 against 20.5 points.
    calibration_fraction : float, default 0.2
        ``calibration="split"`` only: the share of the training contents kept apart to
        calibrate the interval.
    seed : int, default 0
        Seeds the content splits and the stacker.
    name : str, default "fusion"
        The model's identifier in predictions.
    metadata : mapping, optional
        Free-form description (a loaded bundle's ``metadata.json``).
    working_pixels : int or None, default 4,000,000
        Images (pairs) with more pixels are box-averaged by the smallest integer factor
        that brings them under it before any extractor runs: the cost of a prediction is
        then flat above it (the backbone already samples at most a few patches). None
        computes at full resolution whatever the size.
    monotone : bool, default False
        Fit :func:`fusion.stacking.build_monotone_stacker`: the score can only rise with
        each handcrafted feature in its known direction (``higher_is_better``), and
        backbone columns are not used. The full-reference default is fitted this way; it
        generalises to distortion families and severities it was not trained on.
    interval_width : {"constant", "by_score"}, default "constant"
        ``"constant"``: one half-width for every item
        (:class:`calibrators.ConformalInterval`). ``"by_score"``: the half-width follows
        the predicted score, wider where the calibration predictions nearby erred more
        (:class:`calibrators.NormalisedConformalInterval`, normalised conformal); the
        coverage stays marginal, the same on average.

    Attributes
    ----------
    stacker_ : sklearn.ensemble.StackingRegressor
        The fitted stacking regressor (features → raw score on 0–100).
    interval_ : calibrators.ConformalInterval or calibrators.NormalisedConformalInterval
        The fitted interval (raw score → clipped score and interval).
    n_features_in_ : int
        Number of feature columns seen in :meth:`fit`.
    gate_ : sklearn.pipeline.Pipeline or None
        No-reference models fitted with ``anchors``: a logistic regression on the
        handcrafted features giving the probability p that an image belongs with the
        destroyed-content anchors rather than with the rated photographs. The score and
        interval are then (1 − p)·(stacker's) + p·``anchor_score_``.
    anchor_score_ : float or None
        The anchors' target: the bottom of the training scale.
    diagnoser_ : fusion.diagnostics.Diagnoser or None
        Names the dominant distortion family of each prediction
        (:attr:`Prediction.diagnostics`); fitted apart from the stacker by
        :mod:`fusion.training.diagnostics` and set with :meth:`set_diagnoser` (None: no
        diagnostics). :meth:`fit` keeps it: it reads features, not scores.

    Examples
    --------
    >>> import numpy as np, fusion
    >>> from fusion.features import FULL_REFERENCE_EXTRACTORS, full_reference_features
    >>> from fusion.distortions import distort
    >>> rows, scores, groups = [], [], []
    >>> for i, name in enumerate(fusion.EXAMPLE_NAMES):
    ...     reference = fusion.example_pair(name)[0]
    ...     for level in range(1, 6):
    ...         distorted = distort(reference, "gaussian_blur", level, image_index=i)
    ...         rows.append(list(full_reference_features(reference, distorted).values()))
    ...         scores.append(100 * (1 - level / 6))
    ...         groups.append(name)
    >>> model = fusion.FusionModel("fr", FULL_REFERENCE_EXTRACTORS, coverage=0.5,
    ...                            calibration_fraction=0.34)
    >>> model.fit(np.array(rows), np.array(scores), groups=np.array(groups)) is model
    True
    >>> ref, dist = fusion.example_pair("astronaut_blur")
    >>> model.predict(ref, ref).score > model.predict(dist, ref).score
    True
    """

    def __init__(self, mode: str = "nr", extractors: Sequence[Extractor] = (), *,
                 coverage: float = 0.9, calibration: str = "cross",
                 calibration_fraction: float = 0.2, seed: int = 0,
                 name: str = "fusion", metadata: Mapping[str, Any] | None = None,
                 working_pixels: int | None = WORKING_PIXELS, monotone: bool = False,
                 interval_width: str = "constant") -> None:
        self.mode = mode
        self.extractors = extractors
        self.coverage = coverage
        self.calibration = calibration
        self.calibration_fraction = calibration_fraction
        self.seed = seed
        self.name = name
        self.metadata = metadata
        self.working_pixels = working_pixels
        self.monotone = monotone
        self.interval_width = interval_width

    # ----------------------------------------------------------------- configuration

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor's arguments (scikit-learn's estimator protocol)."""
        return {name: getattr(self, name) for name in _PARAMS}

    def set_params(self, **params: Any) -> FusionModel:
        """Set constructor arguments (scikit-learn's estimator protocol)."""
        unknown = sorted(set(params) - set(_PARAMS))
        if unknown:
            raise ValueError(f"unknown parameter(s) {unknown}; FusionModel takes {_PARAMS}")
        for name, value in params.items():
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self) -> Any:
        """Estimator tags (scikit-learn ≥ 1.6), built on use.

        ``import fusion`` loads no scikit-learn, so the class cannot inherit
        ``BaseEstimator``; these are the tags a regressor would get from it.
        """
        from sklearn.utils import RegressorTags, Tags, TargetTags

        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True),
                    regressor_tags=RegressorTags())

    @property
    def feature_names(self) -> tuple[str, ...]:
        """The stacker's input columns: every extractor's features, in order."""
        return tuple(n for e in self.extractors for n in e.feature_names)

    @property
    def feature_directions(self) -> tuple[int, ...]:
        """Per feature: +1 (higher = better), −1 (lower = better) or 0 (unknown).

        From each extractor's ``higher_is_better``; backbone columns count as unknown
        (their pooled qualities are in-sample on the training items, see
        :mod:`fusion.stacking`).
        """
        return tuple(0 if isinstance(e, BackboneExtractor) or better is None
                     else (1 if better else -1)
                     for e in self.extractors for better in e.higher_is_better)

    @property
    def min_side(self) -> int:
        """Smallest image side the model accepts."""
        return max((e.min_side for e in self.all_extractors), default=1)

    @property
    def diagnoser(self) -> Diagnoser | None:
        """The fitted diagnostics (:attr:`diagnoser_`), or None."""
        return getattr(self, "diagnoser_", None)

    @property
    def all_extractors(self) -> tuple[Extractor, ...]:
        """The model's extractors, then those its diagnostics need beyond them."""
        own = tuple(self.extractors)
        extra = () if self.diagnoser is None else self.diagnoser.extractors
        return own + tuple(e for e in extra if e not in own)

    def set_diagnoser(self, diagnoser: Diagnoser | None) -> FusionModel:
        """Attach fitted diagnostics (or remove them with None); returns the model.

        Raises
        ------
        ValueError
            If the diagnostics read a feature that neither the model's extractors nor
            their own compute.
        """
        if diagnoser is not None:
            extractors = tuple(self.extractors) + tuple(diagnoser.extractors)
            available = {n for e in extractors for n in e.feature_names}
            missing = [n for n in diagnoser.feature_names if n not in available]
            if missing:
                raise ValueError(f"the diagnostics read {len(missing)} feature(s) this model "
                                 f"does not compute, e.g. {missing[:3]}")
            wrong = [e.key for e in diagnoser.extractors if e.mode != self.mode]
            if wrong:
                raise ValueError(f"diagnostic extractors {wrong} do not work in mode "
                                 f"{self.mode!r}")
        self.diagnoser_ = diagnoser
        return self

    def _check_configuration(self) -> None:
        if self.mode not in ("nr", "fr"):
            raise ValueError(f"mode must be 'nr' or 'fr', got {self.mode!r}")
        if not self.extractors:
            raise ValueError("a FusionModel needs at least one extractor")
        wrong = [e.key for e in self.extractors if e.mode != self.mode]
        if wrong:
            raise ValueError(f"extractors {wrong} do not work in mode {self.mode!r}")
        if self.calibration not in CALIBRATIONS:
            raise ValueError(f"calibration must be one of {CALIBRATIONS}, got "
                             f"{self.calibration!r}")
        if self.interval_width not in INTERVAL_WIDTHS:
            raise ValueError(f"interval_width must be one of {INTERVAL_WIDTHS}, got "
                             f"{self.interval_width!r}")

    # ----------------------------------------------------------------- training

    def fit(self, features: ArrayLike, scores: ArrayLike, *, groups: ArrayLike,
            anchors: ArrayLike | None = None, anchor_score: float | None = None
            ) -> FusionModel:
        """Fit the stacker and the conformal interval on a feature table.

        The interval is calibrated on predictions for contents the stacker did not see:
        out-of-fold predictions of content-disjoint refits (``calibration="cross"``, the
        stacker itself then fitted on every item) or the predictions for a
        ``calibration_fraction`` of the contents kept apart (``"split"``). The stacker's
        internal cross-validation is content-disjoint too.

        Parameters
        ----------
        features : array-like of shape (n_items, n_features)
            Columns in :attr:`feature_names` order (e.g. a
            :class:`fusion.feature_table.FeatureTable`'s ``values``).
        scores : array-like of shape (n_items,)
            Targets on 0–100, higher = better.
        groups : array-like of shape (n_items,)
            Content (reference image) of each item: no content is on both sides of a
            split.
        anchors : array-like of shape (n_anchors, n_features), optional
            No-reference only: features of images whose content is destroyed or absent
            (:mod:`fusion.training.anchors`). They fit the gate (``gate_``), not the
            stacker, so the fit on the rated items is unchanged.
        anchor_score : float, optional
            Where the gate sends an anchor-like image (default: the lowest score).

        Returns
        -------
        FusionModel
            This model, fitted.

        Raises
        ------
        ValueError
            For a bad configuration, shapes that do not match, or non-finite values.
        """
        from calibrators import ConformalInterval, NormalisedConformalInterval
        from fusion.splits import train_val_test_split
        from fusion.stacking import fit_stacker, out_of_fold_predictions

        self._check_configuration()
        if anchors is not None and self.mode != "nr":
            raise ValueError("anchors are for no-reference models (full-reference anchors "
                             "are ordinary training pairs)")
        values = np.asarray(features, dtype=np.float64)
        targets = np.asarray(scores, dtype=np.float64)
        contents = np.asarray(groups)
        names = self.feature_names
        if values.shape != (len(targets), len(names)):
            raise ValueError(f"features have shape {values.shape}, expected "
                             f"({len(targets)}, {len(names)}): one row per score and one "
                             "column per extractor feature")
        if contents.shape != targets.shape:
            raise ValueError(f"groups have shape {contents.shape}, scores {targets.shape}")
        if not (np.isfinite(values).all() and np.isfinite(targets).all()):
            raise ValueError("features and scores must be finite (drop the failed items "
                             "of a feature table with its `ok` mask)")
        anchor_values = None
        if anchors is not None:
            anchor_values = np.asarray(anchors, dtype=np.float64)
            if anchor_values.ndim != 2 or anchor_values.shape[1] != len(names) \
                    or not len(anchor_values):
                raise ValueError(f"anchors have shape {anchor_values.shape}, expected "
                                 f"(n, {len(names)})")
            if not np.isfinite(anchor_values).all():
                raise ValueError("anchor features must be finite")
        distinct = len(set(contents.tolist()))
        if distinct < 3:
            raise ValueError(f"fit needs at least 3 contents (reference images), got "
                             f"{distinct}: the interval is calibrated on contents the "
                             "stacker did not see, and the stacker's own cross-validation "
                             "needs two more")

        def fitted_stacker(rows: NDArray[np.intp]) -> Any:
            return fit_stacker(list(names), values[rows], targets[rows], contents[rows],
                               seed=self.seed,
                               directions=self.feature_directions if self.monotone else None)

        if self.calibration == "split":
            fit_part, calibration, _ = train_val_test_split(
                contents, fractions=(1 - self.calibration_fraction,
                                     self.calibration_fraction, 0.0),
                seed=self.seed, scores=targets)
            stacker = fitted_stacker(fit_part)
            held_apart = stacker.predict(values[calibration])
            observed = targets[calibration]
        else:  # cross-conformal: every item is predicted once by a refit that lacks it
            fit_part = np.arange(len(targets))
            held_apart = out_of_fold_predictions(
                list(names), values, targets, contents, seed=self.seed,
                directions=self.feature_directions if self.monotone else None)
            stacker = fitted_stacker(fit_part)
            observed = targets
        interval = (NormalisedConformalInterval if self.interval_width == "by_score"
                    else ConformalInterval)
        self.interval_ = interval(coverage=self.coverage).fit(held_apart, observed)
        self.stacker_ = stacker
        self.n_features_in_ = len(names)
        self.gate_ = None
        self.anchor_score_ = None
        if anchor_values is not None:
            self.gate_ = self._fit_gate(values[fit_part], anchor_values)
            self.anchor_score_ = float(np.min(targets) if anchor_score is None
                                       else anchor_score)
        return self

    def _fit_gate(self, rated: NDArray[np.float64], anchors: NDArray[np.float64]) -> Any:
        """Logistic regression, rated photographs (0) against anchors (1)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler

        from fusion.column_select import ColumnSelect
        from fusion.stacking import column_blocks

        columns = np.asarray(column_blocks(self.feature_names)["handcrafted"], np.intp)
        if not len(columns):
            raise ValueError("the gate needs handcrafted features")
        gate = Pipeline([
            ("select", ColumnSelect(columns)),
            ("scale", StandardScaler()),
            # Strong L2: the two sets are easy to separate, and a smooth boundary keeps
            # photographs of unusual content well on the rated side.
            ("logistic", LogisticRegression(C=0.05, max_iter=5000))])
        labels = np.r_[np.zeros(len(rated)), np.ones(len(anchors))]
        return gate.fit(np.concatenate([rated, anchors]), labels)

    @classmethod
    def from_fitted(cls, mode: str, extractors: Sequence[Extractor], stacker: Any,
                    interval: Any, *, name: str = "fusion",
                    metadata: Mapping[str, Any] | None = None,
                    working_pixels: int | None = WORKING_PIXELS, gate: Any = None,
                    anchor_score: float | None = None, monotone: bool = False,
                    diagnoser: Diagnoser | None = None) -> FusionModel:
        """A model from an already fitted stacker and interval (as a bundle stores them)."""
        model = cls(mode, tuple(extractors), coverage=float(interval.coverage), name=name,
                    metadata=metadata, working_pixels=working_pixels, monotone=monotone,
                    interval_width="by_score" if hasattr(interval, "multiplier_")
                    else "constant")
        model._check_configuration()
        model.stacker_ = stacker
        model.interval_ = interval
        model.n_features_in_ = len(model.feature_names)
        if (gate is None) != (anchor_score is None):
            raise ValueError("a gate needs its anchor score, and an anchor score its gate")
        model.gate_, model.anchor_score_ = gate, anchor_score
        return model.set_diagnoser(diagnoser)

    # ----------------------------------------------------------------- prediction

    def predict(self, image: ImageInput, reference: ImageInput | None = None, *,
                quality_map: bool = False, data_range: float | None = None) -> Prediction:
        """Score one image (no-reference model) or one pair (full-reference model).

        Parameters
        ----------
        image : image
            The image to score (anything :func:`fusion.io.load_image` accepts).
        reference : image, optional
            Its pristine original: required by a full-reference model, refused by a
            no-reference one.
        quality_map : bool, default False
            Also return the first backbone's per-patch quality map.
        data_range : float, optional
            The white level of array input: float data in [0, data_range], or integer data
            whose maximum is ``data_range`` (default: 1 for floats, the dtype's maximum
            for uint8/uint16). Paths and PIL images ignore it.

        Returns
        -------
        Prediction

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            If a reference is given to a no-reference model, missing for a
            full-reference one, or its shape differs from the image's; for invalid
            images (:class:`fusion.InvalidImageError` and its subclasses, e.g.
            :class:`fusion.ImageTooSmallError`); if the model has no backbone and a
            quality map is asked for; :class:`fusion.NonFiniteFeatureError` if a feature
            value is not finite.
        OSError
            If a path cannot be read (:class:`fusion.ImageReadError`).
        """
        self._check_fitted()
        dist, ref = self._load(image, reference, data_range)
        values = self._flat(run_extractors(self.all_extractors, dist, ref, names=_NAMES))
        qmap = self._quality_map(dist, ref) if quality_map else None
        scores, intervals, gated = self._scores(self._matrix([values]))
        return self._assemble(scores[0], intervals[0], gated[0], values, qmap,
                              self._diagnose([values])[0])

    def predict_batch(self, images: Sequence[ImageInput],
                      references: Sequence[ImageInput] | None = None) -> list[Prediction]:
        """Score several images (or pairs); one stacker call for the batch.

        Raises
        ------
        ValueError
            As :meth:`predict`, and if ``references`` and ``images`` differ in length.
        """
        if references is not None and len(references) != len(images):
            raise ValueError(f"{len(images)} images but {len(references)} references")
        rows = [self._flat(self.extract(img, None if references is None else references[i]))
                for i, img in enumerate(images)]
        return self.predict_features(rows)

    def extract(self, image: ImageInput, reference: ImageInput | None = None, *,
                skip: Collection[str] = ()) -> dict[str, dict[str, float]]:
        """Each extractor's feature values for one image (or pair), by extractor key.

        Every extractor of :attr:`all_extractors` runs: the stacker's and the diagnostics'.

        Parameters
        ----------
        image, reference : image inputs
            As for :meth:`predict`.
        skip : collection of str
            Extractor keys not to compute (e.g. those already in a feature cache).

        Raises
        ------
        ValueError
            As :meth:`predict`.
        """
        self._check_configuration()
        dist, ref = self._load(image, reference)
        return run_extractors(self.all_extractors, dist, ref, skip=skip, names=_NAMES)

    def predict_features(self, rows: Sequence[Mapping[str, float]]) -> list[Prediction]:
        """Predictions from feature values, with one stacker call for all rows.

        Each row maps feature names to values (the merged dicts of :meth:`extract`). A row
        without the features the diagnostics read (e.g. a feature table computed with
        :attr:`extractors` only, not :attr:`all_extractors`) is scored as usual, with
        ``diagnostics`` None.

        Raises
        ------
        ValueError
            If a row lacks one of :attr:`feature_names`.
        """
        self._check_fitted()
        if not rows:
            return []
        scores, intervals, gated = self._scores(self._matrix(rows))
        diagnostics = self._diagnose(rows)
        return [self._assemble(scores[i], intervals[i], gated[i], dict(row), None,
                               diagnostics[i])
                for i, row in enumerate(rows)]

    def _diagnose(self, rows: Sequence[Mapping[str, float]]) -> list[Diagnostics | None]:
        """Each row's diagnostics: None without a diagnoser, or for a row lacking its inputs."""
        found: list[Diagnostics | None] = [None] * len(rows)
        if self.diagnoser is None:
            return found
        needed = self.diagnoser.feature_names
        complete = [i for i, row in enumerate(rows) if all(n in row for n in needed)]
        for i, diagnostics in zip(complete, self.diagnoser.diagnose([rows[i] for i in complete]),
                                  strict=True):
            found[i] = diagnostics
        return found

    def predict_matrix(self, features: ArrayLike
                       ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Scores (0–100) and (low, high) intervals of a feature matrix.

        Parameters
        ----------
        features : array-like of shape (n_items, n_features)
            Columns in :attr:`feature_names` order.

        Returns
        -------
        scores : ndarray of shape (n_items,)
        intervals : ndarray of shape (n_items, 2)
        """
        self._check_fitted()
        values = np.asarray(features, dtype=np.float64)
        if values.ndim != 2 or values.shape[1] != self.n_features_in_:
            raise ValueError(f"features have shape {values.shape}, expected "
                             f"(n_items, {self.n_features_in_})")
        scores, intervals, _ = self._scores(values)
        return scores, intervals

    def _scores(self, matrix: NDArray[np.float64]) -> tuple[NDArray[np.float64],
                                                           NDArray[np.float64],
                                                           NDArray[np.float64]]:
        """Scores, intervals and gate probabilities (0 without a gate) of feature rows."""
        raw = np.asarray(self.stacker_.predict(matrix), dtype=np.float64)
        scores = np.asarray(self.interval_.predict(raw), dtype=np.float64)
        intervals = np.asarray(self.interval_.predict_interval(raw), dtype=np.float64)
        gated = np.zeros(len(scores))
        floor = self.anchor_score_
        if self.gate_ is not None and floor is not None:
            gated = np.asarray(self.gate_.predict_proba(matrix)[:, 1], dtype=np.float64)
            scores = (1 - gated) * scores + gated * floor
            intervals = (1 - gated)[:, None] * intervals + gated[:, None] * floor
        return scores, intervals, gated

    # ----------------------------------------------------------------- helpers

    def _check_fitted(self) -> None:
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, ("stacker_", "interval_"))

    def _load(self, image: ImageInput, reference: ImageInput | None,
              data_range: float | None = None) -> tuple[Image, Image | None]:
        if self.mode == "nr" and reference is not None:
            raise ValueError("this is a no-reference model: call predict(image) without "
                             "a reference, or load a full-reference model")
        if self.mode == "fr" and reference is None:
            raise ValueError("this is a full-reference model: call predict(image, reference)")
        dist, ref = load_for(self.extractors, image, reference, names=_NAMES,
                             data_range=data_range)
        if self.working_pixels is not None:
            dist = dist.reduced(self.working_pixels)
            ref = None if ref is None else ref.reduced(self.working_pixels)
        return dist, ref

    @staticmethod
    def _flat(parts: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
        return {n: v for values in parts.values() for n, v in values.items()}

    def _matrix(self, rows: Sequence[Mapping[str, float]]) -> NDArray[np.float64]:
        names = self.feature_names
        missing = [n for n in names if n not in rows[0]]
        if missing:
            raise ValueError(f"feature values lack {len(missing)} of the model's features, "
                             f"e.g. {missing[:3]}")
        return np.array([[row[n] for n in names] for row in rows], dtype=np.float64)

    def _quality_map(self, distorted: Image, reference: Image | None) -> QualityMap:
        backbone = next((e for e in self.extractors if isinstance(e, BackboneExtractor)),
                        None)
        if backbone is None:
            return self._handcrafted_map(distorted, reference)
        return self._backbone_map(backbone, distorted, reference)

    def _handcrafted_map(self, distorted: Image, reference: Image | None) -> QualityMap:
        """The stacker's score of each patch (pair) of a grid, for a model without backbone.

        Square patches of ``max(min_side, 192, ⌈longer side / 3⌉)`` pixels (at most the
        shorter side) at half-patch steps, so at most 5 × 5 of them; each is scored by
        the model itself, so the map's scale is the score's; with diagnostics, each
        patch also gets its dominant family.
        """
        height, width = distorted.shape
        size = min(max(self.min_side, 192, math.ceil(max(height, width) / 3)), height, width)

        def starts(length: int) -> list[int]:
            count = 1 + max(0, math.ceil((length - size) / (size / 2)))
            return sorted({round(i * (length - size) / max(count - 1, 1)) for i in range(count)})

        positions = np.array([(y, x) for y in starts(height) for x in starts(width)], np.intp)
        rows = [self._flat(run_extractors(self.all_extractors,
                                          distorted.crop(y, x, size, size),
                                          None if reference is None
                                          else reference.crop(y, x, size, size)))
                for y, x in positions]
        qualities = self._scores(self._matrix(rows))[0]  # as the score
        return QualityMap.from_patches(positions, qualities, size, (height, width),
                                       "handcrafted", families=self._patch_families(rows))

    def _patch_families(self, rows: Sequence[Mapping[str, float]]) -> tuple[str, ...] | None:
        diagnostics = self._diagnose(rows)
        if not diagnostics or diagnostics[0] is None:
            return None
        return tuple(d.family for d in diagnostics if d is not None)

    def _backbone_map(self, backbone: BackboneExtractor, distorted: Image,
                      reference: Image | None) -> QualityMap:
        """The backbone's patch qualities; each patch's family from the handcrafted block."""
        qmap = backbone.quality_map(distorted, reference)
        if self.diagnoser is None:
            return qmap
        read = set(self.diagnoser.feature_names)
        handcrafted = tuple(e for e in self.all_extractors
                            if not isinstance(e, BackboneExtractor)
                            and read & set(e.feature_names))
        size = qmap.patch_size
        height, width = distorted.shape
        rows = []
        for y, x in qmap.positions:
            top, left = min(int(y), max(height - size, 0)), min(int(x), max(width - size, 0))
            rows.append(self._flat(run_extractors(
                handcrafted, distorted.crop(top, left, min(size, height), min(size, width)),
                None if reference is None
                else reference.crop(top, left, min(size, height), min(size, width)))))
        return replace(qmap, patch_families=self._patch_families(rows))

    def _assemble(self, score: float, interval: NDArray[np.float64], gated: float,
                  values: dict[str, float], qmap: QualityMap | None,
                  diagnostics: Diagnostics | None) -> Prediction:
        low, high = float(interval[0]), float(interval[1])
        components: dict[str, float] = {}
        if self.gate_ is not None:
            components["destroyed_content_probability"] = float(gated)
        for extractor in self.extractors:
            if isinstance(extractor, BackboneExtractor):
                # The head's own pooled quality, on the documented 0–100 scale: a head
                # is an unbounded regressor, so inputs far from its training data can
                # give values outside it (the raw value stays in the feature vector).
                key = f"bb:{extractor.backbone_name}:q_weighted"
                components[f"{extractor.backbone_name}_quality"] = min(
                    100.0, max(0.0, 100.0 * values[key]))
                if extractor.tuned is not None:  # the quality-tuned branch's, likewise
                    tuned = values[f"bb:{extractor.backbone_name}:q_tuned"]
                    components[f"{extractor.backbone_name}_tuned_quality"] = min(
                        100.0, max(0.0, 100.0 * tuned))
            else:
                components.update({n: values[n] for n in extractor.feature_names})
        return Prediction(score=float(score), interval=(low, high),
                          coverage=float(self.interval_.coverage), mode=self.mode,
                          model=self.name, components=components, quality_map=qmap,
                          diagnostics=diagnostics)
