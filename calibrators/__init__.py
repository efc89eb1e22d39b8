"""Score calibrators as scikit-learn regressors.

:class:`LogisticCalibrator` fits the VQEG 4- or 5-parameter logistic; isotonic and
split-conformal calibrators are planned (see the project's issues).
"""

from calibrators.logistic import LogisticCalibrator, logistic4, logistic5

__all__ = ["LogisticCalibrator", "logistic4", "logistic5"]
