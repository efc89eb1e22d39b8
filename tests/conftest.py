"""Shared fixtures: locating ../shared/data and building seeded test images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

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
