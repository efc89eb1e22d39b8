"""The fusion model: calibrators, stacking with grouped CV, bundles and their refusals."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import fusion
from calibrators import ConformalInterval, IsotonicCalibrator
from fusion.bundle import BundleError, load_bundle, save_bundle
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


# ------------------------------------------------------------------ a small FR model


@pytest.fixture(scope="module")
def small_fr_model() -> FusionModel:
    """Full-reference model on handcrafted features of distorted example pairs."""
    from fusion.distortions import distort

    rows, scores, groups = [], [], []
    for index, name in enumerate(fusion.EXAMPLE_NAMES):
        reference = fusion.example_pair(name)[0]
        for kind in ("gaussian_noise", "gaussian_blur", "jpeg", "contrast_decrease"):
            for level in (1, 2, 3, 4, 5):
                distorted = distort(reference, kind, level, image_index=index)
                rows.append(list(full_reference_features(reference, distorted).values()))
                scores.append(100 * (1 - level / 6))
                groups.append(name)
    return FusionModel.fit("fr", FULL_REFERENCE_EXTRACTORS, np.array(rows), np.array(scores),
                           np.array(groups), calibration_fraction=0.34, coverage=0.5,
                           name="small_fr")


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
    with pytest.raises(ValueError, match="no backbone"):
        small_fr_model.predict(distorted, reference, quality_map=True)


# ------------------------------------------------------------------ bundles


def _resum(folder: Path) -> None:
    lines = []
    for file in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != "SHA256SUMS"):
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        lines.append(f"{digest}  {file.relative_to(folder).as_posix()}\n")
    (folder / "SHA256SUMS").write_text("".join(lines))


def test_bundle_round_trip_gives_identical_predictions(small_fr_model: FusionModel,
                                                       tmp_path: Path) -> None:
    reference, distorted = fusion.example_pair("chelsea_noise")
    expected = small_fr_model.predict(distorted, reference)
    for target in (tmp_path / "bundle", tmp_path / "bundle.zip"):
        save_bundle(small_fr_model, target, training={"heldout_metrics": {"note": "test"}})
        loaded = fusion.load(target)
        again = loaded.predict(distorted, reference)
        assert again.score == expected.score and again.interval == expected.interval
        assert loaded.metadata["heldout_metrics"] == {"note": "test"}
        assert loaded.metadata["score"]["higher_is_better"] is True


@pytest.mark.parametrize("damage, message", [
    ("tamper", "does not match its SHA-256"),
    ("missing", "missing file stacker.skops"),
    ("newer", "newer than this library"),
    ("unknown_feature", "does not have"),
    ("names", "do not match its extractors"),
    ("not_bundle", "neither a bundle directory nor a zip"),
])
def test_bundle_refusals(small_fr_model: FusionModel, tmp_path: Path, damage: str,
                         message: str) -> None:
    folder = tmp_path / "bundle"
    save_bundle(small_fr_model, folder)
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


# ------------------------------------------------------------------ the embedded defaults


def _default_installed(mode: str) -> bool:
    from importlib import resources

    from fusion.api import DEFAULT_BUNDLES

    return (Path(str(resources.files("fusion") / DEFAULT_BUNDLES[mode])) / "metadata.json"
            ).is_file()


@pytest.mark.parametrize("mode", ["nr", "fr"])
def test_default_models_predict(mode: str) -> None:
    if not _default_installed(mode):
        pytest.skip(f"default {mode} bundle not trained yet (benchmarks/train_defaults.py)")
    reference, distorted = fusion.example_pair("coffee_jpeg")
    result = fusion.predict(distorted) if mode == "nr" else fusion.predict(distorted, reference)
    assert 0 <= result.score <= 100 and result.mode == mode
    assert result.interval[0] <= result.score <= result.interval[1]
    assert result.model.startswith(f"default_{mode}@")
    assert any(k.endswith("_quality") for k in result.components)
    if mode == "nr":
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
        # the shipped trunk/head parts compute what the six-channel graph computes
        backbone = fusion.api.default_model("fr").extractors[0]
        assert backbone.pair_runtime is not None  # type: ignore[attr-defined]
        ref, dist = (np.asarray(a, np.float32) / 255.0 for a in (reference, distorted))
        whole = backbone.runtime.image_vector(dist, ref)[0]  # type: ignore[attr-defined]
        split = backbone.pair_runtime.image_vector(dist, ref)[0]  # type: ignore[attr-defined]
        np.testing.assert_allclose(split, whole, atol=1e-4)


def test_predict_never_imports_tensorflow_or_keras() -> None:
    if not (_default_installed("nr") and _default_installed("fr")):
        pytest.skip("default bundles not trained yet")
    code = ("import sys, fusion\n"
            "ref, dist = fusion.example_pair()\n"
            "fusion.predict(dist); fusion.predict(dist, ref)\n"
            "print(' '.join(m for m in ('tensorflow', 'keras') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, check=True)
    assert result.stdout.strip() == ""
