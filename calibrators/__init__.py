"""Score calibrators as scikit-learn regressors.

:class:`LogisticCalibrator` (VQEG 4/5-parameter logistic), :class:`IsotonicCalibrator`
(monotone map onto 0–100), :class:`ConformalInterval` (split-conformal intervals
with a stated coverage) and :class:`NormalisedConformalInterval` (the same, with a
width that follows the predicted score).
"""

from calibrators.conformal import ConformalInterval, NormalisedConformalInterval
from calibrators.isotonic import IsotonicCalibrator
from calibrators.logistic import LogisticCalibrator, logistic4, logistic5

__all__ = ["ConformalInterval", "IsotonicCalibrator", "LogisticCalibrator",
           "NormalisedConformalInterval", "logistic4", "logistic5"]
