"""The one extractor contract and its one runner, tested once for every feature source."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

import fusion
from fusion.features import (
    FULL_REFERENCE_EXTRACTORS,
    NO_REFERENCE_EXTRACTORS,
    FullReferenceExtractor,
    NoReferenceExtractor,
    run_extractors,
)
from fusion.io import Image

ALL_HANDCRAFTED = (*FULL_REFERENCE_EXTRACTORS, *NO_REFERENCE_EXTRACTORS)


@pytest.mark.parametrize("extractor", ALL_HANDCRAFTED, ids=lambda e: e.key)
def test_every_extractor_follows_the_contract(extractor: fusion.features.Extractor) -> None:
    assert extractor.key == f"{extractor.name}_V{extractor.version}"
    assert extractor.mode in ("nr", "fr")
    assert len(extractor.higher_is_better) == len(extractor.feature_names)
    assert all(d in (True, False, None) for d in extractor.higher_is_better)
    reference, distorted = fusion.example_pair()
    given = reference if extractor.mode == "fr" else None
    values = extractor.compute(distorted, given)
    assert list(values) == list(extractor.feature_names)
    assert all(np.isfinite(v) for v in values.values())
    if extractor.mode == "fr":
        with pytest.raises(ValueError, match="need a reference"):
            extractor.compute(distorted)
    else:
        with pytest.raises(ValueError, match="take no reference"):
            extractor.compute(distorted, reference)


def test_runner_loads_once_and_skips() -> None:
    reference, distorted = fusion.example_pair()
    parts = run_extractors(FULL_REFERENCE_EXTRACTORS, distorted, reference)
    assert list(parts) == [e.key for e in FULL_REFERENCE_EXTRACTORS]
    flat = {n: v for values in parts.values() for n, v in values.items()}
    assert flat == fusion.full_reference_features(reference, distorted)
    skipped = run_extractors(FULL_REFERENCE_EXTRACTORS, distorted, reference,
                             skip={"psnr_V1", "vifp_V1"})
    assert list(skipped) == [e.key for e in FULL_REFERENCE_EXTRACTORS
                             if e.key not in ("psnr_V1", "vifp_V1")]
    with pytest.raises(ValueError, match="both modes"):
        run_extractors((*FULL_REFERENCE_EXTRACTORS, *NO_REFERENCE_EXTRACTORS), distorted,
                       reference)
    with pytest.raises(fusion.ShapeMismatchError, match="reference has shape"):
        run_extractors(FULL_REFERENCE_EXTRACTORS, distorted[:200], reference)


class _Broken(NoReferenceExtractor):
    name = "broken"
    version = 3
    feature_names: ClassVar[tuple[str, ...]] = ("fine", "bad")
    higher_is_better: ClassVar[tuple[bool | None, ...]] = (True, None)

    def _image(self, image: Image) -> dict[str, float]:
        return {"fine": 1.0, "bad": float("nan")}


class _Infinite(FullReferenceExtractor):
    name = "infinite"
    version = 1
    feature_names: ClassVar[tuple[str, ...]] = ("big",)
    higher_is_better: ClassVar[tuple[bool | None, ...]] = (True,)

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        return {"big": float("inf")}


def test_one_policy_for_a_non_finite_value() -> None:
    # Every path that runs extractors (compute, the runner, the model, the feature table)
    # raises the same named error, naming the extractor and the feature.
    reference, distorted = fusion.example_pair()
    with pytest.raises(fusion.NonFiniteFeatureError, match=r"broken_V3 .*bad=nan"):
        _Broken().compute(distorted)
    with pytest.raises(fusion.NonFiniteFeatureError, match=r"infinite_V1 .*big=inf"):
        run_extractors((*FULL_REFERENCE_EXTRACTORS, _Infinite()), distorted, reference)
    assert issubclass(fusion.NonFiniteFeatureError, ValueError)
    model = fusion.FusionModel("nr", (_Broken(),))
    with pytest.raises(fusion.NonFiniteFeatureError, match="broken_V3"):
        model.extract(distorted)


def test_feature_table_records_a_non_finite_item_as_an_error(tmp_path: Path) -> None:
    from PIL import Image as PILImage

    from fusion.datasets import Dataset, DatasetItem
    from fusion.feature_table import compute_features

    PILImage.fromarray(fusion.example_pair()[1]).save(tmp_path / "a.png")
    dataset = Dataset("one", "nr", (DatasetItem(tmp_path / "a.png", None, 50.0, 50.0, "a"),))
    table = compute_features(dataset, [_Broken()], progress=False)
    assert np.isnan(table.values).all()
    assert "NonFiniteFeatureError" in table.errors[0] and "broken_V3" in table.errors[0]


def test_flat_regions_give_the_documented_nss_value() -> None:
    # NSSExtractor: a shape fit without data is 0 (not NaN), so a flat image is scored.
    flat = np.full((64, 64, 3), 128, np.uint8)
    values = NO_REFERENCE_EXTRACTORS[0].compute(flat)
    assert all(np.isfinite(v) for v in values.values())
