"""Diagnostics: distortion families, change cues, the classifier, bundles and every surface."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import fusion
from fusion.diagnostics import (
    CLASSIC_FAMILIES,
    FAMILY_NAMES,
    Diagnoser,
    Diagnostics,
    family_of,
)
from fusion.distortions import DISTORTIONS, KADID_DISTORTIONS, distort
from fusion.features import FULL_REFERENCE_EXTRACTORS
from fusion.features.change import CHANGE_FEATURE_NAMES, ChangeExtractor
from fusion.kadid import FAMILIES
from fusion.model import FusionModel
from fusion.training.diagnostics import (
    diagnostics_report,
    expected_calibration_error,
    fit_diagnoser,
)

#: A few types of every family of both generators, for the small training set.
SMALL_SET = ("gaussian_blur", "kadid_lens_blur", "gaussian_noise", "kadid_white_noise_color",
             "jpeg", "kadid_jpeg2000", "darken", "kadid_brighten", "saturation_decrease",
             "kadid_color_shift", "pixelate", "kadid_jitter")
FR_EXTRACTORS = (*FULL_REFERENCE_EXTRACTORS, ChangeExtractor())


def _references() -> list[np.ndarray]:
    """Six photographs: the examples' references and three scikit-image ones."""
    import skimage.data

    images = [np.asarray(fusion.load_image(fusion.example_pair(n)[0]).rgb * 255 + 0.5,
                         dtype=np.uint8) for n in fusion.EXAMPLE_NAMES]
    images += [skimage.data.rocket(), skimage.data.immunohistochemistry()[:300, :300],
               np.asarray(skimage.data.retina()[::4, ::4])]
    return images


@pytest.fixture(scope="session")
def small_diagnostic_set() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FR features, family labels and content ids of a small synthetic set (levels 3, 5)."""
    from fusion.features import run_extractors

    rows, labels, contents = [], [], []
    for index, reference in enumerate(_references()):
        items = [(reference, "none")] + [(distort(reference, kind, level, image_index=index),
                                          kind) for kind in SMALL_SET for level in (3, 5)]
        for distorted, kind in items:
            parts = run_extractors(FR_EXTRACTORS, distorted, reference)
            rows.append([v for part in parts.values() for v in part.values()])
            labels.append(FAMILY_NAMES.index(family_of(kind)))
            contents.append(f"ref{index}")
    return np.array(rows), np.array(labels), np.array(contents)


@pytest.fixture(scope="session")
def small_diagnoser(small_diagnostic_set: tuple[np.ndarray, np.ndarray, np.ndarray]
                    ) -> Diagnoser:
    values, labels, contents = small_diagnostic_set
    names = [n for e in FR_EXTRACTORS for n in e.feature_names]
    return fit_diagnoser(values, names, labels, contents, extractors=(ChangeExtractor(),))


@pytest.fixture(scope="session")
def diagnosed_fr_model(small_fr_model: FusionModel, small_diagnoser: Diagnoser
                       ) -> FusionModel:
    """``small_fr_model``'s stacker with the small diagnostics (a new model object)."""
    return FusionModel.from_fitted("fr", small_fr_model.extractors, small_fr_model.stacker_,
                                   small_fr_model.interval_, name="small_fr_diagnosed",
                                   diagnoser=small_diagnoser)


# ------------------------------------------------------------------ families


def test_every_type_of_both_generators_has_a_family() -> None:
    for kind in (*DISTORTIONS, *KADID_DISTORTIONS):
        assert family_of(kind) in FAMILIES, kind
    assert set(CLASSIC_FAMILIES) == set(DISTORTIONS)
    assert family_of("none") == family_of(None) == "none"
    assert (*FAMILIES, "none") == FAMILY_NAMES


def test_every_family_is_made_by_both_generators() -> None:
    classic = {family_of(k) for k in DISTORTIONS}
    kadid = {family_of(k) for k in KADID_DISTORTIONS}
    assert kadid == set(FAMILIES)
    assert classic == set(FAMILIES)


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown distortion type 'smudge'"):
        family_of("smudge")


