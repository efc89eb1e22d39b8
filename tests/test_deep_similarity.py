"""The deep-feature similarity extractor (fusion.features.deep_similarity)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

import fusion
import fusion.features.deep_similarity as deep
from fusion.distortions import distort
from fusion.features.deep_similarity import DeepSimilarityExtractor


def _terms(values: dict[str, float], term: str) -> np.ndarray:
    return np.array([v for k, v in values.items() if k.endswith(term)])


def test_identical_pair_is_perfect_and_noise_is_graded() -> None:
    extractor = DeepSimilarityExtractor()
    reference = fusion.example_pair("coffee_jpeg")[0]
    same = extractor.compute(reference, reference)
    assert len(same) == 15 and list(same) == list(extractor.feature_names)
    np.testing.assert_allclose(_terms(same, "_distance"), 0.0, atol=1e-6)
    np.testing.assert_allclose(_terms(same, "_structure"), 1.0, atol=1e-5)
    np.testing.assert_allclose(_terms(same, "_texture"), 1.0, atol=1e-5)
    distances, structures = [], []
    for level in (1, 3, 5):
        values = extractor.compute(distort(reference, "kadid_white_noise", level), reference)
        distances.append(_terms(values, "_distance").mean())
        structures.append(_terms(values, "_structure").mean())
    assert 0 < distances[0] < distances[1] < distances[2]
    assert 1 > structures[0] > structures[1] > structures[2]


def test_small_pairs_are_enlarged_not_refused() -> None:
    reference = fusion.example_pair("coffee_jpeg")[0][:100, :150]
    values = DeepSimilarityExtractor().compute(distort(reference, "kadid_jpeg", 5), reference)
    assert all(np.isfinite(v) for v in values.values())
    assert _terms(values, "_distance").mean() > 0


def test_a_changed_graph_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / deep.DEEP_SIMILARITY_FILE.name
    shutil.copyfile(deep.DEEP_SIMILARITY_FILE, copy)
    with open(copy, "r+b") as handle:
        handle.seek(2000)
        byte = handle.read(1)
        handle.seek(2000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(deep, "DEEP_SIMILARITY_FILE", copy)
    reference = fusion.example_pair("coffee_jpeg")[0]
    with pytest.raises(ValueError, match="SHA-256"):
        DeepSimilarityExtractor().compute(reference, reference)
    monkeypatch.setattr(deep, "DEEP_SIMILARITY_FILE", tmp_path / "missing.tflite")
    with pytest.raises(FileNotFoundError, match="deep-similarity graph missing"):
        DeepSimilarityExtractor().compute(reference, reference)


@pytest.mark.slow
def test_shipped_graph_is_what_the_builder_makes() -> None:
    pytest.importorskip("keras")
    from backbones.runtime import LiteRTFunction
    from backbones.similarity import build_deep_similarity, similarity_names

    model = build_deep_similarity("efficientnet_lite0")
    pairs = np.random.default_rng(1).random((3, 224, 224, 6)).astype(np.float32)
    expected = np.asarray(model(pairs))
    actual = LiteRTFunction(deep.DEEP_SIMILARITY_FILE)(pairs)
    np.testing.assert_allclose(actual, expected, atol=1e-4)
    assert [f"deep_{n}" for n in similarity_names()] == list(
        DeepSimilarityExtractor.feature_names)


def test_a_model_with_deep_similarity_survives_a_bundle(tmp_path: Path) -> None:
    from fusion.features import FULL_REFERENCE_EXTRACTORS
    from fusion.features.contract import run_extractors

    extractors = (*FULL_REFERENCE_EXTRACTORS, DeepSimilarityExtractor())
    rows, scores, groups = [], [], []
    for index, name in enumerate(fusion.EXAMPLE_NAMES):
        reference = fusion.example_pair(name)[0]
        for level in (1, 2, 3, 4, 5, 6, 7):
            distorted = distort(reference, "kadid_gaussian_blur", level, image_index=index)
            parts = run_extractors(extractors, distorted, reference)
            rows.append([v for part in parts.values() for v in part.values()])
            scores.append(100.0 - 12.0 * level)
            groups.append(name)
    model = fusion.FusionModel("fr", extractors, monotone=True, coverage=0.5)
    model.fit(np.array(rows), np.array(scores), groups=np.array(groups))
    fusion.save(model, tmp_path / "bundle")
    loaded = fusion.load(tmp_path / "bundle")
    assert [e.key for e in loaded.extractors][-1] == "deep_similarity_V1"
    reference, distorted = fusion.example_pair("coffee_jpeg")
    assert loaded.predict(distorted, reference).score == pytest.approx(
        model.predict(distorted, reference).score)
