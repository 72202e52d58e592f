"""Calibration of raw model scores into probabilities, fitted on the validation period.

A calibrated score of 0.3 means that about 30% of such items hold a violation, which is what
an officer and the lane allocator (probability × duty at risk) need. The learned state is a
handful of numbers kept as JSON, so a scorer loads it without unpickling scikit-learn objects,
and prediction is one ``np.interp`` (isotonic) or one logistic (Platt).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

CalibrationMethod = Literal["isotonic", "platt", "none"]

_EPS = 1e-6


def _logit(p: npt.ArrayLike) -> npt.NDArray[np.float64]:
    q = np.clip(np.asarray(p, dtype=np.float64), _EPS, 1 - _EPS)
    return np.log(q / (1 - q))


class Calibrator:
    """Maps raw scores in [0, 1] to calibrated probabilities (scikit-learn estimator rules).

    ``isotonic``: a monotone step function (needs a few hundred validation labels; it keeps the
    ranking except for ties inside a step). ``platt``: a logistic on the logit of the score
    (two parameters, fine on small validation sets, keeps the ranking exactly). ``none``: the
    identity, for when the raw score is already a probability.
    """

    def __init__(self, method: CalibrationMethod = "isotonic") -> None:
        self.method = method

    def fit(
        self,
        scores: npt.ArrayLike,
        y_true: npt.ArrayLike,
        sample_weight: npt.ArrayLike | None = None,
    ) -> Calibrator:
        s = np.asarray(scores, dtype=np.float64)
        y = np.asarray(y_true, dtype=np.float64)
        if len(s) == 0:
            raise ValueError("cannot calibrate on an empty validation set")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            iso.fit(s, y, sample_weight=sample_weight)
            self.x_thresholds_ = np.asarray(iso.X_thresholds_, dtype=np.float64)
            self.y_thresholds_ = np.asarray(iso.y_thresholds_, dtype=np.float64)
        elif self.method == "platt":
            from sklearn.linear_model import LogisticRegression

            if len(np.unique(y)) < 2:
                raise ValueError("Platt calibration needs both classes in the validation set")
            logistic = LogisticRegression(C=1e6)
            logistic.fit(_logit(s).reshape(-1, 1), y, sample_weight=sample_weight)
            self.slope_ = float(logistic.coef_[0, 0])
            self.intercept_ = float(logistic.intercept_[0])
        elif self.method != "none":
            raise ValueError(f"unknown calibration method {self.method!r}")
        self.fitted_ = True
        return self

    def predict(self, scores: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Calibrated probabilities for raw scores."""
        s = np.asarray(scores, dtype=np.float64)
        if self.method == "isotonic":
            return np.interp(s, self.x_thresholds_, self.y_thresholds_)
        if self.method == "platt":
            return 1.0 / (1.0 + np.exp(-(self.slope_ * _logit(s) + self.intercept_)))
        return s.copy()

    def to_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"method": self.method}
        if self.method == "isotonic":
            state["x_thresholds"] = self.x_thresholds_.tolist()
            state["y_thresholds"] = self.y_thresholds_.tolist()
        elif self.method == "platt":
            state["slope"] = self.slope_
            state["intercept"] = self.intercept_
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Calibrator:
        calibrator = cls(state["method"])
        if calibrator.method == "isotonic":
            calibrator.x_thresholds_ = np.asarray(state["x_thresholds"], dtype=np.float64)
            calibrator.y_thresholds_ = np.asarray(state["y_thresholds"], dtype=np.float64)
        elif calibrator.method == "platt":
            calibrator.slope_ = float(state["slope"])
            calibrator.intercept_ = float(state["intercept"])
        calibrator.fitted_ = True
        return calibrator

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Calibrator:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def calibration_table(
    y_true: npt.ArrayLike, probabilities: npt.ArrayLike, bins: int = 10
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Mean predicted probability, observed violation rate and count per equal-width bin
    (empty bins left out): the points of a reliability diagram."""
    y = np.asarray(y_true, dtype=np.float64)
    p = np.asarray(probabilities, dtype=np.float64)
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(index, minlength=bins)
    kept = counts > 0
    mean_p = np.bincount(index, weights=p, minlength=bins)[kept] / counts[kept]
    rate = np.bincount(index, weights=y, minlength=bins)[kept] / counts[kept]
    return mean_p, rate, counts[kept].astype(np.int64)