# ------------------------------------------------------------------ change cues


def _cues(reference: np.ndarray, distorted: np.ndarray) -> dict[str, float]:
    return ChangeExtractor().compute(distorted, reference)


def test_identical_pair_shows_no_change(textured_uint8: np.ndarray) -> None:
    values = _cues(textured_uint8, textured_uint8)
    assert list(values) == list(CHANGE_FEATURE_NAMES)
    for name in ("luma_shift", "contrast_change", "detail_change", "chroma_change",
                 "chroma_shift", "chroma_error_share", "histogram_change", "error_blockiness"):
        assert values[name] == pytest.approx(0.0, abs=1e-9), name


def test_change_cues_describe_the_distortion(textured_uint8: np.ndarray) -> None:
    ref = textured_uint8
    blur = _cues(ref, distort(ref, "gaussian_blur", 4))
    noise = _cues(ref, distort(ref, "gaussian_noise", 4))
    dark = _cues(ref, distort(ref, "darken", 4))
    grey = _cues(ref, distort(ref, "saturation_decrease", 5))
    jpeg = _cues(ref, distort(ref, "jpeg", 5))
    assert blur["detail_change"] < -0.3 < 0.3 < noise["detail_change"]
    assert dark["error_smoothness"] > noise["error_smoothness"] + 0.5
    assert dark["luma_shift"] < -0.1 and dark["error_luma_correlation"] < -0.9
    assert grey["chroma_change"] < -0.5 and grey["chroma_error_share"] > 0.9
    assert jpeg["error_blockiness"] > max(blur["error_blockiness"], noise["error_blockiness"])


def test_change_cues_of_a_grey_pair_have_no_chroma(textured_uint8: np.ndarray) -> None:
    grey = textured_uint8[:, :, 0]
    values = _cues(grey, distort(np.repeat(grey[:, :, None], 3, axis=2), "darken", 3)[:, :, 0])
    assert values["chroma_change"] == 0.0 and values["chroma_error_share"] == 0.0
    assert values["luma_shift"] < 0


def test_change_cues_need_a_reference(textured_uint8: np.ndarray) -> None:
    with pytest.raises(ValueError, match="need a reference"):
        ChangeExtractor().compute(textured_uint8)


# ------------------------------------------------------------------ measures


def test_expected_calibration_error_by_hand() -> None:
    labels = np.array([0, 1, 0, 1])
    certain = np.eye(2)[labels]
    assert expected_calibration_error(certain, labels) == 0.0
    # Two bins of half the items each: {0.9, 0.9} both right (|1 − 0.9| = 0.1) and
    # {0.6, 0.6} one right (|0.5 − 0.6| = 0.1): ECE = ½·0.1 + ½·0.1.
    proba = np.array([[0.9, 0.1], [0.1, 0.9], [0.6, 0.4], [0.6, 0.4]])
    assert expected_calibration_error(proba, labels) == pytest.approx(0.1)


def test_report_counts_and_recalls() -> None:
    none = FAMILY_NAMES.index("none")
    labels = np.array([0, 0, 1, none])
    levels = np.array([1, 3, 1, 0])
    proba = np.eye(len(FAMILY_NAMES))[[0, 1, 1, none]]
    report = diagnostics_report(proba, labels, levels)
    assert report["all"]["top1"] == 0.75 and report["all"]["n"] == 4
    assert report["all"]["recall"]["blur"] == 0.5 and report["all"]["recall"]["noise"] == 1.0
    assert report["all"]["recall"]["colour"] is None
    assert report["level_1"]["n"] == 3 and report["level_1"]["top1"] == 1.0
    assert report["level_2_plus"]["n"] == 2 and report["level_2_plus"]["top1"] == 0.5
    assert np.sum(report["all"]["confusion"]) == 4


# ------------------------------------------------------------------ the classifier


