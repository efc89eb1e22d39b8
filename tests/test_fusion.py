"""The fusion model: calibrators, stacking with grouped CV, bundles and their refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import fusion
from calibrators import ConformalInterval, IsotonicCalibrator, NormalisedConformalInterval
from fusion.bundle import BundleError, load_bundle
from fusion.examples import example_paths
from fusion.features import FULL_REFERENCE_EXTRACTORS, full_reference_features
from fusion.model import FusionModel
from fusion.stacking import build_stacker, column_blocks, grouped_splits, learner_contributions

REPO_ROOT = Path(__file__).resolve().parents[1]


# ------------------------------------------------------------------ calibrators


def test_isotonic_calibrator_is_monotone_and_clipped(rng: np.random.Generator) -> None:
    x = rng.uniform(0, 1, 200)
    y = 120 * x**2 - 10 + rng.normal(0, 3, 200)
    cal = IsotonicCalibrator().fit(x, y)
    out = cal.predict(np.linspace(-1, 2, 50))
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 100
    # "auto" detects the decreasing relation, so outputs fall as inputs rise
    decreasing = IsotonicCalibrator().fit(-x, y).predict(np.linspace(-1, 0, 20))
    assert np.all(np.diff(decreasing) <= 0) and decreasing[0] > decreasing[-1]


@pytest.mark.parametrize("coverage", [0.8, 0.9])
def test_conformal_interval_covers_held_out_data(coverage: float,
                                                 rng: np.random.Generator) -> None:
    truth = rng.uniform(10, 90, 6000)
    predicted = truth + rng.standard_t(4, 6000) * 6  # heavy-tailed errors
    interval = ConformalInterval(coverage=coverage).fit(predicted[:1000], truth[:1000])
    bounds = interval.predict_interval(predicted[1000:])
    covered = np.mean((truth[1000:] >= bounds[:, 0]) & (truth[1000:] <= bounds[:, 1]))
    assert covered == pytest.approx(coverage, abs=0.02)
    assert interval.n_calibration_ == 1000


def test_conformal_refusals() -> None:
    with pytest.raises(ValueError, match="too few"):
        ConformalInterval(coverage=0.95).fit([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="coverage must be in"):
        ConformalInterval(coverage=1.5).fit([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="NaN"):
        ConformalInterval().fit([1, np.nan] * 10, [1, 2] * 10)


def _heteroscedastic(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Predictions on 30–70 and scores whose error grows from sd 0.5 to 5.5 with them."""
    predicted = rng.uniform(30, 70, n)
    return predicted, predicted + rng.normal(0, 0.5 + (predicted - 30) / 8)


def test_normalised_interval_holds_coverage_and_puts_width_where_the_errors_are(
        rng: np.random.Generator) -> None:
    predicted, truth = _heteroscedastic(rng, 2000)
    new_predicted, new_truth = _heteroscedastic(rng, 20000)
    normalised = NormalisedConformalInterval(coverage=0.9).fit(predicted, truth)
    constant = ConformalInterval(coverage=0.9).fit(predicted, truth)
    low, high = normalised.predict_interval(new_predicted).T
    covered = (new_truth >= low) & (new_truth <= high)
    assert np.mean(covered) == pytest.approx(0.9, abs=0.015)
    # coverage holds at each level, not only on average (the constant interval
    # over-covers the precise low end and under-covers the noisy high end)
    low_end, high_end = new_predicted < 40, new_predicted > 60
    assert np.mean(covered[low_end]) == pytest.approx(0.9, abs=0.04)
    assert np.mean(covered[high_end]) == pytest.approx(0.9, abs=0.04)
    c_low, c_high = constant.predict_interval(new_predicted).T
    constant_covered = (new_truth >= c_low) & (new_truth <= c_high)
    assert np.mean(constant_covered[low_end]) > 0.99 and np.mean(constant_covered[high_end]) < 0.85
    # the same coverage for less width on average
    assert np.mean(high - low) / 2 < 0.95 * constant.half_width_
    assert normalised.half_width_ == pytest.approx(np.mean(normalised.half_widths(predicted)))
    assert np.all(np.diff(normalised.half_widths([35, 50, 65])) > 0)


