"""Quality-tuned branches in a bundle: the graph, the extractor, and cross-fitted stacking."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from fusion.training.fused import _kept_weights, _with_cross_fitted
from fusion.training.tuning import TunedTrunk

TUNED = "bb:efficientnet_lite0:q_tuned"


def test_cross_fitted_values_replace_the_tuned_column_of_training_rows() -> None:
    names = ["bb:efficientnet_lite0:q_weighted", TUNED, "nss:mscn_var"]
    values = np.arange(12.0).reshape(4, 3)
    column = np.array([np.nan, 0.1, 0.2, 0.3, 0.4, np.nan])  # dataset order; rows 1–4 train
    replaced = _with_cross_fitted(values, names, np.array([1, 2, 3, 4]), {TUNED: column})
    assert replaced[:, 1].tolist() == [0.1, 0.2, 0.3, 0.4]
    assert np.array_equal(replaced[:, [0, 2]], values[:, [0, 2]])
    assert values[0, 1] == 1.0  # the caller's array is left alone


def test_cross_fitted_values_are_required_complete_and_known() -> None:
    names = ["bb:efficientnet_lite0:q_weighted", TUNED]
    values, rows = np.zeros((2, 2)), np.array([0, 1])
    with pytest.raises(ValueError, match=r"cross-fitted values needed for .*q_tuned"):
        _with_cross_fitted(values, names, rows, {})
    with pytest.raises(ValueError, match=r"no tuned quality for: .*lite1"):
        _with_cross_fitted(values, names, rows, {TUNED: np.ones(2),
                                                 "bb:efficientnet_lite1:q_tuned": np.ones(2)})
    with pytest.raises(ValueError, match="of 1 training items are missing"):
        _with_cross_fitted(values, names, rows, {TUNED: np.array([0.5, np.nan])})
    # a model without tuned columns needs nothing
    assert _with_cross_fitted(values, [*names[:1], "x"], rows, {}).shape == (2, 2)


def test_the_metadata_says_which_weights_a_tuning_run_kept() -> None:
    curve = [0.5, 0.7, 0.6]
    assert _kept_weights({"best_epoch": 2, "validation_srcc": curve,
                          "averaged_from": 0, "averaged_srcc": None}) == {"best_epoch": 2}
    assert _kept_weights({"best_epoch": 2, "validation_srcc": curve, "averaged_from": 2,
                          "averaged_srcc": 0.68}) == {"averaged_epochs": [2, 3],
                                                      "averaged_srcc": 0.68}
    # a report written before averaging existed has no averaged_from: the best epoch
    assert _kept_weights({"best_epoch": 3, "validation_srcc": curve}) == {"best_epoch": 3}


def test_tuned_trunk_round_trips(tmp_path: Path) -> None:
    weights = [np.ones((3, 2), np.float32), np.arange(4, dtype=np.float32)]
    trunk = TunedTrunk("efficientnet_lite0", 5, 4, weights, (41.5, 18.25),
                       np.array([10.0, 60.0]), [{"fold": 0, "heldout_srcc": 0.5},
                                                {"fold": "all", "best_epoch": 3}])
    again = TunedTrunk.load(trunk.save(tmp_path / "t.npz"))
    assert (again.name, again.start_stage, again.max_patches) == ("efficientnet_lite0", 5, 4)
    assert again.standardisation == (41.5, 18.25) and again.reports == trunk.reports
    assert all(np.array_equal(a, b) for a, b in zip(again.weights, weights, strict=True))
    assert np.array_equal(again.cross_fitted, trunk.cross_fitted)


def _graded_photographs(folder: Path, count: int) -> Path:
    """``count`` textured 300×260 images, each its own content, noisier ones rated lower."""
    from PIL import Image

    folder.mkdir(parents=True)
    rows = ["image,mos,scale_min,scale_max,direction"]
    for i in range(count):
        gen = np.random.default_rng(i)
        y, x = np.mgrid[0:260, 0:300] / (8.0 + i)
        base = 0.5 + 0.3 * np.sin(x * (1 + i % 3) + y * 0.6)[..., None] * gen.random(3)
        sigma = 0.02 + 0.3 * i / count
        noisy = np.clip(base + gen.normal(0, sigma, base.shape), 0, 1)
        Image.fromarray((noisy * 255 + 0.5).astype(np.uint8)).save(folder / f"{i}.png")
        rows.append(f"{i}.png,{100 - 250 * sigma:.2f},0,100,higher_is_better")
    (folder / "manifest.csv").write_text("\n".join(rows) + "\n")
    return folder / "manifest.csv"


@pytest.fixture(scope="module")
def untuned_bundle(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(manifest of 30 generated photographs, a small NR bundle trained on them: Lite0 on
    four patches, its heads, NSS; no tuned branch — the shipped presets all have one)."""
    pytest.importorskip("keras", reason="training needs the train extra")
    from fusion.datasets import read_manifest
    from fusion.features.no_reference import NSSExtractor
    from fusion.training import train_fusion

    folder = tmp_path_factory.mktemp("untuned")
    manifest = _graded_photographs(folder / "images", 30)
    train_fusion(read_manifest(manifest, name="graded"), folder / "bundle",
                 backbones=("efficientnet_lite0",), work=folder / "work", name="small_nr",
                 trials=1, max_patches=4, handcrafted=(NSSExtractor(),))
    return manifest, folder / "bundle"


