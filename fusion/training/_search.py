"""The seeded random search over learning rate and batch size shared by every training.

The seed paper's recipe: the learning rate log-uniform in 1e-5…1e-3 and the batch size
one of 16, 32 or 64, a fixed number of trials, the trial with the lowest validation RMSE
kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

__all__ = ["random_search"]

#: Batch sizes the search draws from.
BATCH_SIZES = (16, 32, 64)


def random_search(model: Any, run_trial: Callable[[int, dict[str, Any]],
                                                  tuple[dict[str, float], dict[str, Any]]],
                  *, trials: int, seed: int, fixed: Mapping[str, Any] | None = None,
                  extra: Mapping[str, Any] | None = None
                  ) -> tuple[dict[str, Any], dict[str, float], list[dict[str, Any]]]:
    """Run seeded trials from the same starting weights and keep the best one's weights.

    Parameters
    ----------
    model : keras.Model
        Trained in place by ``run_trial``; every trial starts from the weights it has now,
        and the best trial's weights are left in it.
    run_trial : callable
        ``run_trial(trial_index, settings) -> (validation metrics, extra record)``; the
        metrics must hold ``"rmse"``.
    trials : int
        How many settings to draw (one trial when ``fixed`` is given).
    seed : int
        Seeds the draws.
    fixed : mapping, optional
        Settings that override the draws (then a single trial runs).
    extra : mapping, optional
        Settings recorded with every trial (e.g. a decay rate).

    Returns
    -------
    settings : dict
        The best trial's settings.
    metrics : dict
        Its validation metrics.
    history : list of dict
        Every trial's settings, extra record and metrics.
    """
    if trials < 1:
        raise ValueError(f"trials must be at least 1, got {trials}")
    rng = np.random.default_rng(seed)
    initial = [w.copy() for w in model.get_weights()]
    history: list[dict[str, Any]] = []
    best: tuple[float, dict[str, Any], dict[str, float], list[Any]] | None = None
    for trial in range(1 if fixed else trials):
        settings = {"learning_rate": float(10 ** rng.uniform(-5, -3)),
                    "batch_size": int(rng.choice(BATCH_SIZES)), **(extra or {}),
                    **(fixed or {})}
        model.set_weights(initial)
        metrics, record = run_trial(trial, settings)
        history.append({**settings, **record, **metrics})
        if best is None or metrics["rmse"] < best[0]:
            best = (metrics["rmse"], settings, metrics,
                    [w.copy() for w in model.get_weights()])
    if best is None:  # unreachable: at least one trial ran
        raise RuntimeError("no trial ran")
    model.set_weights(best[3])
    return best[1], best[2], history