def test_normalised_interval_refusals_and_clipping(rng: np.random.Generator) -> None:
    predicted, truth = _heteroscedastic(rng, 200)
    with pytest.raises(ValueError, match="too few"):
        NormalisedConformalInterval(neighbours=80).fit(predicted[:100], truth[:100])
    with pytest.raises(ValueError, match="neighbours must be"):
        NormalisedConformalInterval(neighbours=1).fit(predicted, truth)
    with pytest.raises(ValueError, match="finite"):
        NormalisedConformalInterval().fit(predicted, np.r_[truth[:-1], np.nan])
    with pytest.raises(ValueError, match="NaN"):
        NormalisedConformalInterval().fit(np.r_[predicted[:-1], np.nan], truth)
    fitted = NormalisedConformalInterval().fit(predicted, truth)
    bounds = fitted.predict_interval([-20, 50, 130])
    assert bounds.min() >= 0 and bounds.max() <= 100 and bounds[1, 0] < 50 < bounds[1, 1]


# ------------------------------------------------------------------ stacking


def _table(rng: np.random.Generator, n_contents: int = 40, per: int = 5
           ) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    names = ["bb:x:q_weighted", "bb:x:q_mean", "bb:x:q_std", "bb:x:f0", "bb:x:f1", "psnr",
             "ssim"]
    groups = np.repeat([f"r{i}" for i in range(n_contents)], per)
    latent = rng.uniform(0, 1, len(groups))
    values = np.column_stack([latent + rng.normal(0, s, len(groups))
                              for s in (0.1, 0.1, 0.3, 0.2, 0.5, 0.15, 0.2)])
    return names, values, 100 * latent, groups


def test_stacker_blocks_grouped_cv_and_weights(rng: np.random.Generator) -> None:
    names, values, scores, groups = _table(rng)
    blocks = column_blocks(names)
    assert blocks["backbone"] == [3, 4] and blocks["handcrafted"] == [5, 6]
    assert blocks["backbone_summary"] == [0, 1, 2]  # head outputs: not stacked
    splits = grouped_splits(groups, scores)
    for train, test in splits:
        assert set(groups[train]).isdisjoint(groups[test])
    stacker = build_stacker(names, splits).fit(values, scores)
    weights = learner_contributions(stacker)
    assert set(weights) == {"backbone_ridge", "handcrafted_svr", "handcrafted_gbm",
                            "all_ridge"}
    assert all(w >= 0 for w in weights.values())
    prediction = stacker.predict(values)
    assert np.corrcoef(prediction, scores)[0, 1] > 0.9


def test_monotone_stacker_never_inverts_a_feature(rng: np.random.Generator) -> None:
    from fusion.stacking import build_monotone_stacker

    names, values, scores, groups = _table(rng)
    values[:, 6] = -values[:, 6]  # make "ssim" a lower-is-better column
    directions = [0, 0, 0, 0, 0, 1, -1]  # backbone columns have no known direction
    stacker = build_monotone_stacker(names, directions, grouped_splits(groups, scores))
    stacker.fit(values, scores)
    assert set(learner_contributions(stacker)) == {"monotone_additive_gbm", "aligned_linear"}
    base = values[rng.choice(len(values), 50)]
    start = stacker.predict(base)
    for column, direction in enumerate(directions):
        for step in (0.05, 0.5, 5.0):  # far outside the training range too
            moved = base.copy()
            moved[:, column] += step
            change = stacker.predict(moved) - start
            if direction == 0:
                np.testing.assert_allclose(change, 0.0, atol=1e-9)
            else:
                assert np.all(direction * change >= -1e-9), (names[column], step)
    with pytest.raises(ValueError, match="at least one feature with a direction"):
        build_monotone_stacker(names, [0] * 7, 3)
    with pytest.raises(ValueError, match="7 directions for 6 features"):
        build_monotone_stacker(names[:6], directions, 3)


