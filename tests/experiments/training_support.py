"""Shared by the experiments tests (imported by name: a module called ``conftest`` would clash
with the other test folders' conftest modules when several folders run in one pytest call)."""

from __future__ import annotations

from dataclasses import dataclass

from experiments.config import LightGBMParams, TrainJob
from experiments.scorer import Scorer
from experiments.train import Fitted
from experiments.training_set import TrainingSet

FAST = LightGBMParams(num_boost_round=60, early_stopping_rounds=20, num_threads=2)


@dataclass(frozen=True)
class Trained:
    job: TrainJob
    training_set: TrainingSet
    fitted: Fitted
    scorer: Scorer
