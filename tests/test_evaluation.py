"""Baseline report and the evaluate command on small data made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.cli import main
from fusion.datasets import read_manifest
from fusion.distortions import generate_synthetic
from fusion.evaluation import format_markdown, human_baselines, published_srcc, severity_baselines
from fusion.feature_table import compute_features


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    pristine = root / "pristine"
    pristine.mkdir()
    for name in fusion.EXAMPLE_NAMES:
        PILImage.fromarray(fusion.example_pair(name)[0]).save(pristine / f"{name}.png")
    generate_synthetic(pristine, root / "set", kinds=["gaussian_noise", "gaussian_blur", "jpeg"])
    return root / "set"


def test_every_feature_follows_severity(synthetic: Path) -> None:
    dataset = read_manifest(synthetic / "manifest.csv", name="synthetic")
    table = compute_features(dataset, progress=False)
    rows = severity_baselines(dataset, table)
    assert {r.group for r in rows} == {"gaussian_noise", "gaussian_blur", "jpeg"}
    for row in rows:  # signed: positive means "worse image, worse feature value"
        assert row.srcc > 0.6, row
    assert "| **mean** |" in format_markdown(rows, severity=True)


def test_human_baselines_on_a_rated_manifest(synthetic: Path, tmp_path: Path) -> None:
    dataset = read_manifest(synthetic / "manifest.csv")
    # A made-up "human" score that falls with level: the features must agree with it.
    lines = ["image,reference,score,content_id"]
    for item in dataset:
        assert item.level is not None and item.reference is not None
        lines.append(f"{item.image},{item.reference},{100 - 18 * item.level},{item.content_id}")
    (tmp_path / "rated.csv").write_text("\n".join(lines) + "\n")
    rated = read_manifest(tmp_path / "rated.csv", name="rated")
    table = compute_features(rated, progress=False)
    rows = human_baselines(rated, table)
    assert {r.feature for r in rows} == set(table.feature_names)
    assert all(r.srcc > 0.5 and r.plcc > 0.5 for r in rows)
    text = format_markdown(rows)
    assert text.count("\n") == len(rows) + 1
    assert main(["evaluate", "manifest", str(tmp_path / "rated.csv"), "--cache",
                 str(tmp_path / "c.h5")]) == 0


@pytest.mark.shared_data
def test_published_srcc_parsing(shared_data: Path) -> None:
    table = shared_data / "reference_values" / "published_correlations.csv"
    live = published_srcc(table, "live")
    # Source: the file's ssim/ms_ssim/psnr rows, LIVE column (PLCC/SRCC/KRCC).
    assert live == {"ssim": 0.9103, "ms_ssim": 0.9508, "psnr": 0.873}
    assert published_srcc(table, "nope") == {}


def test_evaluate_command_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "tid2013", str(tmp_path)]) == 1
    assert "score file not found" in capsys.readouterr().err
    (tmp_path / "nr.csv").write_text("image,score\na.png,1\nb.png,2\nc.png,3\n")
    assert main(["evaluate", "manifest", str(tmp_path / "nr.csv")]) == 1
    assert "no-reference" in capsys.readouterr().err


def test_feature_table_column_lookup(synthetic: Path) -> None:
    table = compute_features(read_manifest(synthetic / "manifest.csv")[:3], progress=False)
    assert np.array_equal(table.column("psnr"), table.values[:, 1])
    with pytest.raises(KeyError, match="no feature 'nope'"):
        table.column("nope")
