"""Backbones: the ImageNet port, the registry, save/load, LiteRT parity, training, runtime."""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
keras = pytest.importorskip("keras", reason="backbone tests need the train extra")

import backbones  # noqa: E402
from backbones._torch_weights import WeightFileError, load_state_dict  # noqa: E402
from backbones.efficientnet_lite import weight_file  # noqa: E402
from backbones.export import export_litert, max_litert_difference  # noqa: E402
from backbones.registry import BACKBONES, spec_of  # noqa: E402
from backbones.runtime import BackboneFileError, LiteRTBackbone  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]


def _center_224(image: np.ndarray) -> np.ndarray:
    from PIL import Image

    h, w = image.shape[:2]
    side = min(h, w)
    crop = image[(h - side) // 2:(h - side) // 2 + side, (w - side) // 2:(w - side) // 2 + side]
    return np.asarray(Image.fromarray(crop).resize((224, 224), Image.BICUBIC),
                      np.float32) / 255.0


@pytest.mark.parametrize("name", ["efficientnet_lite0", "efficientnet_lite1",
                                  "efficientnet_lite2"])
def test_imagenet_port_classifies_shipped_photographs(name: str) -> None:
    skimage_data = pytest.importorskip("skimage.data")
    classify = backbones.imagenet_classifier(name)
    logits = classify(np.stack([_center_224(skimage_data.chelsea()),
                                _center_224(skimage_data.coffee())]))
    assert logits.shape == (2, 1000)
    cat_top5, coffee_top5 = (set(np.argsort(-row)[:5].tolist()) for row in logits)
    assert cat_top5 & {281, 282, 283, 284, 285}          # ImageNet cat classes
    assert coffee_top5 & {504, 967, 968}                 # coffee mug, espresso, cup


def test_imagenet_classifier_checks_its_input() -> None:
    with pytest.raises(ValueError, match=r"\(N, 224, 224, 3\)"):
        backbones.imagenet_classifier()(np.zeros((1, 100, 100, 3)))


def test_weight_file_is_checked_by_hash(tmp_path: Path) -> None:
    path, digest = weight_file("efficientnet_lite0")
    tampered = tmp_path / "lite0.pth"
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(WeightFileError, match="is not the published one"):
        load_state_dict(tampered, sha256=digest)
    assert len(load_state_dict(path, sha256=digest)) == 296


def test_weight_reader_refuses_code_in_the_pickle(tmp_path: Path) -> None:
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (os.system, (f"touch {marker}",))

    evil = tmp_path / "evil.pth"
    with open(evil, "wb") as handle:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):
            pickle.dump(header, handle, protocol=2)
        pickle.dump({"weight": Exploit()}, handle, protocol=2)
        pickle.dump([], handle, protocol=2)
        handle.write(struct.pack("<q", 0))
    with pytest.raises(WeightFileError, match="refusing to load global"):
        load_state_dict(evil, sha256=None)
    assert not marker.exists()


def test_registry_names_and_errors() -> None:
    assert {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2", "wadiqam",
            "compact", "resnet50", "inceptionv3", "mobilenetv3small"} <= set(
        backbones.list_backbones())
    with pytest.raises(ValueError, match=r"did you mean .*efficientnet_lite0"):
        backbones.get_backbone("efficientnet_lite")
    with pytest.raises(ValueError, match="mode must be"):
        backbones.get_backbone("compact", mode="both")


#: Large trunks whose build, export and parity check take 15–30 s each: `slow`.
LARGE = ("resnet50", "inceptionv3", "efficientnet_lite1", "efficientnet_lite2")
CASES = [pytest.param(name, mode, id=f"{name}-{mode}",
                      marks=[pytest.mark.slow] if name in LARGE else [])
         for name in BACKBONES for mode in ("nr", "fr")
         if not (name in ("resnet50", "inceptionv3", "mobilenetv3small") and mode == "fr")]