@pytest.mark.slow
def test_a_tuned_branch_joins_a_bundle(untuned_bundle: tuple[Path, Path],
                                       tmp_path: Path) -> None:
    """Tune (briefly), add the branch to a bundle's graph, refit, load, predict."""
    import fusion
    from fusion.datasets import read_manifest
    from fusion.io import load_image
    from fusion.training.fused import (
        heldout_split,
        reexport_backbones,
        refit_stacker,
        tuned_extractors,
    )
    from fusion.training.tuning import TuningSettings, branch_quality, grid_activations, tune_trunk

    manifest, source = untuned_bundle
    dataset = read_manifest(manifest, name="graded")
    images = [str(item.image) for item in dataset]
    bundle = Path(shutil.copytree(source, tmp_path / "b"))
    train, _ = heldout_split(dataset)
    train = np.asarray(train)
    settings = TuningSettings(start_stage=6, epochs=1, patches_per_image=2,
                              validation_fraction=0.25)
    work = tmp_path / "work"
    tuned = tune_trunk("efficientnet_lite0", images, dataset.scores, dataset.content_ids,
                       train, work, max_patches=4, folds=3, settings=settings)
    assert tuned.cross_fitted.shape == (len(train),)
    assert np.all(np.isfinite(tuned.cross_fitted))
    assert [r["fold"] for r in tuned.reports] == [0, 1, 2, "all"]
    cached = tune_trunk("efficientnet_lite0", images, dataset.scores, dataset.content_ids,
                        train, work, max_patches=4, folds=3, settings=settings)
    assert all(np.array_equal(a, b) for a, b in zip(cached.weights, tuned.weights,
                                                    strict=True))

    extractors, differences = tuned_extractors(bundle, {"efficientnet_lite0": tuned},
                                               tmp_path / "tuned", training="test images")
    assert differences["efficientnet_lite0"] < 0.1
    backbone, plain = extractors[0], fusion.load(bundle).extractors[0]
    assert backbone.feature_names[-1] == TUNED and backbone.higher_is_better[-1] is True
    assert backbone.feature_names[:-1] == plain.feature_names
    assert backbone.key != plain.key and backbone.tuned["training"] == "test images"
    # the tuned column is the branch's mean quality over the image's four grid patches
    activations = grid_activations("efficientnet_lite0", images[:3], work, max_patches=4,
                                   start_stage=6)
    mean, sd = tuned.standardisation
    expected = (branch_quality(tuned.branch(), activations, patches=None)[0] * sd + mean) / 100
    for path, value in zip(images[:3], expected, strict=True):
        new, old = (e.compute(load_image(path)) for e in (backbone, plain))
        assert new[TUNED] == pytest.approx(value, abs=0.02)
        shared = [n for n in old if n in new]
        # the same graph otherwise (float16 weights against float32: the export tolerance)
        assert max(abs(new[n] - old[n]) for n in shared) < 0.1

    with pytest.raises(ValueError, match="cross-fitted values needed"):
        refit_stacker(bundle, dataset, tmp_path / "refused", work=work, name="t",
                      extractors=extractors)
    column = np.full(len(dataset), np.nan)
    column[train] = tuned.cross_fitted / 100
    refit_stacker(bundle, dataset, tmp_path / "out", work=work, name="tuned-test",
                  extractors=extractors, cross_fitted={TUNED: column})
    entry = json.loads((tmp_path / "out" / "metadata.json").read_text())["extractors"][0]
    assert entry["tuned"]["start_stage"] == 6 and entry["tuned"]["cross_fitted_folds"] == 3
    assert entry["tuned"]["best_epoch"] == 1 and "averaged_epochs" not in entry["tuned"]
    model = fusion.load(tmp_path / "out")
    assert model.feature_names[len(plain.feature_names)] == TUNED
    assert "tuned_quality_linear" in dict(model.stacker_.estimators)
    prediction = model.predict(images[0])
    assert 0.0 <= prediction.score <= 100.0
    assert 0.0 <= prediction.components["efficientnet_lite0_tuned_quality"] <= 100.0
    with pytest.raises(ValueError, match="quality-tuned branch"):
        reexport_backbones(tmp_path / "out")


