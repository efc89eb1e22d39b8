"""The HDF5 feature cache: reuse, invalidation by version, atomic writes, one writer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image as PILImage

import fusion
from fusion.cache import CacheLockedError, FeatureCache, content_key
from fusion.datasets import Dataset, DatasetItem
from fusion.feature_table import compute_features, compute_features_parallel
from fusion.features import FULL_REFERENCE_EXTRACTORS, FullReferenceExtractor, SSIMExtractor
from fusion.io import Image

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def pairs(tmp_path: Path) -> Dataset:
    """12 full-reference pairs on disk: 3 references × 4 noise levels, plus a broken one."""
    items = []
    rng = np.random.default_rng(0)
    for name in fusion.EXAMPLE_NAMES:
        ref = fusion.example_pair(name)[0][:200, :200]
        ref_path = tmp_path / f"{name}.png"
        PILImage.fromarray(ref).save(ref_path)
        for level in range(4):
            noisy = np.clip(ref + rng.normal(0, 4 + 6 * level, ref.shape), 0, 255)
            path = tmp_path / f"{name}_{level}.png"
            PILImage.fromarray(noisy.astype(np.uint8)).save(path)
            items.append(DatasetItem(path, ref_path, None, None, name, "noise", level + 1))
    (tmp_path / "broken.png").write_bytes(b"not an image")
    items.append(DatasetItem(tmp_path / "broken.png", tmp_path / f"{fusion.EXAMPLE_NAMES[0]}.png",
                             None, None, "broken"))
    return Dataset(name="pairs", mode="fr", items=tuple(items))


def test_second_run_computes_nothing(pairs: Dataset, tmp_path: Path) -> None:
    cache_path = tmp_path / "features.h5"
    first = compute_features(pairs, cache=cache_path, progress=False)
    assert first.computed == 12 * len(FULL_REFERENCE_EXTRACTORS) and first.from_cache == 0
    assert list(first.errors) == [12] and "ImageReadError" in first.errors[12]
    second = compute_features(pairs, cache=cache_path, progress=False)
    assert second.computed == 0 and second.from_cache == 12 * len(FULL_REFERENCE_EXTRACTORS)
    np.testing.assert_array_equal(first.values, second.values)
    plain = compute_features(pairs, progress=False)
    np.testing.assert_array_equal(first.values, plain.values)


class SSIMv2(SSIMExtractor):
    version = 2


class Calls(FullReferenceExtractor):
    name = "calls"
    version = 1
    feature_names: ClassVar[tuple[str, ...]] = ("count",)
    higher_is_better = (True,)
    seen: ClassVar[list[int]] = []

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        self.seen.append(1)
        return {"count": float(len(self.seen))}


def test_new_version_recomputes_only_its_own_features(pairs: Dataset, tmp_path: Path) -> None:
    cache_path = tmp_path / "features.h5"
    compute_features(pairs, cache=cache_path, progress=False)
    bumped = (*FULL_REFERENCE_EXTRACTORS[:1], SSIMv2(), *FULL_REFERENCE_EXTRACTORS[2:])
    table = compute_features(pairs, bumped, cache=cache_path, progress=False)
    assert table.computed == 12 and table.from_cache == 12 * (len(FULL_REFERENCE_EXTRACTORS) - 1)
    assert "ssim_V2" in table.extractor_keys
    with FeatureCache(cache_path) as cache:
        assert set(cache.extractor_keys) >= {"ssim_V1", "ssim_V2"}
        assert cache.prune(e.key for e in bumped) == ["ssim_V1"]
        assert "ssim_V1" not in cache.extractor_keys


def test_keys_follow_content_not_names(tmp_path: Path) -> None:
    ref, dist = fusion.example_pair()
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    PILImage.fromarray(dist).save(a)
    PILImage.fromarray(dist).save(b)
    assert content_key(a, ref) == content_key(b, ref)
    assert content_key(a, ref) != content_key(a, None)
    assert content_key(dist, ref) != content_key(dist, ref, data_range=255)
    changed = dist.copy()
    changed[0, 0, 0] ^= 1
    assert content_key(changed, ref) != content_key(dist, ref)


_WRITER = textwrap.dedent("""
    import sys, time
    from fusion.cache import FeatureCache
    cache = FeatureCache(sys.argv[1], autosave_every=5, autosave_seconds=1e9)
    for i in range(10_000):
        cache.put("demo_V1", f"item{i}", {"a": float(i), "b": 2.0 * i})
        print(i, flush=True)
        time.sleep(0.002)