def test_monotone_fusion_model_survives_a_bundle(small_fr_model: FusionModel,
                                                  tmp_path: Path) -> None:
    from sklearn.base import clone

    x = np.asarray([list(fusion.full_reference_features(*fusion.example_pair(n)).values())
                    for n in fusion.EXAMPLE_NAMES])
    model = clone(small_fr_model).set_params(monotone=True)
    rows = np.repeat(x, 8, axis=0) + np.random.default_rng(0).normal(0, 1e-3, (24, x.shape[1]))
    targets = np.tile(np.linspace(20, 90, 8), 3)
    model.fit(rows, targets, groups=np.repeat(["a", "b", "c"], 8))
    assert model.feature_directions == (-1, 1, 1, 1, -1, 1, 1, 1, 1)
    fusion.save(model, tmp_path / "bundle")
    loaded = fusion.load(tmp_path / "bundle")
    assert loaded.monotone and loaded.metadata["monotone"] is True
    np.testing.assert_allclose(loaded.predict_matrix(x)[0], model.predict_matrix(x)[0])


# ------------------------------------------------------------------ the estimator


def test_fusion_model_follows_the_estimator_pattern(small_fr_model: FusionModel) -> None:
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError

    # __init__ stores its arguments only; clone gives an unfitted twin with equal params
    unfitted = clone(small_fr_model)
    assert unfitted.get_params() == small_fr_model.get_params()
    assert not hasattr(unfitted, "stacker_") and not hasattr(unfitted, "interval_")
    reference, distorted = fusion.example_pair()
    with pytest.raises(NotFittedError):
        unfitted.predict(distorted, reference)
    with pytest.raises(NotFittedError):
        fusion.save(unfitted, Path("never-written"))
    assert not Path("never-written").exists()
    assert unfitted.set_params(seed=3).seed == 3
    with pytest.raises(ValueError, match="unknown parameter"):
        unfitted.set_params(colour="red")
    # fitted attributes end with "_"; fit returns the model itself
    assert small_fr_model.n_features_in_ == len(small_fr_model.feature_names) == 9
    assert FusionModel("nr", FULL_REFERENCE_EXTRACTORS).get_params()["mode"] == "nr"


