"""KADID-10k's distortions, level tables and calibrated targets (fusion.kadid)."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

import fusion
from fusion.distortions import KADID_DISTORTIONS, distort, generate_synthetic, severity_dataset
from fusion.kadid import (
    EXTENDED_LEVELS,
    FAMILIES,
    KADID_TYPES,
    calibrated_targets,
    extrapolate_levels,
    kadid_type,
)

# Source: KADID-10k's release, imdist_generator.m (Lin, Hosu & Saupe, QoMEX 2019; the same
# file ships with KADIS-700k): the parameter of levels 1–5 of each type, in type order.
PUBLISHED = {
    1: (0.1, 0.5, 1, 2, 5), 2: (1, 2, 4, 6, 8), 3: (1, 2, 4, 6, 10), 4: (1, 3, 6, 8, 12),
    5: (1, 3, 6, 8, 12), 6: (64, 48, 32, 16, 8), 7: (0.4, 0.2, 0.1, 0, -0.4),
    8: (1, 2, 3, 6, 9), 9: (16, 32, 45, 120, 400), 10: (43, 36, 24, 7, 4),
    11: (0.001, 0.002, 0.003, 0.005, 0.01), 12: (0.0001, 0.0005, 0.001, 0.002, 0.003),
    13: (0.001, 0.005, 0.01, 0.02, 0.03), 14: (0.001, 0.005, 0.01, 0.02, 0.05),
    15: (0.01, 0.03, 0.05, 0.1, 0.15), 16: (0.1, 0.2, 0.4, 0.7, 1.1),
    17: (0.05, 0.1, 0.2, 0.4, 0.8), 18: (0.15, 0.08, 0, -0.08, -0.15),
    19: (0.05, 0.1, 0.2, 0.5, 1), 20: (20, 40, 60, 80, 100), 21: (0.01, 0.05, 0.1, 0.2, 0.5),
    22: (20, 16, 13, 10, 7), 23: (2, 4, 6, 8, 10), 24: (1, 2, 3, 6, 12),
    25: (0.3, 0.15, 0, -0.4, -0.6),
}
# Types whose published levels run from one side of "unchanged" to the other: level 3 is
# the parameter 0 (mean shift) or the mildest curve (contrast change).
TWO_SIDED = ("kadid_mean_shift", "kadid_contrast_change")
# Types that place a seeded number of patches at random: their change grows with the level
# only up to the randomness of where the patches land.
RANDOM_PLACEMENT = ("kadid_non_eccentricity_patch", "kadid_color_block")


def test_level_table_equals_the_published_one() -> None:
    assert [t.number for t in KADID_TYPES] == list(range(1, 26))
    assert {t.number: tuple(t.published) for t in KADID_TYPES} == PUBLISHED
    assert {t.family for t in KADID_TYPES} == set(FAMILIES)
    assert len(KADID_DISTORTIONS) == 25 == len(set(KADID_DISTORTIONS))


def _change(image: np.ndarray, kind: str, level: int) -> float:
    return float(np.abs(distort(image, kind, level).astype(float) - image).mean())


@pytest.mark.parametrize("kind", KADID_DISTORTIONS)
def test_change_grows_with_level(kind: str) -> None:
    ref, _ = fusion.example_pair("coffee_jpeg")
    change = [_change(ref, kind, level) for level in EXTENDED_LEVELS]
    if kind in TWO_SIDED:  # away from level 3 on both sides
        assert change[2] < change[1] < change[0]
        assert change[2] <= change[3] < change[4] < change[5] < change[6]
        return
    slack = 0.05 * max(change) if kind in RANDOM_PLACEMENT else 1e-9
    for weaker, stronger in itertools.pairwise(change):
        assert stronger >= weaker - slack, (kind, change)
    assert change[-1] > change[0], (kind, change)


@pytest.mark.parametrize("kind", KADID_DISTORTIONS)
def test_distortion_is_seeded_and_keeps_shape(kind: str) -> None:
    ref, _ = fusion.example_pair("coffee_jpeg")
    first = distort(ref, kind, 4, seed=3, image_index=1)
    assert first.shape == ref.shape and first.dtype == np.uint8
    np.testing.assert_array_equal(first, distort(ref, kind, 4, seed=3, image_index=1))


def test_kadid_levels_and_names_are_checked() -> None:
    ref, _ = fusion.example_pair("coffee_jpeg")
    with pytest.raises(ValueError, match="level of 'kadid_jpeg' must be one of"):
        distort(ref, "kadid_jpeg", 8)
    with pytest.raises(ValueError, match="level of 'jpeg' must be one of"):
        distort(ref, "jpeg", 6)  # the classic types keep levels 1–5
    with pytest.raises(ValueError, match="did you mean 'kadid_jpeg'"):
        distort(ref, "kadid_jpg", 1)
    with pytest.raises(ValueError, match="unknown KADID-10k type"):
        kadid_type("sharpen")


def test_extrapolation_never_rises_and_stays_on_the_scale() -> None:
    for published in ([90.0, 80.0, 60.0, 40.0, 20.0], [80.0, 88.0, 90.0, 84.0, 72.6],
                      [60.0, 60.0, 60.0, 60.0, 60.0], [30.0, 20.0, 10.0, 5.0, 1.0]):
        six, seven = extrapolate_levels(published)
        assert 0.0 <= seven <= six <= published[4]
        assert six < published[4] or published[4] == 0.0
    with pytest.raises(ValueError, match="five published levels"):
        extrapolate_levels([1.0, 2.0])


@pytest.fixture(scope="module")
def kadid_scores(shared_data: Path) -> Path:
    path = shared_data / "score_files" / "kadid10k" / "names_with_mos.txt"
    if not path.is_file():
        pytest.skip(f"KADID-10k score file not found at {path}")
    return path


@pytest.mark.shared_data
def test_calibrated_targets_are_the_group_means_of_the_score_file(kadid_scores: Path) -> None:
    targets = calibrated_targets(kadid_scores)
    assert len(targets) == 25 * 7
    # independently of the project's readers: mean of the raw 1–5 ratings of type 10
    # (JPEG), level 5, mapped by 25·(m − 1)
    ratings = [float(line.split()[1]) for line in kadid_scores.read_text().splitlines()
               if line.startswith("I") and line.split()[0].split(".")[0].endswith("_10_05")]
    assert len(ratings) == 81
    assert targets[("jpeg", 5)] == pytest.approx(25 * (np.mean(ratings) - 1), abs=1e-9)
    for kind in KADID_TYPES:
        values = [targets[(kind.name, level)] for level in EXTENDED_LEVELS]
        assert all(0.0 <= v <= 100.0 for v in values)
        assert values[6] <= values[5] <= values[4]


@pytest.mark.shared_data
def test_severity_dataset_calibrated_target(kadid_scores: Path, tmp_path: Path) -> None:
    from fusion.examples import example_paths

    source = [example_paths("coffee_jpeg")[0]]
    synthetic = generate_synthetic(source, tmp_path, kinds=["kadid_jpeg", "kadid_darken"],
                                   levels=[1, 5, 7])
    rated = severity_dataset(synthetic, score_file=kadid_scores)
    targets = calibrated_targets(kadid_scores)
    for item in rated:
        if item.level == 0:
            assert item.score == 100.0 and item.reference == item.image
        else:
            name = str(item.distortion).removeprefix("kadid_")
            assert item.score == targets[(name, item.level)]
    assert "NOT human ratings" in rated.description
    with pytest.raises(ValueError, match="needs score_file"):
        severity_dataset(synthetic)
    classic = generate_synthetic(source, tmp_path / "classic", kinds=["jpeg"], levels=[1])
    with pytest.raises(ValueError, match="no calibrated target for jpeg"):
        severity_dataset(classic, score_file=kadid_scores)
    assert [i.score for i in severity_dataset(classic, target="level")] == [
        pytest.approx(100 * 5 / 6), 100.0]


@pytest.mark.shared_data
def test_kadid_and_tid2013_panels_agree_on_shared_types(kadid_scores: Path) -> None:
    from fusion.kadid import tid2013_agreement

    tid = kadid_scores.parents[1] / "tid2013" / "mos_with_names.txt"
    if not tid.is_file():
        pytest.skip(f"TID2013 score file not found at {tid}")
    # level k is another parameter in each database, so agreement is good, not perfect
    assert 0.6 < tid2013_agreement(kadid_scores, tid) < 1.0


@pytest.mark.shared_data
def test_reference_groups_are_disjoint_and_named(shared_data: Path, tmp_path: Path) -> None:
    from fusion.training.calibrated import GROUPS, group_of, reference_groups

    groups = reference_groups(shared_data, tmp_path, clive_best=3, kodak=2)
    assert tuple(groups) == GROUPS
    assert [len(v) for v in groups.values()] == [2, 4, 3]
    assert all(p.is_file() for paths in groups.values() for p in paths)
    stems = [p.stem for paths in groups.values() for p in paths]
    assert len(set(stems)) == len(stems)
    assert group_of("clive_best/abc") == "clive_best"
