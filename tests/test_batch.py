"""Batch scoring: same scores as fusion.predict, bad items recorded, resume after SIGKILL,
a Dask LocalCluster on loopback, the output formats and the ``fusion-iqa batch`` command."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.batch import BatchInput, score_batch
from fusion.cli import main
from fusion.distortions import distort
from fusion.examples import EXAMPLE_NAMES, example_paths

REPO_ROOT = Path(__file__).resolve().parents[1]
KINDS = ("gaussian_blur", "jpeg", "gaussian_noise", "contrast_decrease")


def _read_rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def pair_folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[str]]:
    """24 good pairs (3 contents × 4 distortions × 2 levels) and 3 bad ones."""
    root = tmp_path_factory.mktemp("batch")
    distorted, references = root / "distorted", root / "references"
    distorted.mkdir()
    references.mkdir()
    good = []
    for name in EXAMPLE_NAMES:
        reference = np.asarray(PILImage.open(example_paths(name)[0]).convert("RGB"))
        for kind in KINDS:
            for level in (1, 3):
                file = f"{name}_{kind}_{level}.png"
                PILImage.fromarray(distort(reference, kind, level)).save(distorted / file)
                PILImage.fromarray(reference).save(references / file)
                good.append(file)
    # bad items: a truncated file, a shape mismatch, a distorted image without reference
    data = (distorted / good[0]).read_bytes()
    (distorted / "zz_corrupt.png").write_bytes(data[: len(data) // 3])
    (references / "zz_corrupt.png").write_bytes((references / good[0]).read_bytes())
    PILImage.open(distorted / good[1]).crop((0, 0, 300, 200)).save(distorted / "zz_shape.png")
    (references / "zz_shape.png").write_bytes((references / good[1]).read_bytes())
    (distorted / "zz_orphan.png").write_bytes((distorted / good[2]).read_bytes())
    return distorted, references, good


@pytest.fixture(scope="module")
def sequential_run(pair_folders: tuple[Path, Path, list[str]],
                   tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    distorted, references, _ = pair_folders
    out = tmp_path_factory.mktemp("sequential") / "scores.csv"
    summary = score_batch(distorted, out, references=references, progress=False)
    assert (summary.scored, summary.failed, summary.from_cache) == (24, 3, 0)
    return _read_rows(out)


def test_batch_scores_equal_predict_and_bad_items_are_reported(
        pair_folders: tuple[Path, Path, list[str]],
        sequential_run: list[dict[str, str]]) -> None:
    distorted, references, good = pair_folders
    rows = {row["id"]: row for row in sequential_run}
    assert list(rows) == sorted(rows)  # written in input order
    for file in good:
        expected = fusion.predict(distorted / file, references / file)
        row = rows[file]
        assert row["status"] == "ok" and row["error"] == ""
        assert expected.diagnostics is not None
        assert row["family"] == expected.diagnostics.family
        assert float(row["family_p"]) == pytest.approx(expected.diagnostics.probability)
        np.testing.assert_allclose(float(row["score"]), expected.score, rtol=1e-12)
        np.testing.assert_allclose([float(row["low"]), float(row["high"])],
                                   expected.interval, rtol=1e-12)
        assert row["model"] == expected.model and row["mode"] == "fr"
    assert rows["zz_corrupt.png"]["status"] == "error"
    assert "corrupt or truncated" in rows["zz_corrupt.png"]["error"]
    assert rows["zz_shape.png"]["error"].startswith("ShapeMismatchError")
    assert "no reference named 'zz_orphan.png'" in rows["zz_orphan.png"]["error"]
    assert all(rows[k]["score"] == "" for k in ("zz_corrupt.png", "zz_shape.png"))
    assert all(rows[k]["family"] == rows[k]["family_p"] == ""
               for k in ("zz_corrupt.png", "zz_shape.png"))


def _start_batch(distorted: Path, references: Path, out: Path, cache: Path, *,
                 chunk_size: int) -> subprocess.Popen[bytes]:
    """A batch job in a subprocess, committing its cache after every item."""
    script = (
        "from fusion.batch import score_batch\n"
        f"score_batch({str(distorted)!r}, {str(out)!r}, references={str(references)!r}, "
        f"cache={str(cache)!r}, chunk_size={chunk_size}, checkpoint_seconds=0, "
        "progress=False)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", script], env=env)


def test_killed_batch_resumes_from_the_cache(pair_folders: tuple[Path, Path, list[str]],
                                             sequential_run: list[dict[str, str]],
                                             tmp_path: Path) -> None:
    distorted, references, _ = pair_folders
    out, cache = tmp_path / "scores.csv", tmp_path / "features.h5"
    partial = tmp_path / ".scores.csv.partial"
    process = _start_batch(distorted, references, out, cache, chunk_size=2)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if partial.exists() and len(partial.read_text().splitlines()) >= 1 + 8:
                break
            assert process.poll() is None, "the batch ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("the batch wrote no rows within 120 s")
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert not out.exists(), "a killed job must not leave a half-written output"
    done = len(partial.read_text().splitlines()) - 1
    assert 8 <= done < 27

    summary = score_batch(distorted, out, references=references, cache=cache, progress=False)
    # every row written before the kill had its features committed first
    assert done <= summary.from_cache < 24 and summary.scored == 24
    assert summary.failed == 3 and not partial.exists()
    resumed = _read_rows(out)
    assert [r["id"] for r in resumed] == [r["id"] for r in sequential_run]
    for before, after in zip(sequential_run, resumed, strict=True):
        assert before["status"] == after["status"]
        if before["status"] == "ok":
            np.testing.assert_allclose(float(after["score"]), float(before["score"]),
                                       rtol=1e-12)
    fully_cached = score_batch(distorted, tmp_path / "again.csv", references=references,
                               cache=cache, progress=False)
    assert fully_cached.from_cache == 24 and fully_cached.scored == 24


def test_a_batch_killed_inside_a_chunk_keeps_the_features_it_committed(
        pair_folders: tuple[Path, Path, list[str]], tmp_path: Path) -> None:
    # One chunk holds every item, so no row is written before the kill: whatever the
    # rerun takes from the cache was committed inside the chunk (checkpoint_seconds=0:
    # after every item).
    from fusion.cache import FeatureCache

    distorted, references, _ = pair_folders
    out, cache = tmp_path / "scores.csv", tmp_path / "features.h5"
    process = _start_batch(distorted, references, out, cache, chunk_size=1000)
    committed = 0
    per_item = len(fusion.api.default_model("fr").extractors)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and committed < 6:
            assert process.poll() is None, "the batch ended before it could be killed"
            if cache.exists():
                with contextlib.suppress(OSError, ValueError), \
                        FeatureCache(cache, mode="r") as reader:
                    committed = len(reader) // per_item
            time.sleep(0.05)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait(timeout=30)
    assert committed >= 6, "no features were committed inside the chunk within 120 s"
    partial = tmp_path / ".scores.csv.partial"
    assert not out.exists()
    assert not partial.exists() or len(partial.read_text().splitlines()) <= 1  # header only
    summary = score_batch(distorted, out, references=references, cache=cache, progress=False)
    assert committed <= summary.from_cache < 24 and summary.scored == 24


def test_parallel_jobs_and_dask_cluster_give_the_same_scores(
        pair_folders: tuple[Path, Path, list[str]], sequential_run: list[dict[str, str]],
        tmp_path: Path) -> None:
    distributed = pytest.importorskip("dask.distributed")
    distorted, references, _ = pair_folders
    score_batch(distorted, tmp_path / "jobs2.csv", references=references, jobs=2,
                chunk_size=8, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        summary = score_batch(distorted, tmp_path / "dask.csv", references=references,
                              scheduler=cluster.scheduler_address, chunk_size=8,
                              progress=False)
    assert (summary.scored, summary.failed) == (24, 3)
    local, cluster_rows = _read_rows(tmp_path / "jobs2.csv"), _read_rows(tmp_path / "dask.csv")
    assert local == cluster_rows  # same worker settings: identical files
    for row, reference_row in zip(local, sequential_run, strict=True):
        assert row["status"] == reference_row["status"]
        if row["status"] == "ok":  # one LiteRT thread per worker vs all cores: float noise
            np.testing.assert_allclose(float(row["score"]), float(reference_row["score"]),
                                       rtol=1e-6)


def test_output_formats_hold_the_same_rows(pair_folders: tuple[Path, Path, list[str]],
                                           sequential_run: list[dict[str, str]],
                                           tmp_path: Path) -> None:
    distorted, references, _ = pair_folders
    cache = tmp_path / "features.h5"
    score_batch(distorted, tmp_path / "scores.csv", references=references, cache=cache,
                progress=False)
    score_batch(distorted, tmp_path / "scores.jsonl", references=references, cache=cache,
                progress=False)
    lines = [json.loads(line) for line in (tmp_path / "scores.jsonl").read_text().splitlines()]
    assert [r["id"] for r in lines] == [r["id"] for r in sequential_run]
    assert 0 < lines[0]["components"]["haarpsi"] <= 1
    assert lines[-1]["score"] is None and lines[-1]["status"] == "error"
    pq = pytest.importorskip("pyarrow.parquet")
    score_batch(distorted, tmp_path / "scores.parquet", references=references, cache=cache,
                progress=False)
    table = pq.read_table(tmp_path / "scores.parquet").to_pylist()
    assert [r["score"] for r in table] == [r["score"] for r in lines]
    assert table[0]["from_cache"] is True


def test_manifest_input_mixes_modes_and_reports_bad_rows(tmp_path: Path) -> None:
    reference, image = example_paths(EXAMPLE_NAMES[0])
    manifest = tmp_path / "items.csv"
    manifest.write_text(
        "id,image,reference\n"
        f"pair,{image},{reference}\n"
        f"alone,{image},\n"
        ",,\n"  # a blank row is skipped
        f"missing,does_not_exist.png,{reference}\n"
        f"noimage,,{reference}\n")
    assert len(BatchInput(manifest)) == 4
    summary = score_batch(manifest, tmp_path / "out.csv", progress=False)
    rows = {r["id"]: r for r in _read_rows(tmp_path / "out.csv")}
    assert (summary.scored, summary.failed) == (2, 2)
    assert float(rows["pair"]["score"]) == pytest.approx(fusion.predict(image, reference).score)
    assert float(rows["alone"]["score"]) == pytest.approx(fusion.predict(image).score)
    assert rows["alone"]["mode"] == "nr"
    assert "does_not_exist.png" in rows["missing"]["error"]
    assert "empty 'image' cell" in rows["noimage"]["error"]


def test_a_model_of_the_other_mode_is_an_item_error(tmp_path: Path) -> None:
    from fusion.api import default_bundle_path

    reference, image = example_paths(EXAMPLE_NAMES[0])
    manifest = tmp_path / "items.csv"
    manifest.write_text(f"image,reference\n{image},{reference}\n{image},\n")
    summary = score_batch(manifest, tmp_path / "out.csv", model=default_bundle_path("nr"),
                          progress=False)
    rows = _read_rows(tmp_path / "out.csv")
    assert (summary.scored, summary.failed) == (1, 1)
    assert "is nr; this item is fr" in rows[0]["error"] and rows[1]["status"] == "ok"


def test_a_preset_name_selects_its_no_reference_model(tmp_path: Path) -> None:
    _, image = example_paths(EXAMPLE_NAMES[0])
    manifest = tmp_path / "items.csv"
    manifest.write_text(f"image\n{image}\n")
    summary = score_batch(manifest, tmp_path / "out.csv", model="fast", progress=False)
    rows = _read_rows(tmp_path / "out.csv")
    assert summary.scored == 1 and rows[0]["model"].startswith("fast_nr@")
    assert float(rows[0]["score"]) == pytest.approx(fusion.predict(image, preset="fast").score)
    assert rows[0]["family"] == ""  # the fast model has no diagnostics


def test_a_failing_job_leaves_the_previous_output_alone(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    import fusion.batch

    _, image = example_paths(EXAMPLE_NAMES[0])
    manifest = tmp_path / "items.csv"
    manifest.write_text("image\n" + f"{image}\n" * 3)
    out = tmp_path / "out.csv"
    out.write_text("previous results\n")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(fusion.batch, "_score_chunk", interrupted)
    with pytest.raises(KeyboardInterrupt):
        score_batch(manifest, out, progress=False)
    assert out.read_text() == "previous results\n"
    assert not (tmp_path / ".out.csv.partial").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"out": "scores.txt"}, "must be .csv, .jsonl or .parquet"),
    ({"jobs": 0}, "jobs must be a positive integer"),
    ({"chunk_size": 0}, "chunk_size must be a positive integer"),
])
def test_bad_batch_arguments_are_refused(tmp_path: Path, kwargs: dict[str, object],
                                         message: str) -> None:
    (tmp_path / "in").mkdir()
    arguments = {"out": "scores.csv", **kwargs}
    out = tmp_path / str(arguments.pop("out"))
    with pytest.raises(ValueError, match=message):
        score_batch(tmp_path / "in", out, progress=False, **arguments)  # type: ignore[arg-type]


def test_output_and_cache_paths_are_checked_before_any_work(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    import fusion.batch as batch

    folder = tmp_path / "images"
    folder.mkdir()
    PILImage.open(example_paths("coffee_jpeg")[1]).save(folder / "a.png")
    (tmp_path / "x.csv").mkdir()  # a folder named like the output
    (tmp_path / "file").write_text("not a folder")
    started: list[int] = []
    monkeypatch.setattr(batch, "_score_chunk", lambda *a, **k: started.append(1) or [])
    for out, cache, message in [
        (tmp_path / "x.csv", None, "is an existing folder"),
        (tmp_path / "file" / "out.csv", None, "is not a folder"),
        (tmp_path / "out.txt", None, "suffix must be"),
        (tmp_path / "out.csv", tmp_path / "x.csv", "cache .* is an existing folder"),
    ]:
        with pytest.raises(ValueError, match=message):
            score_batch(folder, out, cache=cache, progress=False)
    assert started == [] and (tmp_path / "x.csv").is_dir()
    assert main(["batch", str(folder), "--out", str(tmp_path / "x.csv")]) == 1


def test_batch_input_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        BatchInput(tmp_path / "nowhere")
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,score\na.png,3\n")
    with pytest.raises(ValueError, match="no 'image' column"):
        BatchInput(manifest)
    manifest.write_text("image\na.png\n")
    with pytest.raises(ValueError, match="reference folder goes with a folder"):
        BatchInput(manifest, tmp_path)


def test_batch_command_exit_codes(pair_folders: tuple[Path, Path, list[str]],
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    distorted, references, good = pair_folders
    clean = tmp_path / "clean"
    clean.mkdir()
    for file in good[:2]:
        (clean / file).write_bytes((distorted / file).read_bytes())
    assert main(["batch", str(clean), "--out", str(tmp_path / "nr.csv")]) == 0
    assert "scored 2, failed 0" in capsys.readouterr().out
    assert main(["batch", str(distorted), str(references), "--out",
                 str(tmp_path / "fr.csv"), "--cache", str(tmp_path / "c.h5")]) == 3
    assert "scored 24, failed 3" in capsys.readouterr().out
    assert main(["batch", str(clean), "--out", str(tmp_path / "x.txt")]) == 1
    assert "must be .csv, .jsonl or .parquet" in capsys.readouterr().err
    with pytest.raises(SystemExit) as usage:
        main(["batch", str(clean)])
    assert usage.value.code == 2
    with pytest.raises(SystemExit):
        main(["batch", "--help"])
    assert "--scheduler tcp://" in capsys.readouterr().out


def test_a_locked_cache_is_refused_without_leaving_files(tmp_path: Path) -> None:
    from fusion.cache import CacheLockedError

    _, image = example_paths(EXAMPLE_NAMES[0])
    manifest = tmp_path / "items.csv"
    manifest.write_text(f"image\n{image}\n")
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:  # a live process other than this one holds the write lock
        (tmp_path / "features.h5.lock").write_text(str(holder.pid))
        with pytest.raises(CacheLockedError, match=f"written by process {holder.pid}"):
            score_batch(manifest, tmp_path / "out.csv", cache=tmp_path / "features.h5",
                        progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / ".out.csv.partial").exists()
