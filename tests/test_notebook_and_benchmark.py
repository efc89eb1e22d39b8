"""The retraining notebook runs top to bottom on a CLIVE subset and saves a bundle that
loads; the benchmark's quick mode writes well-formed outputs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import fusion

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO_ROOT / "notebooks" / "retrain_stacker.ipynb"


def test_notebook_is_stored_without_outputs() -> None:
    nbformat = pytest.importorskip("nbformat")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and all(not cell.outputs and cell.execution_count is None for cell in code)
    # public API only: nothing private is imported or called
    source = "\n".join(cell.source for cell in code)
    assert "._" not in source.replace("os.environ", "") and "import _" not in source


@pytest.mark.slow
def test_retrain_notebook_runs_and_saves_a_loadable_bundle(
        shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    manifest = shared_data / "clive" / "manifest.csv"
    if not manifest.is_file():
        pytest.skip(f"{manifest} not found")
    for name, value in {"DATA": str(manifest), "SUBSET": "70", "OUT": "bundle",
                        "CACHE": "features.h5"}.items():
        monkeypatch.setenv(f"FUSION_IQA_NOTEBOOK_{name}", value)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    printed = "\n".join(output.get("text", "") for cell in notebook.cells
                        for output in cell.get("outputs", []))
    assert "clive: 70 items" in printed and "retrained" in printed and "default" in printed
    model = fusion.load(tmp_path / "bundle")
    assert model.mode == "nr" and model.name.startswith("retrained_clive@")
    assert model.metadata["training_data"]["items"] < 70  # the held-out part was left out
    srcc = model.metadata["heldout_metrics"]["fused"]["srcc"]
    assert np.isfinite(srcc) and -1 <= srcc <= 1
    _, image = fusion.example_pair()
    assert 0 <= model.predict(image).score <= 100


@pytest.mark.slow
def test_benchmark_quick_mode_writes_its_outputs(shared_data: Path, tmp_path: Path) -> None:
    clive = shared_data / "clive" / "manifest.csv"
    if not (clive.is_file() and (shared_data / "pristine" / "kodak").is_dir()):
        pytest.skip("the quick benchmark needs clive/ and pristine/kodak/ in the shared data")
    # a second no-reference database (other CLIVE images) exercises the cross-database part
    lines = clive.read_text().splitlines()
    second = tmp_path / "other.csv"
    header, rows = lines[0], lines[-90:]
    columns = header.split(",")
    image_column = columns.index("image")
    absolute = [",".join(str(clive.parent / v) if i == image_column else v
                         for i, v in enumerate(row.split(","))) for row in rows]
    second.write_text("\n".join([header, *absolute]) + "\n")
    out = tmp_path / "bench"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "benchmark.py"), "--quick",
         "--out", str(out), "--data", str(shared_data), "--database", f"manifest={second}"],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((out / "benchmark.json").read_text())
    names = [d["name"] for d in report["databases"]]
    assert names == ["clive", "synthetic_kodak", "other"]
    for database in report["databases"]:
        summary = database["summary"]
        assert "fused" in summary and any(m.startswith("handcrafted") for m in summary)
        # the no-reference default fuses a backbone; the full-reference one has none
        assert any(m.startswith("backbone") for m in summary) == (database["mode"] == "nr")
        for values in summary.values():
            assert set(values) == {f"{m}_{s}" for m in ("srcc", "krcc", "plcc", "rmse")
                                   for s in ("mean", "std")}
        assert all(len(rows) == report["folds"] for rows in database["folds"].values())
    synthetic = report["databases"][1]["summary"]
    assert "peer scikit-image SSIM" in synthetic and "feature psnr" in synthetic
    assert [(r["train"], r["test"]) for r in report["cross_database"]] == [
        ("clive", "other"), ("other", "clive")]
    assert any(k.startswith("nr") for k in report["speed"]) and \
        any(k.startswith("fr") for k in report["speed"])
    assert report["cold_start"]["tensorflow_imported"] is False
    markdown = (out / "benchmark.md").read_text()
    assert "| **fused** |" in markdown and "## Speed" in markdown
    assert markdown.strip() in result.stdout
    for png in ("srcc.png", "scatter_clive.png", "scatter_synthetic_kodak.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.slow
def test_fr_calibrated_quick_mode_reports_every_family(shared_data: Path,
                                                       tmp_path: Path) -> None:
    kadid = shared_data / "score_files" / "kadid10k" / "names_with_mos.txt"
    if not (kadid.is_file() and (shared_data / "pristine" / "kodak").is_dir()):
        pytest.skip("needs score_files/kadid10k and pristine/kodak in the shared data")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "fr_calibrated.py"), "--quick",
         "--jobs", "2", "--out", str(tmp_path), "--data", str(shared_data)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "quick" / "report.json").read_text())
    assert report["n"] == 6 * 25 * 3 + 6  # six references, three levels, and themselves
    from fusion.kadid import FAMILIES

    assert set(report["leave_one_family_out"]) == set(FAMILIES)
    for family in report["leave_one_family_out"].values():
        assert -1.0 <= family["monotone"] <= 1.0 and len(family["singles"]) == 9
    fused = report["kfold"]["fused (monotone)"]
    # against the calibrated targets, the fused score must at least rank sensibly
    assert fused["srcc"] > 0.7 and "## Leave-one-family-out" in result.stdout
    inside = report["kfold_by_family"]
    assert set(inside) == {*FAMILIES, "LIVE's four types"}
    # LIVE's four types at three levels on six references
    assert inside["LIVE's four types"]["n"] == 6 * 4 * 3
    assert all(-1.0 <= row["fused (monotone)"] <= 1.0 for row in inside.values())
    ceiling = report["in_family_ceiling"]
    assert set(ceiling) == set(FAMILIES) and "## Ceiling inside each family" in result.stdout
    for row in ceiling.values():
        (best, _), (other, weight, blend) = row["best_single"], row["best_blend"]
        assert other != best and weight > 0 and -1.0 <= blend <= 1.0
        assert -1.0 <= row["monotone_inside"] <= 1.0
    novelty = report["novelty"]
    assert set(novelty) == set(FAMILIES) and "## Does a held-out family look new?" in \
        result.stdout
    for row in novelty.values():
        assert row["median_novelty"] > 0 and 0.0 <= row["share_new"] <= 1.0
        assert -1.0 <= row["fallback"] <= 1.0 and -1.0 <= row["haarpsi"] <= 1.0


def _benchmark(name: str) -> Any:
    """``benchmarks/<name>.py`` as a module (benchmarks/ is not a package)."""
    import importlib

    sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO_ROOT / "benchmarks"))


def _fr_calibrated() -> Any:
    return _benchmark("fr_calibrated")


def test_novelty_is_about_one_for_a_seen_kind_and_large_for_a_new_one() -> None:
    novelty = _fr_calibrated().novelty
    rng = np.random.default_rng(0)
    seen = rng.normal(size=(400, 3))  # 40 contents × 10 pairs of one kind
    contents = np.repeat([f"c{i}" for i in range(40)], 10)
    same_kind = rng.normal(size=(100, 3))
    new_kind = rng.normal(size=(100, 3)) + np.array([6.0, 0.0, 0.0])
    signatures = np.vstack([seen, same_kind, new_kind])
    all_contents = np.r_[contents, ["t"] * 200]
    train = np.arange(400)
    familiar = novelty(signatures, all_contents, train, np.arange(400, 500))
    unseen = novelty(signatures, all_contents, train, np.arange(500, 600))
    assert np.median(familiar) <= 1.0 and np.mean(familiar > 1.0) < 0.2
    assert np.median(unseen) > 3.0 and np.all(unseen > 1.0)


def test_best_blend_finds_the_feature_that_completes_the_anchor() -> None:
    best_blend = _fr_calibrated().best_blend
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 400))
    target = a + b  # the anchor sees a, "helper" sees b (lower is better), "noise" nothing
    values = np.column_stack([a, -b, rng.normal(size=400)])
    srcc, other, weight = best_blend(values, target, np.arange(400),
                                     ["anchor", "helper", "noise"], [1, -1, 1], "anchor")
    assert (other, weight) == ("helper", 1.0) and srcc > 0.99


def test_stored_tuned_qualities_round_trip_and_refuse_other_images(tmp_path: Path) -> None:
    from types import SimpleNamespace

    nr_tuning = _benchmark("nr_tuning")
    dataset = [SimpleNamespace(image=Path(f"/data/clive/images/{i}.png")) for i in range(6)]
    folds = np.array([0, 1, 2, 0, 1, 2])
    stem = tmp_path / "qualities_s5_e12"
    lite0 = np.array([10.0, 20.5, 30.25, 40.0, 55.5, 61.0])
    reports = {"lite0": [{"fold": 0, "heldout_srcc": 0.5}]}
    nr_tuning.write_stored(stem, dataset, folds, {"lite0": lite0}, reports)
    nr_tuning.write_stored(stem, dataset, folds, {"lite1": lite0[::-1]},
                           {"lite1": [{"fold": 0, "heldout_srcc": 0.25}]})  # merged
    quality, stored_reports = nr_tuning.read_stored(stem, "lite0", dataset)
    np.testing.assert_allclose(quality, lite0)
    assert stored_reports == reports["lite0"]
    np.testing.assert_allclose(nr_tuning.read_stored(stem, "lite1", dataset)[0], lite0[::-1])
    assert stem.with_suffix(".csv").read_text().splitlines()[1] == "images/0.png,0,10.0000,61.0000"
    assert nr_tuning.read_stored(stem, "lite2", dataset) is None  # not stored
    assert nr_tuning.read_stored(stem, "lite0", dataset[::-1]) is None  # other images


@pytest.mark.slow
def test_diagnostics_quick_mode_reports_both_modes(shared_data: Path, tmp_path: Path) -> None:
    kadid = shared_data / "score_files" / "kadid10k" / "names_with_mos.txt"
    if not (kadid.is_file() and (shared_data / "pristine" / "kodak").is_dir()):
        pytest.skip("needs score_files/kadid10k and pristine/kodak in the shared data")
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "diagnostics.py"), "--quick",
         "--jobs", "2", "--out", str(tmp_path), "--data", str(shared_data)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    # 3 Kodak references: KADID's 25 types and the 13 home-made ones at levels 1 and 5,
    # each reference against itself, its mirror and its 75 % copy (50 % is below 192 px)
    assert report["n"] == 3 * 25 * 2 + 3 + 3 * 13 * 2 + 3 * 2
    from fusion.diagnostics import FAMILY_NAMES

    for mode in ("fr", "nr"):
        part = report[mode]["all"]
        assert part["n"] == report["n"] and 0.0 <= part["ece"] <= 1.0
        assert set(part["recall"]) == set(FAMILY_NAMES)
        assert part["top1"] > 2 / len(FAMILY_NAMES)  # trained on 2 photographs a fold
    assert report["fr"]["all"]["top1"] > 0.6
    assert "level_1" in result.stdout


@pytest.mark.slow
def test_nr_ablation_tuning_and_synthetic_quick_modes(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("keras", reason="the ablation exports its trunk graphs with Keras")
    if not (shared_data / "clive" / "manifest.csv").is_file():
        pytest.skip("needs the CLIVE share in the shared data")
    ablation, tuning = tmp_path / "ablation", tmp_path / "tuning"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "nr_ablation.py"), "--quick",
         "--out", str(ablation), "--data", str(shared_data)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((ablation / "report_quick.json").read_text())
    rows = {r["configuration"]: r for r in report["rows"]}
    assert report["items"] == 80 and report["folds"] == 3
    every = rows["lite0 alone, every stage + head, 9 patches"]
    first = rows["lite0 alone, stages 2,4,6 + head, 9 patches"]
    assert every["dims"] == 2064 and first["dims"] == 40 + 112 + 320 + 1280
    # ImageNet features rank CLIVE photographs well above chance even on 80 images
    assert every["srcc"] > 0.5 and rows["fast preset: Lite0, 4 patches + NSS"]["srcc"] > 0.5
    native = rows["lite0 alone, every stage, whole image at native 500×500, one pass"]
    assert native["dims"] == 2064 and native["srcc"] > 0.5
    assert "| fine-tuned trunks | see benchmarks/nr_tuning.py |" in result.stdout

    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "nr_tuning.py"), "--quick",
         "--out", str(tuning), "--ablation", str(ablation), "--data", str(shared_data)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((tuning / "report_quick.json").read_text())
    folds = report["tuning"]["efficientnet_lite0"]
    assert len(folds) == 3 and all(len(f["validation_srcc"]) == 2 for f in folds)
    # two epochs on ~50 photographs: the cross-fitted tuned quality still ranks above chance
    assert np.mean([f["heldout_srcc"] for f in folds]) > 0.2
    configurations = {r["configuration"] for r in report["rows"]}
    assert "frozen features + tuned qualities + handcrafted" in configurations
    intervals = {r["interval_width"]: r for r in report["interval"]["rows"]}
    assert set(intervals) == {"constant", "by_score"}
    for row in intervals.values():  # 80 photographs, 3 folds: coverage near 90 %, loosely
        assert 0.7 <= row["coverage"] <= 1.0 and 5.0 < row["half_width"] < 40.0

    synthetic = tmp_path / "synthetic"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "benchmarks" / "nr_synthetic.py"), "--quick",
         "--out", str(synthetic), "--ablation", str(ablation), "--work", str(tmp_path / "fr"),
         "--data", str(shared_data)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads((synthetic / "report_quick.json").read_text())
    # the head learns the synthetic damage on contents it did not see (fitted on four of
    # the six references: about 0.39; chance would be about 0 ± 0.05 on 456 images)
    assert report["synthetic_items"] > 400 and report["synthetic_kfold_srcc"] > 0.25
    assert [r["configuration"] for r in report["rows"]] == [
        "accurate preset's blocks + handcrafted", "+ synthetic-quality head"]
    assert report["rows"][1]["dims"] == report["rows"][0]["dims"] + 1
