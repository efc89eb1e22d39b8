"""Shared fixtures: ../shared/data, seeded test images, a small fitted model and its bundle."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

if TYPE_CHECKING:
    from fusion import FusionModel

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_data_dir() -> Path:
    """``$FUSION_IQA_DATA`` or ``../shared/data`` beside the repository."""
    return Path(os.environ.get("FUSION_IQA_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(
            f"shared data not found at {path} (set FUSION_IQA_DATA to the folder holding "
            "reference_values/, clive/, pristine/ ...)"
        )
    return path


@pytest.fixture(scope="session")
def tid2013_pairs(shared_data: Path) -> Path:
    path = shared_data / "reference_values" / "tid2013_pairs"
    if not (path / "official_scores.csv").is_file():
        pytest.skip(f"{path}/official_scores.csv not found")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20261123)


@pytest.fixture(scope="session")
def textured_uint8() -> np.ndarray:
    """A 200×240 RGB uint8 image with texture at several scales (seeded)."""
    gen = np.random.default_rng(7)
    y, x = np.mgrid[0:200, 0:240] / 20.0
    base = 0.5 + 0.25 * np.sin(x * 1.3 + y * 0.7)[..., None] * np.array([1.0, 0.8, 0.6])
    noise = gen.normal(0.0, 0.08, size=(200, 240, 3))
    return np.clip((base + noise) * 255.0 + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ a small fitted model


@pytest.fixture(scope="session")
def small_fr_model() -> FusionModel:
    """A full-reference model on handcrafted features of distorted example pairs.

    Built once per session; tests must not change it (copy a saved bundle instead).
    """
    import fusion
    from fusion.distortions import distort
    from fusion.features import FULL_REFERENCE_EXTRACTORS, full_reference_features

    rows, scores, groups = [], [], []
    for index, name in enumerate(fusion.EXAMPLE_NAMES):
        reference = fusion.example_pair(name)[0]
        for kind in ("gaussian_noise", "gaussian_blur", "jpeg", "contrast_decrease"):
            for level in (1, 2, 3, 4, 5):
                distorted = distort(reference, kind, level, image_index=index)
                rows.append(list(full_reference_features(reference, distorted).values()))
                scores.append(100 * (1 - level / 6))
                groups.append(name)
    return fusion.FusionModel("fr", FULL_REFERENCE_EXTRACTORS, coverage=0.5,
                              name="small_fr").fit(
        np.array(rows), np.array(scores), groups=np.array(groups))


@pytest.fixture(scope="session")
def saved_fr_bundle(small_fr_model: FusionModel, tmp_path_factory: pytest.TempPathFactory
                    ) -> Path:
    """``small_fr_model`` saved once per session; read-only for tests (see ``bundle_copy``)."""
    import fusion

    folder = tmp_path_factory.mktemp("saved") / "bundle"
    fusion.save(small_fr_model, folder, training={"heldout_metrics": {"note": "test"}})
    return folder


@pytest.fixture
def bundle_copy(saved_fr_bundle: Path, tmp_path: Path) -> Path:
    """A private copy of the saved bundle, for a test that damages it."""
    import shutil

    return Path(shutil.copytree(saved_fr_bundle, tmp_path / "bundle"))


def run_fresh_python(code: str) -> str:
    """Run ``code`` in a fresh interpreter from the repository root; return its stdout."""
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=REPO_ROOT, check=False)
    if result.returncode != 0:
        raise AssertionError(f"fresh interpreter failed:\n{result.stderr}")
    return result.stdout