def _feature_rows(seed: int, contents: int = 8, per_content: int = 6
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy rows whose score depends on the features: (values, scores, groups)."""
    rng = np.random.default_rng(seed)
    width = len(FusionModel("fr", FULL_REFERENCE_EXTRACTORS).feature_names)
    values = rng.random((contents * per_content, width))
    scores = 100 * values[:, :3].mean(axis=1) + rng.normal(0, 5, len(values))
    groups = np.repeat([f"c{i}" for i in range(contents)], per_content)
    return values, scores, groups


def test_cross_calibration_uses_out_of_fold_predictions_of_every_item() -> None:
    from calibrators import ConformalInterval
    from fusion.stacking import build_stacker, grouped_splits

    values, scores, groups = _feature_rows(0)
    model = FusionModel("fr", FULL_REFERENCE_EXTRACTORS, seed=2).fit(values, scores,
                                                                     groups=groups)
    assert model.calibration == "cross"
    assert model.interval_.n_calibration_ == len(scores)
    # the same interval from refits that never saw the items they predict
    names = list(model.feature_names)
    held_apart = np.empty(len(scores))
    for train, test in grouped_splits(groups, scores, seed=2):
        stacker = build_stacker(names, grouped_splits(groups[train], scores[train], seed=2),
                                seed=2).fit(values[train], scores[train])
        held_apart[test] = stacker.predict(values[test])
    expected = ConformalInterval(coverage=0.9).fit(held_apart, scores)
    assert model.interval_.half_width_ == pytest.approx(expected.half_width_)
    # in-sample residuals would be smaller: the stacker of the model saw every item
    in_sample = ConformalInterval(coverage=0.9).fit(model.stacker_.predict(values), scores)
    assert in_sample.half_width_ < model.interval_.half_width_


def test_interval_by_score_is_fitted_saved_and_loaded(tmp_path: Path) -> None:
    from calibrators import NormalisedConformalInterval

    values, scores, groups = _feature_rows(3, contents=30)  # 180 calibration items
    model = FusionModel("fr", FULL_REFERENCE_EXTRACTORS, interval_width="by_score").fit(
        values, scores, groups=groups)
    assert isinstance(model.interval_, NormalisedConformalInterval)
    assert model.interval_.n_calibration_ == len(scores)
    reference, distorted = fusion.example_pair("chelsea_noise")
    expected = model.predict(distorted, reference)
    fusion.save(model, tmp_path / "bundle")
    loaded = fusion.load(tmp_path / "bundle")
    assert loaded.interval_width == "by_score"
    assert loaded.metadata is not None
    assert loaded.metadata["score"]["interval"] == "cross-conformal, width by predicted score"
    again = loaded.predict(distorted, reference)
    assert again.score == expected.score and again.interval == expected.interval
    # the width depends on the score: two rows with other predictions, other widths
    _, bounds = model.predict_matrix(values[:40])
    assert np.ptp(bounds[:, 1] - bounds[:, 0]) > 0.01
    with pytest.raises(ValueError, match="interval_width must be one of"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS, interval_width="wide").fit(
            values, scores, groups=groups)


def test_split_calibration_keeps_a_share_of_the_contents_apart() -> None:
    values, scores, groups = _feature_rows(1, contents=10)
    model = FusionModel("fr", FULL_REFERENCE_EXTRACTORS, calibration="split",
                        calibration_fraction=0.3).fit(values, scores, groups=groups)
    assert model.interval_.n_calibration_ == 3 * 6  # three of ten contents, six items each
    with pytest.raises(ValueError, match="calibration must be one of"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS, calibration="jackknife").fit(
            values, scores, groups=groups)
    # two contents cannot give a held-apart calibration and an internal cross-validation
    two = np.isin(groups, ["c0", "c1"])
    for calibration in ("cross", "split"):
        with pytest.raises(ValueError, match=r"at least 3 contents .* got 2"):
            FusionModel("fr", FULL_REFERENCE_EXTRACTORS, calibration=calibration).fit(
                values[two], scores[two], groups=groups[two])


def test_fit_refuses_bad_input(small_fr_model: FusionModel) -> None:
    rng = np.random.default_rng(0)
    width = len(FusionModel("fr", FULL_REFERENCE_EXTRACTORS).feature_names)
    values, scores = rng.random((30, width)), rng.random(30) * 100
    groups = np.repeat(np.arange(10), 3).astype(str)
    with pytest.raises(ValueError, match="do not work in mode 'nr'"):
        FusionModel("nr", FULL_REFERENCE_EXTRACTORS).fit(values, scores, groups=groups)
    with pytest.raises(ValueError, match="mode must be"):
        FusionModel("xr", FULL_REFERENCE_EXTRACTORS).fit(values, scores, groups=groups)
    with pytest.raises(ValueError, match=rf"expected \(30, {width}\)"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS).fit(values[:, :5], scores, groups=groups)
    with pytest.raises(ValueError, match="groups have shape"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS).fit(values, scores, groups=groups[:5])
    values[3, 2] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS).fit(values, scores, groups=groups)
    with pytest.raises(ValueError, match=rf"expected \(n_items, {width}\)"):
        small_fr_model.predict_matrix(np.zeros((2, 5)))


def test_predict_matrix_equals_predict(small_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair("coffee_jpeg")
    one = small_fr_model.predict(distorted, reference)
    row = [list(full_reference_features(reference, distorted).values())]
    scores, intervals = small_fr_model.predict_matrix(row)
    assert scores[0] == pytest.approx(one.score, abs=1e-12)
    assert tuple(intervals[0]) == pytest.approx(one.interval, abs=1e-12)


def test_fitted_model_predicts_with_interval_and_components(small_fr_model: FusionModel
                                                            ) -> None:
    reference, distorted = fusion.example_pair("astronaut_blur")
    result = small_fr_model.predict(distorted, reference)
    assert 0 <= result.score <= 100 and result.mode == "fr"
    assert result.interval[0] <= result.score <= result.interval[1]
    assert set(result.components) == set(small_fr_model.feature_names)
    assert result.components["psnr"] == pytest.approx(fusion.psnr(reference, distorted))
    assert small_fr_model.predict(reference, reference).score > result.score
    batch = small_fr_model.predict_batch([distorted, reference], [reference, reference])
    assert batch[0].score == pytest.approx(result.score)
    assert json.loads(json.dumps(result.to_dict()))["mode"] == "fr"


def test_model_refuses_the_wrong_call(small_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair()
    with pytest.raises(ValueError, match="full-reference model: call predict"):
        small_fr_model.predict(distorted)
    with pytest.raises(ValueError, match="reference has shape"):
        small_fr_model.predict(distorted[:200], reference)
    # a model without backbone maps its own score of each patch pair
    mapped = small_fr_model.predict(distorted, reference, quality_map=True).quality_map
    assert mapped is not None and mapped.backbone == "handcrafted"
    tiny = small_fr_model.min_side  # one patch: the whole (smallest accepted) image
    whole = small_fr_model.predict(distorted[:tiny, :tiny], reference[:tiny, :tiny],
                                   quality_map=True)
    assert whole.quality_map is not None and len(whole.quality_map.positions) == 1
    assert whole.quality_map.patch_qualities[0] == pytest.approx(
        float(np.clip(whole.score, 0, 100)), abs=1e-4)


# ------------------------------------------------------------------ bundles


def _resum(folder: Path) -> None:
    lines = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        lines.append(f"{digest}  {file.relative_to(folder).as_posix()}\n")
    (folder / "SHA256SUMS").write_text("".join(lines))


def test_bundle_round_trip_gives_identical_predictions(small_fr_model: FusionModel,
                                                       saved_fr_bundle: Path,
                                                       tmp_path: Path) -> None:
    reference, distorted = fusion.example_pair("chelsea_noise")
    expected = small_fr_model.predict(distorted, reference)
    fusion.save(small_fr_model, tmp_path / "bundle.zip",
                training={"heldout_metrics": {"note": "test"}})
    for target in (saved_fr_bundle, tmp_path / "bundle.zip"):
        loaded = fusion.load(target)
        again = loaded.predict(distorted, reference)
        assert again.score == expected.score and again.interval == expected.interval
        assert loaded.metadata is not None
        assert loaded.metadata["heldout_metrics"] == {"note": "test"}
        assert loaded.metadata["score"]["higher_is_better"] is True
        assert loaded.metadata["score"]["interval"] == "cross-conformal, constant width"


@pytest.mark.parametrize("damage, message", [
    ("tamper", "does not match its SHA-256"),
    ("missing", "missing file stacker.skops"),
    ("newer", "newer than this library"),
    ("unknown_feature", "does not have"),
    ("names", "do not match its extractors"),
    ("not_bundle", "neither a bundle directory nor a zip"),
])
def test_bundle_refusals(bundle_copy: Path, tmp_path: Path, damage: str, message: str) -> None:
    folder = bundle_copy
    metadata = json.loads((folder / "metadata.json").read_text())
    if damage == "tamper":
        data = bytearray((folder / "stacker.skops").read_bytes())
        data[len(data) // 2] ^= 0x01
        (folder / "stacker.skops").write_bytes(bytes(data))
    elif damage == "missing":
        (folder / "stacker.skops").unlink()
    elif damage in ("newer", "unknown_feature", "names"):
        if damage == "newer":
            metadata["format_version"] = 99
        elif damage == "unknown_feature":
            metadata["extractors"][0]["key"] = "psnr_V9"
        else:
            metadata["feature_names"] = metadata["feature_names"][::-1]
        (folder / "metadata.json").write_text(json.dumps(metadata))
        _resum(folder)
    else:
        folder = tmp_path / "plain.txt"
        folder.write_text("hello")
    with pytest.raises(BundleError, match=message):
        load_bundle(folder)


def _edit_metadata(folder: Path, change: object) -> None:
    metadata = json.loads((folder / "metadata.json").read_text())
    change(metadata)  # type: ignore[operator]
    (folder / "metadata.json").write_text(json.dumps(metadata))
    _resum(folder)


def _set(path: tuple[object, ...], value: object) -> object:
    def change(metadata: dict[str, object]) -> None:
        target: object = metadata
        for key in path[:-1]:
            target = target[key]  # type: ignore[index]
        if value is _DELETE:
            del target[path[-1]]  # type: ignore[attr-defined]
        else:
            target[path[-1]] = value  # type: ignore[index]
    return change


_DELETE = object()


@pytest.mark.parametrize("case, edit, message", [
    ("invalid_json", "not json {", "invalid JSON"),
    ("not_object", "[1, 2]", "must hold a JSON object"),
    ("no_mode", _set(("mode",), _DELETE), "field 'mode' is missing"),
    ("mode_type", _set(("mode",), 3), "field 'mode' must be a string"),
    ("mode_value", _set(("mode",), "xr"), "field 'mode' must be 'nr' or 'fr'"),
    ("version_type", _set(("format_version",), "1"), "'format_version' must be an integer"),
    ("extractors_type", _set(("extractors",), {}), "'extractors' must be a list"),
    ("entry_type", _set(("extractors", 0), "psnr_V1"), r"'extractors\[0\]' must be an object"),
    ("no_key", _set(("extractors", 0, "key"), _DELETE), r"extractors\[0\]\.'key' is missing"),
    ("kind_value", _set(("extractors", 0, "kind"), "magic"), "must be 'backbone' or"),
    ("names_type", _set(("feature_names",), [1, 2]), "list of strings"),
    ("wrong_mode", _set(("mode",), "nr"), "do not work in mode 'nr'"),
    ("format", _set(("format",), "zip"), "not a fusion-iqa bundle"),
])
def test_malformed_metadata_is_a_bundle_error_naming_file_and_field(
        bundle_copy: Path, case: str, edit: object, message: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    from fusion.cli import main

    if isinstance(edit, str):
        (bundle_copy / "metadata.json").write_text(edit)
        _resum(bundle_copy)
    else:
        _edit_metadata(bundle_copy, edit)
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bundle_copy)
    assert "metadata.json" in str(info.value)
    reference, distorted = example_paths("coffee_jpeg")
    code = main(["score", str(distorted), str(reference), "--model", str(bundle_copy)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "metadata.json" in err


@pytest.mark.parametrize("line, message", [
    ("{digest}  ../outside.txt", "points outside the bundle"),
    ("{digest}  /etc/passwd", "points outside the bundle"),
    ("nothex  metadata.json", "is not '<64 hex digits>  <path>'"),
    ("{digest} metadata.json", "is not '<64 hex digits>  <path>'"),
])
def test_malformed_checksums_are_refused_before_any_file_is_read(
        bundle_copy: Path, line: str, message: str) -> None:
    sums = bundle_copy / "SHA256SUMS"
    sums.write_text(sums.read_text() + line.format(digest="0" * 64) + "\n")
    with pytest.raises(BundleError, match=message) as info:
        load_bundle(bundle_copy)
    assert "SHA256SUMS" in str(info.value)


# ------------------------------------------------------------------ the embedded defaults


@pytest.mark.parametrize("mode", ["nr", "fr"])
def test_default_models_predict(mode: str) -> None:
    # The default bundles are part of the package: a missing one is a failure, not a skip.
    reference, distorted = fusion.example_pair("coffee_jpeg")
    result = fusion.predict(distorted) if mode == "nr" else fusion.predict(distorted, reference)
    assert 0 <= result.score <= 100 and result.mode == mode
    assert result.interval[0] <= result.score <= result.interval[1]
    assert result.model.startswith(f"default_{mode}@")
    if mode == "nr":
        assert any(k.endswith("_quality") for k in result.components)
        with pytest.raises(ValueError, match="no-reference model"):
            fusion.api.default_model("nr").predict(distorted, reference)
        model = fusion.api.default_model("nr")
        backbone = model.extractors[0]
        calls = []
        original = backbone.runtime.image_vector
        backbone.runtime.image_vector = lambda *a, **k: calls.append(1) or original(*a, **k)
        try:
            mapped = model.predict(distorted, quality_map=True).quality_map
        finally:
            backbone.runtime.image_vector = original
        assert len(calls) == 1  # features and map share one backbone pass
        assert mapped is not None and mapped.values.shape == distorted.shape[:2]
        assert mapped.overlay(distorted).size == (320, 240)
    else:
        clean = fusion.predict(reference, reference).score
        assert clean > result.score  # the pristine reference against itself is better
        model = fusion.api.default_model("fr")
        assert model.monotone and {"haarpsi", "fsimc", "ms_ssim"} <= set(result.components)
        # no backbone: the map is the model's own score of each patch pair
        mapped = model.predict(distorted, reference, quality_map=True).quality_map
        assert mapped is not None and mapped.backbone == "handcrafted"
        assert mapped.values.shape == distorted.shape[:2] and not np.isnan(mapped.values).any()
        assert np.all((mapped.patch_qualities >= 0) & (mapped.patch_qualities <= 100))
        own = model.predict(reference, reference, quality_map=True).quality_map
        assert own is not None and own.values.mean() > mapped.values.mean()


def test_presets_accurate_and_fast() -> None:
    reference, distorted = fusion.example_pair("coffee_jpeg")
    accurate = fusion.api.default_model("nr")
    fast = fusion.api.default_model("nr", preset="fast")
    assert accurate is fusion.api.default_model("nr", preset="accurate")
    names = [e.backbone_name for e in accurate.extractors if hasattr(e, "backbone_name")]
    assert names == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"]
    fast_backbones = [e for e in fast.extractors if hasattr(e, "backbone_name")]
    assert [e.max_patches for e in fast_backbones] == [4]
    assert "pseudo_reference" not in {e.name for e in fast.extractors}
    assert fast.diagnoser_ is None and accurate.diagnoser_ is not None
    result = fusion.predict(distorted, preset="fast")
    assert result.model.startswith("fast_nr@") and 0 <= result.score <= 100
    assert result.diagnostics is None
    assert fusion.load("fast").name.startswith("fast_nr@")
    assert fusion.load("accurate").name.startswith("default_nr@")
    # with a reference both presets use the one full-reference model
    assert fusion.api.default_model("fr", preset="fast") is fusion.api.default_model("fr")
    assert fusion.predict(distorted, reference, preset="fast").model.startswith("default_fr@")
    with pytest.raises(ValueError, match="preset must be one of 'accurate', 'fast'"):
        fusion.predict(distorted, preset="fastest")


# ------------------------------------------------------------------ the anchor gate


def test_the_gate_sends_destroyed_content_to_the_floor(tmp_path: Path) -> None:
    from fusion.distortions import distort
    from fusion.features import NO_REFERENCE_EXTRACTORS, no_reference_features
    from fusion.training.anchors import anchor_images

    rows, scores, groups, anchors = [], [], [], []
    for index, name in enumerate(fusion.EXAMPLE_NAMES):
        photo = fusion.example_pair(name)[0]
        for kind in ("gaussian_blur", "jpeg", "contrast_decrease"):
            for level in (1, 2, 3, 4, 5):
                image = distort(photo, kind, level, image_index=index)
                rows.append(list(no_reference_features(image).values()))
                scores.append(100 * (1 - level / 6))
                groups.append(name)
        if index < 2:  # anchors of two photographs; the third's are unseen
            anchors += [list(no_reference_features(a).values())
                        for a in anchor_images(photo, seed=index).values()]
    model = FusionModel("nr", NO_REFERENCE_EXTRACTORS, coverage=0.5).fit(
        np.array(rows), np.array(scores), groups=np.array(groups), anchors=np.array(anchors),
        anchor_score=2.0)
    assert model.gate_ is not None and model.anchor_score_ == 2.0
    unseen = anchor_images(fusion.example_pair("chelsea_noise")[0], seed=9)
    for kind in ("flat", "uniform_noise", "bilevel"):
        result = model.predict(unseen[kind])
        assert result.components["destroyed_content_probability"] > 0.5
        assert result.score < 30 and result.interval[0] <= result.score <= result.interval[1]
    photo = fusion.example_pair("chelsea_noise")[0]
    assert model.predict(photo).components["destroyed_content_probability"] < 0.5
    fusion.save(model, tmp_path / "gated")
    assert (tmp_path / "gated" / "gate.skops").is_file()
    # format ≥ 2: a reader of format 1 would drop the gate, so it must refuse the bundle
    from fusion.bundle import BUNDLE_FORMAT_VERSION

    assert BUNDLE_FORMAT_VERSION >= 2
    assert json.loads((tmp_path / "gated" / "metadata.json").read_text())[
        "format_version"] == BUNDLE_FORMAT_VERSION
    again = fusion.load(tmp_path / "gated")
    assert again.predict(unseen["flat"]).score == model.predict(unseen["flat"]).score
    with pytest.raises(ValueError, match="anchors are for no-reference models"):
        FusionModel("fr", FULL_REFERENCE_EXTRACTORS).fit(
            np.zeros((12, 6)) + np.arange(12)[:, None], np.arange(12.0) * 8,
            groups=np.repeat(np.array(["a", "b", "c", "d"]), 3), anchors=np.zeros((2, 6)))
