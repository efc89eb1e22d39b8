"""The single-model learners the benchmark scripts fit per fold (one definition for all)."""

from __future__ import annotations

from typing import Any

import numpy as np


def svr() -> Any:
    """Standardised features → RBF SVR (C 16, γ "scale", ε 1 on the 0–100 scale)."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVR

    return make_pipeline(StandardScaler(), SVR(C=16.0, gamma="scale", epsilon=1.0))


def ridge() -> Any:
    """Standardised features → ridge with α chosen by efficient leave-one-out, 0.1…1e5."""
    from sklearn.linear_model import RidgeCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-1, 5, 13)))
