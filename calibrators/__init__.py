"""Score calibrators as scikit-learn regressors.

:class:`LogisticCalibrator` (VQEG 4/5-parameter logistic), :class:`IsotonicCalibrator`
(monotone map onto 0–100) and :class:`ConformalInterval` (split-conformal intervals
with a stated coverage).
"""

from calibrators.conformal import ConformalInterval
from calibrators.isotonic import IsotonicCalibrator
from calibrators.logistic import LogisticCalibrator, logistic4, logistic5

__all__ = ["ConformalInterval", "IsotonicCalibrator", "LogisticCalibrator", "logistic4",
           "logistic5"]
