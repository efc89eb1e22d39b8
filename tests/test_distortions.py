"""Synthetic distortions: graded, monotone in severity, seeded, resumable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.datasets import read_manifest
from fusion.distortions import DISTORTIONS, LEVELS, distort, generate_synthetic

REFERENCES = [fusion.example_pair(name)[0] for name in fusion.EXAMPLE_NAMES]


def test_at_least_ten_types_five_levels() -> None:
    assert len(DISTORTIONS) >= 10 and LEVELS == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("kind", DISTORTIONS)
def test_psnr_falls_with_level(kind: str) -> None:
    for index, reference in enumerate(REFERENCES):
        psnrs = [fusion.psnr(reference, distort(reference, kind, level, image_index=index))
                 for level in LEVELS]
        assert np.all(np.diff(psnrs) < 0), (kind, index, psnrs)


def test_seeded_and_order_independent() -> None:
    ref = REFERENCES[0]
    a = distort(ref, "gaussian_noise", 3, seed=5)
    assert np.array_equal(a, distort(ref, "gaussian_noise", 3, seed=5))
    assert not np.array_equal(a, distort(ref, "gaussian_noise", 3, seed=6))
    assert not np.array_equal(a, distort(ref, "gaussian_noise", 3, seed=5, image_index=1))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="did you mean 'jpeg'"):
        distort(REFERENCES[0], "jpge", 1)
    with pytest.raises(ValueError, match="level of 'jpeg' must be one of"):
        distort(REFERENCES[0], "jpeg", 6)
    with pytest.raises(ValueError, match="uint8 RGB"):
        distort(REFERENCES[0].astype(float), "jpeg", 1)


def test_generate_synthetic_dataset_and_resume(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    pristine.mkdir()
    for name, ref in zip(("one", "two"), REFERENCES[:2], strict=True):
        PILImage.fromarray(ref).save(pristine / f"{name}.png")
    out = tmp_path / "synthetic"
    ds = generate_synthetic(pristine, out, kinds=["jpeg", "gaussian_blur"], levels=(1, 5),
                            max_side=160)
    assert ds.mode == "fr" and ds.scale is None and len(ds) == 2 * 2 * 2
    assert set(ds.content_ids) == {"one", "two"} and ds.missing_files() == []
    assert {i.distortion for i in ds} == {"jpeg", "gaussian_blur"}
    assert np.isnan(ds.scores).all()
    with PILImage.open(ds[0].image) as img:
        assert max(img.size) == 160
    again = read_manifest(out / "manifest.csv")
    assert [i.level for i in again] == [i.level for i in ds]
    stamp = ds[0].image.stat().st_mtime_ns
    generate_synthetic(pristine, out, kinds=["jpeg", "gaussian_blur"], levels=(1, 5),
                       max_side=160)
    assert ds[0].image.stat().st_mtime_ns == stamp  # existing files are kept
    assert not list(out.rglob("*.tmp.png"))