@pytest.mark.parametrize("name, mode", CASES)
def test_keras_round_trip_and_litert_parity(name: str, mode: str, tmp_path: Path) -> None:
    import fusion

    model = backbones.get_backbone(name, mode=mode)
    size = spec_of(name).patch_size
    channels = 6 if mode == "fr" else 3
    rng = np.random.default_rng(0)
    random_patches = rng.random((3, size, size, channels)).astype(np.float32)
    ref, dist = fusion.example_pair("chelsea_noise")
    real = (np.concatenate([ref, dist], axis=2) if mode == "fr" else dist) / 255.0
    positions = backbones.grid_positions(*real.shape[:2], size=size, max_patches=2)
    real_patches = backbones.take_patches(real.astype(np.float32), positions, size=size)
    # .keras save → load → identical outputs
    path = tmp_path / f"{name}.keras"
    model.save(path)
    again = backbones.load_keras(path)
    for patches in (random_patches, real_patches):
        np.testing.assert_array_equal(np.asarray(model(patches, training=False)),
                                      np.asarray(again(patches, training=False)))
    # the LiteRT export computes the same (prediction runs it)
    exported = export_litert(model, tmp_path / f"{name}.tflite")
    for patches in (random_patches, real_patches):
        assert max_litert_difference(model, exported, patches) <= 1e-4
    runtime = LiteRTBackbone(exported)
    assert runtime.mode == mode and runtime.patch_size == size


@pytest.mark.slow
def test_tiny_training_run_changes_the_heads_and_learns() -> None:
    from fusion.training import train_heads

    model = backbones.get_backbone("compact")
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 4, 192)).astype(np.float32)
    targets = 50 + 30 * np.tanh(features[:, :, 0].mean(axis=1) * 2)
    groups = np.array([f"c{i}" for i in range(40)])
    before = model.get_layer("quality").get_weights()[0].copy()
    settings, metrics, history = train_heads(model, features, targets, groups, trials=2,
                                             max_epochs=40, patience=40)
    assert len(history) == 2 and 1e-5 <= settings["learning_rate"] <= 1e-3
    assert settings["batch_size"] in (16, 32, 64)
    assert not np.array_equal(before, model.get_layer("quality").get_weights()[0])
    assert set(metrics) == {"srcc", "krcc", "plcc", "rmse"}