@pytest.mark.parametrize(("preset", "tuned_backbones"), [
    ("accurate", {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}),
    ("fast", {"efficientnet_lite0"})])
def test_the_no_reference_defaults_ship_tuned_branches(preset: str,
                                                       tuned_backbones: set[str]) -> None:
    """The presets' backbones carry tuned branches, learned cross-fitted (README)."""
    import fusion
    from fusion.api import default_bundle_path
    from fusion.backbone_extractor import BackboneExtractor

    model = fusion.load(preset)
    backbones = [e for e in model.extractors
                 if isinstance(e, BackboneExtractor) and e.tuned is not None]
    assert {e.backbone_name for e in backbones} == tuned_backbones
    assert all(f"bb:{e.backbone_name}:q_tuned" in model.feature_names for e in backbones)
    metadata = json.loads((default_bundle_path("nr", preset=preset) / "metadata.json")
                          .read_text())
    for entry in (e for e in metadata["extractors"] if "tuned" in e):
        assert entry["tuned"]["cross_fitted_folds"] == 5 and entry["weights"] == "float16"
        # the metadata says which weights the tuning kept: the best epoch, or the mean of
        # the later epochs' (the shipped bundles, tuned 2026-12-01, kept the best epoch)
        epochs = len(entry["tuned"]["validation_srcc"])
        if "averaged_epochs" in entry["tuned"]:
            first, last = entry["tuned"]["averaged_epochs"]
            assert 1 <= first <= last == epochs
            assert entry["tuned"]["averaged_srcc"] is not None
        else:
            assert 1 <= entry["tuned"]["best_epoch"] <= epochs
    components = metadata["heldout_metrics"]["components"]
    assert all(f"{e.backbone_name} (tuned quality)" in components for e in backbones)


@pytest.mark.slow
def test_reexport_for_whole_images_keeps_the_weights(untuned_bundle: tuple[Path, Path],
                                                     tmp_path: Path) -> None:
    """A bundle's backbone re-exported for 288-pixel inputs: same weights, one pass an image."""
    import fusion
    from backbones.export import max_litert_difference
    from backbones.registry import get_backbone, load_keras
    from fusion.training.fused import reexport_backbones

    bundle = Path(shutil.copytree(untuned_bundle[1], tmp_path / "b"))
    entry = next(e for e in json.loads((bundle / "metadata.json").read_text())["extractors"]
                 if e["kind"] == "backbone")
    replaced = reexport_backbones(bundle, patch_size=288, max_patches=2)
    assert set(replaced) == {entry["backbone"]} and replaced[entry["backbone"]] < 0.1
    resized = json.loads((bundle / "metadata.json").read_text())["extractors"][0]
    assert resized["max_patches"] == 2 and resized["key"] != entry["key"]
    extractor = fusion.load(bundle).extractors[0]
    assert extractor.patch_size == 288 and extractor.max_patches == 2
    # the graph is the bundle's trained model, built for the new size: same outputs
    keras_model = get_backbone(entry["backbone"], mode="nr", patch_size=288)
    heads = load_keras(bundle / entry["keras"])
    for layer in heads.layers:
        if layer.weights:
            keras_model.get_layer(layer.name).set_weights(layer.get_weights())
    image = np.random.default_rng(3).random((1, 288, 288, 3)).astype(np.float32)
    assert max_litert_difference(keras_model, bundle / resized["litert"], image) < 0.1
