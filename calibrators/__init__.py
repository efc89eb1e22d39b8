"""Score calibrators as scikit-learn regressors (VQEG logistic, isotonic, conformal).

Planned (see the project's issues); nothing is exported yet.
"""

__all__: list[str] = []