def test_runtime_threads_and_errors(tmp_path: Path) -> None:
    model = backbones.get_backbone("compact")
    runtime = LiteRTBackbone(export_litert(model, tmp_path / "c.tflite"), batch_size=4)
    patches = np.random.default_rng(1).random((10, 32, 32, 3)).astype(np.float32)
    expected = runtime(patches)
    results: list[np.ndarray] = []
    threads = [threading.Thread(target=lambda: results.append(runtime(patches)))
               for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(np.array_equal(r, expected) for r in results)
    with pytest.raises(ValueError, match=r"patches must have shape \(N, 32, 32, 3\)"):
        runtime(np.zeros((2, 16, 16, 3), np.float32))
    garbage = tmp_path / "garbage.tflite"
    garbage.write_bytes(b"not a model" * 50)
    with pytest.raises(BackboneFileError, match="not a loadable LiteRT model"):
        LiteRTBackbone(garbage)
    with pytest.raises(BackboneFileError, match="not found"):
        LiteRTBackbone(tmp_path / "missing.tflite")


def test_patch_grid_and_pooling() -> None:
    positions = backbones.grid_positions(500, 500, size=224, max_patches=9)
    assert len(positions) == 9 and positions.max() == 500 - 224
    assert len(backbones.grid_positions(4000, 3000, max_patches=9)) <= 9
    small = backbones.take_patches(np.zeros((100, 150, 3), np.float32),
                                   backbones.grid_positions(100, 150), size=224)
    assert small.shape == (1, 224, 224, 3)
    pooled = backbones.pool_outputs(np.ones((3, 5)), np.array([0.2, 0.4, 0.6]),
                                    np.array([1.0, 1.0, 2.0]))
    assert pooled[0] == pytest.approx((0.2 + 0.4 + 1.2) / 4) and pooled.shape == (8,)


def test_saved_fr_backbone_loads_in_a_fresh_process(tmp_path: Path) -> None:
    # ChannelSplit is a custom layer: loading must not depend on what was imported before.
    path = tmp_path / "compact_fr.keras"
    backbones.get_backbone("compact", mode="fr").save(path)
    code = (f"import backbones; m = backbones.load_keras({str(path)!r}); "
            "print(m.output_shape)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert "(None, 386)" in result.stdout


def test_patch_features_stream_items_from_paths(tmp_path: Path) -> None:
    import fusion
    from fusion.examples import example_paths
    from fusion.training import patch_features

    runtime = LiteRTBackbone(export_litert(backbones.get_backbone("compact", mode="fr"),
                                           tmp_path / "c.tflite"))
    items = [tuple(reversed(example_paths(name))) for name in fusion.EXAMPLE_NAMES]
    features = patch_features(runtime, items, max_patches=4)
    assert features.shape == (3, 4, 384)
    ref, dist = fusion.example_pair(fusion.EXAMPLE_NAMES[0])
    again = patch_features(runtime, [(dist, ref)], max_patches=4)
    np.testing.assert_array_equal(features[:1], again)


# ------------------------------------------------------------------ end-to-end training


def _rated_manifest(folder: Path, kinds: tuple[str, ...] = ("gaussian_blur", "gaussian_noise")
                    ) -> Path:
    """Example photographs at several distortion levels, scored by severity."""
    import fusion
    from fusion.distortions import distort

    folder.mkdir(parents=True, exist_ok=True)
    lines = ["image,score,content_id"]
    for name in fusion.EXAMPLE_NAMES:
        reference, _ = fusion.example_pair(name)
        for kind in kinds:
            for level in (1, 3, 5):
                file = f"{name}_{kind}_{level}.png"
                PILImage.fromarray(distort(reference, kind, level)).save(folder / file)
                lines.append(f"{file},{100 * (1 - level / 6):.3f},{name}_{kind}")
    manifest = folder / "manifest.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_augmentation_moves_reference_and_distorted_channels_together() -> None:
    from fusion.training.end_to_end import _augment

    rng = np.random.default_rng(0)
    half = rng.random((4, 3, 8, 8, 3)).astype(np.float32)
    batch = np.concatenate([half, half + 1.0], axis=-1)  # reference, then distorted
    out = np.asarray(_augment(batch))
    assert out.shape == batch.shape
    np.testing.assert_array_equal(out[..., :3] + 1.0, out[..., 3:])
    changed = 0
    for image in range(4):
        for patch in range(3):
            original = batch[image, patch]
            dihedral = [np.rot90(f, k) for f in (original, original[:, ::-1])
                        for k in range(4)]
            assert any(np.array_equal(out[image, patch], d) for d in dihedral)
            changed += not np.array_equal(out[image, patch], original)
    assert changed > 0


@pytest.mark.slow
def test_end_to_end_training_pretrains_then_fine_tunes(tmp_path: Path) -> None:
    import json

    import fusion
    from fusion.datasets import read_manifest
    from fusion.distortions import generate_synthetic
    from fusion.examples import example_paths
    from fusion.training import train_backbone

    rated = read_manifest(_rated_manifest(tmp_path / "rated"))
    pristine = [example_paths(name)[0] for name in fusion.EXAMPLE_NAMES]
    synthetic = generate_synthetic(pristine, tmp_path / "synthetic",
                                   kinds=["gaussian_blur", "gaussian_noise"], levels=[1, 3, 5])
    before = backbones.get_backbone("compact")
    result = train_backbone("compact", rated, tmp_path / "out", pretrain=synthetic, trials=2,
                            max_epochs=2, pretrain_epochs=2, patches_per_image=4,
                            progress=False)
    report = json.loads((tmp_path / "out" / "compact_nr.json").read_text())
    stages = report["settings"]["stages"]
    assert [s["name"] for s in stages] == ["stage 1 (synthetic severity)",
                                           f"stage 2 ({rated.name})"]
    assert stages[0]["items"] == 3 * 2 * 3 + 3  # distortions plus each photo against itself
    assert stages[0]["settings"]["learning_rate"] == 1e-3
    assert len([t for t in report["trials"] if t["stage"].startswith("stage 2")]) == 2
    assert report["settings"]["trunk"] == "trained end to end"
    trained = backbones.load_keras(result.keras_path)
    # the trunk itself was trained, not only the heads
    assert not np.array_equal(before.get_layer("compact_trunk").get_weights()[0],
                              trained.get_layer("compact_trunk").get_weights()[0])
    assert result.litert_max_difference <= 1e-4
    assert set(result.validation) == {"srcc", "krcc", "plcc", "rmse"}
    runtime = LiteRTBackbone(result.litert_path)
    vector, _, quality = runtime.image_vector(fusion.example_pair()[1] / 255.0,
                                              max_patches=16)
    assert np.all(np.isfinite(vector)) and len(quality) == 16


@pytest.mark.slow
def test_end_to_end_training_learns_blur_severity(tmp_path: Path) -> None:
    """A real (small) learning check: after pre-training on the blur levels of three
    photographs, the network's pooled quality ranks an unseen photograph's blur levels."""
    import fusion
    from fusion.datasets import Dataset, DatasetItem
    from fusion.distortions import distort, generate_synthetic, severity_dataset
    from fusion.examples import example_paths
    from fusion.metrics import srcc
    from fusion.training.end_to_end import decode_items, grid_scores, search_stage

    keras.utils.set_random_seed(0)
    pristine = [example_paths(name)[0] for name in fusion.EXAMPLE_NAMES]
    synthetic = generate_synthetic(pristine, tmp_path / "synthetic",
                                   kinds=["gaussian_blur"], levels=[1, 2, 3, 4, 5])
    model = backbones.get_backbone("compact")
    norm = model.get_layer("feature_norm")
    width = norm.get_weights()[0].shape
    norm.set_weights([np.zeros(width), np.ones(width), *norm.get_weights()[2:]])
    items = decode_items(severity_dataset(synthetic, target="level"), "nr")
    search_stage(model, items, name="blur", trials=1, seed=0, patches_per_image=16,
                 max_patches=16, max_epochs=12, patience=12,
                 fixed={"learning_rate": 1e-3, "batch_size": 16})
    unseen = pytest.importorskip("skimage.data").rocket()  # a photograph not trained on
    levels = [1, 2, 3, 4, 5]
    paths = [tmp_path / f"unseen_{level}.png" for level in levels]
    for path, level in zip(paths, levels, strict=True):
        PILImage.fromarray(distort(unseen, "gaussian_blur", level)).save(path)
    rated = Dataset("unseen", "nr", tuple(DatasetItem(path, None, 0.0, 0.0, "u")
                                          for path in paths))
    decoded = decode_items(rated, "nr")
    scores = grid_scores(model, decoded, range(len(levels)), max_patches=16)
    assert srcc(scores, -np.array(levels, float)) >= 0.8, scores


@pytest.mark.slow
def test_train_backbone_command_runs_both_stages(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import fusion
    from fusion.cli import main
    from fusion.examples import example_paths

    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for name in fusion.EXAMPLE_NAMES:
        (pristine / f"{name}.png").write_bytes(example_paths(name)[0].read_bytes())
    manifest = _rated_manifest(tmp_path / "rated", kinds=("jpeg",))
    out = tmp_path / "out"
    assert main(["train-backbone", "compact", str(manifest), "--pretrain", str(pristine),
                 "--pretrain-kinds", "gaussian_blur", "--trials", "1", "--epochs", "1",
                 "--pretrain-epochs", "1", "--patches-per-image", "4", "--out",
                 str(out)]) == 0
    printed = capsys.readouterr().out
    summary = json.loads(printed[printed.index("{\n"):])  # after the progress lines
    assert Path(summary["litert"]).is_file() and summary["litert_max_difference"] <= 1e-4
    report = json.loads((out / "compact_nr.json").read_text())
    assert len(report["settings"]["stages"]) == 2
    assert (out / "synthetic" / "manifest.csv").is_file()
    assert main(["train-backbone", "compact", "--out", str(out)]) == 1
    assert "needs DATA, --pretrain PRISTINE_DIR, or both" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("name", list(BACKBONES))
def test_every_backbone_takes_a_training_step(name: str) -> None:
    """A tiny training run of each registered backbone through the end-to-end image model:
    the trainable weights move (the heads only, for a frozen pretrained trunk)."""
    from fusion.training.end_to_end import _image_model

    # the keras.applications trunks train at a reduced patch size to keep this fast
    options = {"patch_size": 96} if "applications" in spec_of(name).factory else {}
    model = backbones.get_backbone(name, **options)
    size = int(model.input_shape[1])
    rng = np.random.default_rng(0)
    patches = rng.random((4, 2, size, size, 3)).astype(np.float32)
    targets = np.array([0.2, 0.4, 0.6, 0.8], np.float32)
    image_model = _image_model(model, 2)
    image_model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    before = [w.numpy().copy() for w in model.trainable_weights]
    frozen = [w.numpy().copy() for w in model.non_trainable_weights
              if "moving" not in w.path]
    image_model.fit(patches, targets, batch_size=4, epochs=1, verbose=0)
    after = [w.numpy() for w in model.trainable_weights]
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True))
    if spec_of(name).pretrained:  # the ImageNet trunk stays as loaded
        kept = [w.numpy() for w in model.non_trainable_weights if "moving" not in w.path]
        assert all(np.array_equal(b, a) for b, a in zip(frozen, kept, strict=True))


# ------------------------------------------------------------------ full-reference parts


def _unit_pair(name: str) -> tuple[np.ndarray, np.ndarray]:
    import fusion

    reference, distorted = fusion.example_pair(name)
    return (reference / 255.0).astype(np.float32), (distorted / 255.0).astype(np.float32)


def test_pair_parts_match_the_full_graph_and_reuse_a_reference(tmp_path: Path) -> None:
    from backbones.export import export_pair_parts
    from backbones.runtime import SplitPairBackbone

    model = backbones.get_backbone("compact", mode="fr")
    trunk, head = export_pair_parts(model, tmp_path, "compact_fr")
    full = LiteRTBackbone(export_litert(model, tmp_path / "full.tflite"))
    split = SplitPairBackbone(trunk, head, cache_size=2)
    reference, distorted = _unit_pair("coffee_jpeg")
    expected, grid, quality = full.image_vector(distorted, reference, max_patches=9)
    actual, split_grid, split_quality = split.image_vector(distorted, reference,
                                                           max_patches=9)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    np.testing.assert_allclose(split_quality, quality, atol=1e-4)
    np.testing.assert_array_equal(split_grid.positions, grid.positions)
    assert split.trunk_passes == 18  # 9 reference + 9 distorted patches
    split.image_vector(reference, reference, max_patches=9)
    assert split.trunk_passes == 27  # the reference's embeddings were reused
    other_reference, other = _unit_pair("chelsea_noise")
    split.image_vector(other, other_reference, max_patches=9)
    assert split.trunk_passes == 45
    with pytest.raises(ValueError, match="give a reference"):
        split.image_vector(distorted, None)
    with pytest.raises(ValueError, match="not a full-reference backbone"):
        export_pair_parts(backbones.get_backbone("compact"), tmp_path, "nr")


def test_bundle_keeps_pair_parts_and_refuses_a_tampered_part(tmp_path: Path) -> None:
    import fusion
    from backbones import sha256_of
    from backbones.export import export_pair_parts
    from fusion.backbone_extractor import BackboneExtractor
    from fusion.bundle import BundleError, load_bundle, save_bundle
    from fusion.distortions import distort
    from fusion.features import FULL_REFERENCE_EXTRACTORS
    from fusion.model import FusionModel

    model = backbones.get_backbone("compact", mode="fr")
    full = export_litert(model, tmp_path / "compact_fr.tflite")
    parts = export_pair_parts(model, tmp_path, "compact_fr")
    backbone = BackboneExtractor("compact", full, sha256_of(full), parts=parts)
    extractors = [backbone, *FULL_REFERENCE_EXTRACTORS]
    rows, scores, groups = [], [], []
    for index, name in enumerate(fusion.EXAMPLE_NAMES):
        reference = fusion.example_pair(name)[0]
        for kind in ("gaussian_noise", "gaussian_blur", "jpeg", "contrast_decrease"):
            for level in (1, 3, 5):
                distorted = distort(reference, kind, level, image_index=index)
                parts_values = FusionModel("fr", extractors).extract(distorted, reference)
                rows.append([v for values in parts_values.values() for v in values.values()])
                scores.append(100 * (1 - level / 6))
                groups.append(name)
    fitted = FusionModel("fr", extractors, coverage=0.5).fit(
        np.array(rows), np.array(scores), groups=np.array(groups))
    reference, distorted = fusion.example_pair("astronaut_blur")
    expected = fitted.predict(distorted, reference)
    save_bundle(fitted, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.extractors[0].pair_runtime is not None  # type: ignore[attr-defined]
    assert loaded.predict(distorted, reference).score == pytest.approx(expected.score,
                                                                      abs=1e-9)
    trunk_file = tmp_path / "bundle" / "backbones" / "bb_compact_fr.trunk.tflite"
    data = bytearray(trunk_file.read_bytes())
    data[len(data) // 2] ^= 0x01
    trunk_file.write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"trunk\.tflite does not match its SHA-256"):
        load_bundle(tmp_path / "bundle")

