"""Forecasting as sequence-to-one regression: statsmodels' weekly Mauna Loa CO₂ (2,284 weeks, 1958–2001).

A sample is ``length`` consecutive weeks; its target the value ``horizon`` weeks after the last. Splits
are chronological: samples whose target falls in the last 20 % of the series are the test split (their
inputs may reach back into the training years, as a forecaster's would); validation is carved from the
remaining windows by the seed (they overlap training windows, so validation is optimistic, test is not).
The series is standardised with the training years' mean and deviation; metric: MSE in those units.
Baseline: persistence (the target equals the last value seen), measured on the test split.
"""

from __future__ import annotations

import numpy as np

from tasks import data
from tasks.base import Dataset, Features, Final, Signature, require
from tasks.registry import register

TEST_FRACTION = 0.2


@register("co2")
class CO2(Dataset):
    """Weekly CO₂: predict the value ``horizon`` weeks ahead from the last ``length`` weeks."""

    metric = "mse"
    higher_is_better = False
    solved_at = 0.0  # never: real data has no solved threshold

    def __init__(self, length: int = 104, horizon: int = 13):
        require(isinstance(length, int) and 1 <= length <= 1000,
                f"co2: length must be an integer in 1..1000, got {length!r}")
        require(isinstance(horizon, int) and 1 <= horizon <= 260,
                f"co2: horizon must be an integer in 1..260, got {horizon!r}")
        data.require_package(*data.CO2)
        self.length, self.horizon = length, horizon

    @property
    def params(self):
        return {"length": self.length, "horizon": self.horizon}

    @property
    def signature(self):
        return Signature(self.length, self.length, Features(1), Final(None))

    def _load(self):
        series = data.co2()
        split = round(len(series) * (1 - TEST_FRACTION))
        series = (series - series[:split].mean()) / series[:split].std()
        last = np.arange(self.length - 1, len(series) - self.horizon)  # index of each window's last week
        x = np.stack([series[i - self.length + 1 : i + 1] for i in last])[..., None].astype(np.float32)
        y = series[last + self.horizon][:, None].astype(np.float32)
        test = last + self.horizon >= split
        return x[~test], y[~test], x[test], y[test]

    @property
    def baseline(self) -> float:
        _, _, x_test, y_test = self.arrays
        return self.evaluate(y_test, x_test[:, -1, :])

    def evaluate(self, y, prediction):
        return float(np.mean((np.asarray(prediction).reshape(y.shape) - y) ** 2))