""")


def _start_writer(path: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE,
                            text=True, env=env)


def test_killed_writer_leaves_a_readable_cache_that_resumes(tmp_path: Path) -> None:
    path = tmp_path / "cache.h5"
    writer = _start_writer(path)
    assert writer.stdout is not None
    for line in writer.stdout:
        if int(line) >= 57:
            break
    with pytest.raises(CacheLockedError, match=f"process {writer.pid}"):
        FeatureCache(path)  # a second writer is refused while the first is alive
    reader = FeatureCache(path, mode="r")  # readers need no lock
    assert len(reader) >= 5
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    survived = FeatureCache(path, mode="r")
    assert 55 <= len(survived) <= 70  # committed in blocks of 5, nothing half-written
    for i in range(len(survived)):
        assert survived.get("demo_V1", f"item{i}") == {"a": float(i), "b": 2.0 * i}
    with FeatureCache(path) as resumed:  # the dead writer's lock is taken over
        resumed.put("demo_V1", "extra", {"a": -1.0, "b": -2.0})
    assert len(FeatureCache(path, mode="r")) == len(survived) + 1
    assert not list(tmp_path.glob(".*.tmp"))


class Logged(FullReferenceExtractor):
    """Appends a line to ``log`` per computed pair (seen across worker processes)."""

    name = "logged"
    version = 1
    feature_names: ClassVar[tuple[str, ...]] = ("mean_difference",)
    higher_is_better = (False,)
    log: Path | None = None

    def _pair(self, reference: Image, distorted: Image) -> dict[str, float]:
        assert self.log is not None
        with open(self.log, "a") as handle:
            handle.write("x\n")
        return {"mean_difference": float(np.abs(reference.luma - distorted.luma).mean())}


def test_parallel_parts_are_merged_then_removed_and_a_leftover_part_is_reused(
        pairs: Dataset, tmp_path: Path) -> None:
    good = pairs.subset(np.arange(12))
    logged = Logged()
    logged.log = tmp_path / "computed.log"
    cache_path = tmp_path / "cache" / "features.h5"
    first = compute_features_parallel(good, (logged,), cache_path, jobs=2)
    assert len(logged.log.read_text().splitlines()) == 12
    assert sorted(p.name for p in cache_path.parent.iterdir()) == ["features.h5"]
    # a part left by an interrupted run: its own entries are kept, nothing is recomputed
    with FeatureCache(cache_path.with_name("features_0.h5")) as leftover:
        leftover.put("other_V1", "some-pair", {"a": 1.0})
    again = compute_features_parallel(good, (logged,), cache_path, jobs=1)
    assert len(logged.log.read_text().splitlines()) == 12
    np.testing.assert_array_equal(first, again)
    assert sorted(p.name for p in cache_path.parent.iterdir()) == ["features.h5"]
    assert "other_V1" in FeatureCache(cache_path, mode="r").extractor_keys
    # a part beyond this run's jobs (left by a run with more of them) is merged too
    with FeatureCache(cache_path.with_name("features_3.h5")) as leftover:
        leftover.put("third_V1", "another-pair", {"a": 2.0})
    compute_features_parallel(good, (logged,), cache_path, jobs=2)
    assert len(logged.log.read_text().splitlines()) == 12
    assert sorted(p.name for p in cache_path.parent.iterdir()) == ["features.h5"]
    assert "third_V1" in FeatureCache(cache_path, mode="r").extractor_keys


def test_merge_per_process_caches(tmp_path: Path) -> None:
    for worker in range(2):
        with FeatureCache(tmp_path / f"w{worker}.h5") as cache:
            for i in range(3):
                cache.put("demo_V1", f"{worker}-{i}", {"a": float(i)})
    with FeatureCache(tmp_path / "all.h5") as merged:
        assert merged.merge([tmp_path / "w0.h5", tmp_path / "w1.h5"]) == 6
    assert len(FeatureCache(tmp_path / "all.h5", mode="r")) == 6


def test_refusals(tmp_path: Path) -> None:
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"garbage" * 100)
    with pytest.raises(OSError, match="not a readable HDF5 feature cache"):
        FeatureCache(junk, mode="r")
    with FeatureCache(tmp_path / "c.h5") as cache:
        cache.put("x_V1", "k", {"a": 1.0})
        with pytest.raises(ValueError, match="bump the extractor's version"):
            cache.put("x_V1", "k2", {"b": 1.0})
    import h5py

    with h5py.File(tmp_path / "c.h5", "a") as handle:
        handle.attrs["format_version"] = 99
    with pytest.raises(ValueError, match="cache format 99"):
        FeatureCache(tmp_path / "c.h5", mode="r")
    with pytest.raises(PermissionError, match="read-only"):
        FeatureCache(tmp_path / "c2.h5", mode="r").put("x_V1", "k", {"a": 1.0})


def test_taking_over_a_dead_writers_lock_removes_its_temp_file(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = tmp_path / "cache.h5"
    with FeatureCache(path) as cache:
        cache.put("demo_V1", "item0", {"a": 0.0, "b": 0.0})
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    pid = int(dead.stdout)  # a process that has exited: its lock is stale
    (tmp_path / "cache.h5.lock").write_text(str(pid))
    half_written = tmp_path / f".cache.h5.{pid}.tmp"
    half_written.write_bytes(b"killed inside flush")
    with FeatureCache(path) as cache:
        assert cache.get("demo_V1", "item0") == {"a": 0.0, "b": 0.0}
    assert not half_written.exists() and not (tmp_path / "cache.h5.lock").exists()