def test_small_diagnoser_names_families_of_unseen_contents(
        small_diagnostic_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    """Trained on four photographs, tested on two others: far above chance (1/7)."""
    values, labels, contents = small_diagnostic_set
    names = [f"f{k}" for k in range(values.shape[1])]
    test = np.isin(contents, ["ref1", "ref4"])
    diagnoser = fit_diagnoser(values[~test], names, labels[~test], contents[~test])
    proba = diagnoser.probabilities_of(values[test])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert np.mean(proba.argmax(axis=1) == labels[test]) >= 0.7


def test_diagnoser_refuses_rows_without_its_features(small_diagnoser: Diagnoser) -> None:
    with pytest.raises(ValueError, match="feature"):
        small_diagnoser.predict_proba([{"psnr": 30.0}])
    with pytest.raises(ValueError, match="expected"):
        small_diagnoser.probabilities_of(np.zeros((2, 3)))
    assert small_diagnoser.diagnose([]) == []


def test_fit_diagnoser_checks_its_input() -> None:
    with pytest.raises(ValueError, match="expected"):
        fit_diagnoser(np.zeros((4, 2)), ["a"], np.zeros(4, int), np.arange(4))
    with pytest.raises(ValueError, match="finite"):
        fit_diagnoser(np.full((4, 1), np.nan), ["a"], np.zeros(4, int), np.arange(4))


def test_diagnostics_from_probabilities() -> None:
    row = np.array([0.1, 0.6, 0.1, 0.05, 0.05, 0.05, 0.05])
    diagnostics = Diagnostics.from_probabilities(row)
    assert diagnostics.family == "noise" and diagnostics.probability == 0.6
    assert json.loads(json.dumps(diagnostics.to_dict()))["probabilities"]["blur"] == 0.1


# ------------------------------------------------------------------ the model


def test_prediction_carries_diagnostics(diagnosed_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair("astronaut_blur")
    result = diagnosed_fr_model.predict(distorted, reference)
    assert result.diagnostics is not None
    assert set(result.diagnostics.probabilities) == set(FAMILY_NAMES)
    assert sum(result.diagnostics.probabilities.values()) == pytest.approx(1.0)
    assert result.to_dict()["diagnostics"]["family"] == result.diagnostics.family
    assert not set(CHANGE_FEATURE_NAMES) & set(result.components)  # cues are not components
    identical = diagnosed_fr_model.predict(reference, reference)
    assert identical.diagnostics is not None and identical.diagnostics.family == "none"


def test_diagnostics_do_not_change_the_score(small_fr_model: FusionModel,
                                             diagnosed_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair("coffee_jpeg")
    assert small_fr_model.predict(distorted, reference).diagnostics is None
    assert (diagnosed_fr_model.predict(distorted, reference).score
            == small_fr_model.predict(distorted, reference).score)


def test_batch_predictions_match_single_ones(diagnosed_fr_model: FusionModel) -> None:
    pairs = [fusion.example_pair(n) for n in fusion.EXAMPLE_NAMES]
    batch = diagnosed_fr_model.predict_batch([d for _, d in pairs], [r for r, _ in pairs])
    for (reference, distorted), result in zip(pairs, batch, strict=True):
        single = diagnosed_fr_model.predict(distorted, reference)
        assert result.diagnostics is not None and single.diagnostics is not None
        assert result.diagnostics.family == single.diagnostics.family
        np.testing.assert_allclose(list(result.diagnostics.probabilities.values()),
                                   list(single.diagnostics.probabilities.values()),
                                   rtol=1e-12, atol=1e-15)


def test_set_diagnoser_checks_features_and_mode(small_fr_model: FusionModel,
                                                small_diagnoser: Diagnoser) -> None:
    model = FusionModel.from_fitted("fr", small_fr_model.extractors, small_fr_model.stacker_,
                                    small_fr_model.interval_)
    lacking = Diagnoser(small_diagnoser.feature_names, small_diagnoser.classifier)
    with pytest.raises(ValueError, match="does not compute"):
        model.set_diagnoser(lacking)
    from fusion.features import NO_REFERENCE_EXTRACTORS

    wrong_mode = Diagnoser(["noise_sigma"], small_diagnoser.classifier,
                           NO_REFERENCE_EXTRACTORS[2:])
    with pytest.raises(ValueError, match="do not work in mode"):
        model.set_diagnoser(wrong_mode)
    assert model.set_diagnoser(None).diagnoser is None


def test_quality_map_names_each_patch_family(diagnosed_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair("chelsea_noise")
    qmap = diagnosed_fr_model.predict(distorted, reference, quality_map=True).quality_map
    assert qmap is not None and qmap.patch_families is not None
    assert len(qmap.patch_families) == len(qmap.positions)
    assert set(qmap.patch_families) <= set(FAMILY_NAMES)
    picture = np.asarray(qmap.overlay(distorted))
    height, width = fusion.load_image(distorted).shape
    assert picture.shape == (height, width, 3)
    plain = fusion.QualityMap(qmap.values, qmap.positions, qmap.patch_qualities,
                              qmap.patch_size, qmap.backbone)
    without = np.asarray(plain.overlay(distorted))
    strip = slice(height - 18, height)
    assert (picture[strip] != without[strip]).any()  # the legend strip
    assert (picture[strip, :, :].min(axis=2) < 50).any()  # with dark legend text


# ------------------------------------------------------------------ bundles


def test_bundle_keeps_the_diagnostics(diagnosed_fr_model: FusionModel, tmp_path: Path) -> None:
    folder = fusion.save(diagnosed_fr_model, tmp_path / "bundle")
    metadata = json.loads((folder / "metadata.json").read_text())
    assert metadata["diagnostics"]["families"] == list(FAMILY_NAMES)
    assert metadata["diagnostics"]["extractors"] == [ChangeExtractor().key]
    loaded = fusion.load(folder)
    reference, distorted = fusion.example_pair("coffee_jpeg")
    assert (loaded.predict(distorted, reference).diagnostics
            == diagnosed_fr_model.predict(distorted, reference).diagnostics)
    # saving the loaded model again keeps them too
    again = fusion.load(fusion.save(loaded, tmp_path / "again"))
    assert again.diagnoser is not None


def test_attach_diagnoser_in_place(bundle_copy: Path, small_diagnoser: Diagnoser) -> None:
    from fusion.bundle import attach_diagnoser

    assert fusion.load(bundle_copy).diagnoser is None
    attach_diagnoser(bundle_copy, small_diagnoser, {"data": "test set"})
    loaded = fusion.load(bundle_copy)
    assert loaded.diagnoser is not None
    assert loaded.metadata is not None
    assert loaded.metadata["diagnostics"]["training"] == {"data": "test set"}


@pytest.fixture
def diagnosed_bundle(diagnosed_fr_model: FusionModel, tmp_path: Path) -> Path:
    return fusion.save(diagnosed_fr_model, tmp_path / "bundle")


def test_diagnostics_are_stored_as_plain_arrays(diagnosed_bundle: Path) -> None:
    metadata = json.loads((diagnosed_bundle / "metadata.json").read_text())
    assert metadata["diagnostics"]["file"] == "diagnostics.npz"
    assert not (diagnosed_bundle / "diagnostics.skops").exists()
    with np.load(diagnosed_bundle / "diagnostics.npz", allow_pickle=False) as stored:
        assert {a.dtype.kind for a in stored.values()} <= set("biuf")  # nothing pickled


def test_tampered_diagnostics_are_refused(diagnosed_bundle: Path) -> None:
    with open(diagnosed_bundle / "diagnostics.npz", "r+b") as handle:
        handle.seek(40)
        byte = handle.read(1)
        handle.seek(40)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(fusion.BundleError, match=r"diagnostics.npz does not match"):
        fusion.load(diagnosed_bundle)


@pytest.mark.parametrize(("array", "damage", "message"), [
    ("left", lambda a: np.full_like(a, 10**6), "children outside"),
    ("feature", lambda a: np.full_like(a, -1), "split features outside"),
    ("value", lambda a: np.full_like(a, np.nan), "not finite"),
    ("tree_class", lambda a: a[:-1], "do not agree"),
    ("leaf", lambda a: a.astype(np.float64), "wrong kind"),
    ("beta", None, "lack"),
])
def test_malformed_diagnostic_trees_are_refused(diagnosed_bundle: Path, array: str,
                                                damage: object, message: str) -> None:
    from fusion.bundle import write_checksums

    with np.load(diagnosed_bundle / "diagnostics.npz", allow_pickle=False) as stored:
        arrays = dict(stored)
    if damage is None:
        del arrays[array]
    else:
        arrays[array] = damage(arrays[array])  # type: ignore[operator]
    np.savez(diagnosed_bundle / "diagnostics.npz", **arrays)
    write_checksums(diagnosed_bundle)  # checksums that match: the content itself is checked
    with pytest.raises(fusion.BundleError, match=message):
        fusion.load(diagnosed_bundle)


def test_unknown_diagnostic_extractor_is_refused(diagnosed_bundle: Path) -> None:
    from fusion.bundle import write_checksums

    metadata = json.loads((diagnosed_bundle / "metadata.json").read_text())
    metadata["diagnostics"]["extractors"] = ["change_V99"]
    (diagnosed_bundle / "metadata.json").write_text(json.dumps(metadata))
    write_checksums(diagnosed_bundle)
    with pytest.raises(fusion.BundleError, match="change_V99"):
        fusion.load(diagnosed_bundle)


def test_unlisted_diagnostics_file_is_refused(diagnosed_bundle: Path) -> None:
    sums = (diagnosed_bundle / "SHA256SUMS").read_text().splitlines()
    (diagnosed_bundle / "SHA256SUMS").write_text(
        "".join(f"{line}\n" for line in sums if "diagnostics.npz" not in line))
    with pytest.raises(fusion.BundleError, match="SHA256SUMS does not list"):
        fusion.load(diagnosed_bundle)


def test_malformed_diagnostics_entry_is_refused(diagnosed_bundle: Path) -> None:
    from fusion.bundle import write_checksums

    metadata = json.loads((diagnosed_bundle / "metadata.json").read_text())
    metadata["diagnostics"]["families"] = "blur"
    (diagnosed_bundle / "metadata.json").write_text(json.dumps(metadata))
    write_checksums(diagnosed_bundle)
    with pytest.raises(fusion.BundleError, match=r"diagnostics\.'families'"):
        fusion.load(diagnosed_bundle)


def test_diagnostics_that_are_not_a_classifier_are_refused(diagnosed_bundle: Path) -> None:
    import skops.io as sio

    from fusion.bundle import write_checksums

    # a bundle may store diagnostics as skops (a classifier without the stacked-tree form)
    metadata = json.loads((diagnosed_bundle / "metadata.json").read_text())
    metadata["diagnostics"]["file"] = "diagnostics.skops"
    (diagnosed_bundle / "metadata.json").write_text(json.dumps(metadata))
    shutil.copyfile(diagnosed_bundle / "interval.skops", diagnosed_bundle / "diagnostics.skops")
    write_checksums(diagnosed_bundle)
    assert sio.get_untrusted_types(file=diagnosed_bundle / "diagnostics.skops") is not None
    with pytest.raises(fusion.BundleError, match="not a fitted classifier"):
        fusion.load(diagnosed_bundle)


def test_fast_trees_give_scikit_learns_probabilities(
        small_diagnoser: Diagnoser,
        small_diagnostic_set: tuple[np.ndarray, np.ndarray, np.ndarray]) -> None:
    from fusion._fast_trees import FastCalibratedTrees

    values = small_diagnostic_set[0]
    fast = FastCalibratedTrees.of(small_diagnoser.classifier)
    assert fast is not None
    np.testing.assert_allclose(fast.predict_proba(values),
                               small_diagnoser.classifier.predict_proba(values), atol=1e-12)
    with_nan = values[:5].copy()
    with_nan[:, 0] = np.nan  # a missing value follows each node's learnt side
    np.testing.assert_allclose(fast.predict_proba(with_nan),
                               small_diagnoser.classifier.predict_proba(with_nan), atol=1e-12)
    assert FastCalibratedTrees.of(object()) is None
    # the stored form gives the same probabilities
    again = FastCalibratedTrees.from_arrays(fast.arrays())
    np.testing.assert_array_equal(again.predict_proba(with_nan), fast.predict_proba(with_nan))
    assert FastCalibratedTrees.of(again) is again
    assert list(again.classes_) == list(small_diagnoser.classifier.classes_)


def test_a_classifier_without_the_tree_form_is_kept_as_skops(
        small_fr_model: FusionModel, small_diagnostic_set: tuple[np.ndarray, ...],
        tmp_path: Path) -> None:
    from sklearn.linear_model import LogisticRegression

    values, labels, _ = small_diagnostic_set
    names = [n for e in FR_EXTRACTORS for n in e.feature_names]
    plain = Diagnoser(names, LogisticRegression(max_iter=2000).fit(values, labels),
                      (ChangeExtractor(),))
    model = FusionModel.from_fitted("fr", small_fr_model.extractors, small_fr_model.stacker_,
                                    small_fr_model.interval_, diagnoser=plain)
    folder = fusion.save(model, tmp_path / "bundle")
    assert json.loads((folder / "metadata.json").read_text())["diagnostics"]["file"] \
        == "diagnostics.skops"
    loaded = fusion.load(folder)
    assert loaded.diagnoser is not None
    np.testing.assert_allclose(loaded.diagnoser.probabilities_of(values[:5]),
                               plain.probabilities_of(values[:5]))


# ------------------------------------------------------------------ no-reference cues


def _nr_cues(image: np.ndarray) -> dict[str, float]:
    from fusion.features.distortion_cues import DistortionCuesExtractor

    return DistortionCuesExtractor().compute(image)


def test_distortion_cues_describe_the_distortion(textured_uint8: np.ndarray) -> None:
    from fusion.features.distortion_cues import DISTORTION_CUE_NAMES

    plain = _nr_cues(textured_uint8)
    assert list(plain) == list(DISTORTION_CUE_NAMES)
    assert _nr_cues(distort(textured_uint8, "pixelate", 4))["repeat_fraction"] > \
        plain["repeat_fraction"] + 0.5
    assert _nr_cues(distort(textured_uint8, "quantization", 4))["empty_levels"] > \
        plain["empty_levels"] + 0.3
    grey = _nr_cues(distort(textured_uint8, "saturation_decrease", 5))
    assert grey["saturation_mean"] < 0.05 < plain["saturation_mean"]
    assert _nr_cues(distort(textured_uint8, "color_noise", 5))["chroma_noise"] > \
        1.5 * plain["chroma_noise"]  # the test image already has noise in each channel
    assert _nr_cues(distort(textured_uint8, "darken", 5))["luma_entropy"] < \
        plain["luma_entropy"]


def test_distortion_cues_of_flat_and_grey_images_are_finite() -> None:
    for image in (np.zeros((40, 50), np.uint8), np.full((40, 50, 3), 255, np.uint8),
                  np.linspace(0, 1, 40 * 50).reshape(40, 50)):
        values = _nr_cues(image)
        assert all(np.isfinite(v) for v in values.values())
    assert _nr_cues(np.zeros((40, 50), np.uint8))["repeat_fraction"] == 1.0
    with pytest.raises(ValueError, match="takes no reference"):
        from fusion.features.distortion_cues import DistortionCuesExtractor

        DistortionCuesExtractor()._compute(fusion.load_image(np.zeros((40, 50))),
                                           fusion.load_image(np.zeros((40, 50))))


# ------------------------------------------------------------------ the embedded defaults


@pytest.mark.parametrize("mode", ["fr", "nr"])
def test_defaults_carry_diagnostics_with_their_held_out_accuracy(mode: str) -> None:
    from fusion.api import default_model

    model = default_model(mode)
    assert model.diagnoser is not None and model.diagnoser.families == FAMILY_NAMES
    assert model.metadata is not None
    held_out = model.metadata["diagnostics"]["training"]["held_out"]
    assert held_out["all"]["top1"] >= (0.9 if mode == "fr" else 0.8)
    assert held_out["all"]["ece"] <= 0.05


@pytest.mark.parametrize(("name", "family"), [("coffee_jpeg", "compression"),
                                              ("astronaut_blur", "blur"),
                                              ("chelsea_noise", "noise")])
def test_full_reference_default_names_the_examples_distortion(name: str, family: str) -> None:
    """The bundled pairs are JPEG, blur and noise (fusion.examples): not training data."""
    reference, distorted = fusion.example_pair(name)
    result = fusion.predict(distorted, reference)
    assert result.diagnostics is not None and result.diagnostics.family == family
    assert fusion.predict(reference, reference).diagnostics.family == "none"


def test_no_reference_default_gives_each_patch_a_family() -> None:
    distorted = fusion.example_pair("chelsea_noise")[1]
    result = fusion.predict(distorted, quality_map=True)
    qmap = result.quality_map
    assert qmap is not None and qmap.patch_families is not None
    assert len(qmap.patch_families) == len(qmap.positions)
    assert set(qmap.patch_families) <= set(FAMILY_NAMES)


def test_unchanged_items_are_labelled_none(tmp_path: Path) -> None:
    from fusion.datasets import Dataset, DatasetItem
    from fusion.training.diagnostics import family_labels

    items = tuple(DatasetItem(image=tmp_path / f"{k}.png", reference=tmp_path / "r.png",
                              score=None, raw_score=None, content_id="r", distortion=kind,
                              level=level)
                  for k, (kind, level) in enumerate([("kadid_mean_shift", 3), ("jpeg", 2),
                                                     ("none", 0)]))
    dataset = Dataset(name="t", mode="fr", items=items, scale=None, root=tmp_path)
    names = [FAMILY_NAMES[k] for k in family_labels(dataset)]
    assert names == ["exposure_contrast", "compression", "none"]
    relabelled = family_labels(dataset, np.array([True, False, True]))
    assert [FAMILY_NAMES[k] for k in relabelled] == ["none", "compression", "none"]
    with pytest.raises(ValueError, match="unchanged flags"):
        family_labels(dataset, np.array([True]))


def test_rows_without_the_diagnostic_features_are_still_scored(
        diagnosed_fr_model: FusionModel) -> None:
    reference, distorted = fusion.example_pair("coffee_jpeg")
    full = diagnosed_fr_model._flat(diagnosed_fr_model.extract(distorted, reference))
    metrics_only = {n: full[n] for n in diagnosed_fr_model.feature_names}
    with_cues, without = diagnosed_fr_model.predict_features([full, metrics_only])
    assert with_cues.diagnostics is not None and without.diagnostics is None
    assert with_cues.score == without.score


def test_diagnostics_feature_count_must_match_metadata(diagnosed_bundle: Path) -> None:
    from fusion.bundle import write_checksums

    metadata = json.loads((diagnosed_bundle / "metadata.json").read_text())
    metadata["diagnostics"]["feature_names"] = metadata["diagnostics"]["feature_names"][:-1]
    (diagnosed_bundle / "metadata.json").write_text(json.dumps(metadata))
    write_checksums(diagnosed_bundle)
    with pytest.raises(fusion.BundleError, match="reads 21 features"):
        fusion.load(diagnosed_bundle)
