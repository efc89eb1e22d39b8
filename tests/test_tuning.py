"""Tuning a branch: which weights it keeps (best validation epoch, or their average)."""

from __future__ import annotations

import numpy as np
import pytest

from fusion.training.tuning import TuningSettings


def test_settings_refuse_an_averaging_start_outside_the_epochs() -> None:
    with pytest.raises(ValueError, match=r"average_from must be 0 \(best epoch\) or an epoch"):
        TuningSettings(epochs=4, average_from=5)
    with pytest.raises(ValueError, match="average_from must be"):
        TuningSettings(average_from=-1)
    with pytest.raises(ValueError, match="epochs must be at least 1"):
        TuningSettings(epochs=0)
    assert TuningSettings(epochs=4, average_from=4).average_from == 4


@pytest.fixture(scope="module")
def stage6_items() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(activations of 24 items at Lite0's stage-6 input, scores, one content each)."""
    pytest.importorskip("keras", reason="tuning needs the train extra")
    from fusion.training.tuning import _stage_output_shape

    shape = _stage_output_shape("efficientnet_lite0", 6)
    gen = np.random.default_rng(0)
    scores = np.linspace(10, 90, 24)
    activations = gen.normal(0, 1, (24, 9, *shape)) + (scores / 50)[:, None, None, None, None]
    groups = np.array([f"c{i}" for i in range(24)])
    return activations.astype(np.float16), scores, groups


@pytest.mark.slow
@pytest.mark.parametrize("average_from", [0, 2])
def test_a_branch_keeps_its_best_epoch_or_the_mean_of_the_later_ones(
        stage6_items: tuple[np.ndarray, np.ndarray, np.ndarray], average_from: int) -> None:
    from fusion.training.tuning import fit_branch

    activations, scores, groups = stage6_items
    settings = TuningSettings(start_stage=6, epochs=3, patches_per_image=2, batch_size=8,
                              learning_rate=1e-3, validation_fraction=0.25,
                              average_from=average_from)
    seen: list[list[np.ndarray]] = []
    branch, report = fit_branch("efficientnet_lite0", activations, scores, groups,
                                np.arange(24), settings,
                                on_epoch=lambda epoch, b: seen.append(
                                    [np.array(w) for w in b.get_weights()]))
    assert len(seen) == 3 == len(report.validation_srcc)
    kept = branch.get_weights()
    if average_from:
        expected = [np.mean([epoch[i] for epoch in seen[average_from - 1:]], axis=0)
                    for i in range(len(kept))]
        assert report.averaged_srcc is not None and report.averaged_from == average_from
    else:
        expected = seen[report.best_epoch - 1]
        assert report.validation_srcc[report.best_epoch - 1] == max(report.validation_srcc)
        assert report.averaged_srcc is None and report.averaged_from == 0
    assert all(np.allclose(k, e, atol=1e-6) for k, e in zip(kept, expected, strict=True))
    # the epochs did move the weights (else every kept set would pass trivially)
    assert any(not np.allclose(a, b) for a, b in zip(seen[0], seen[-1], strict=True))
