"""The trained model as a fast in-process object: features, LightGBM, calibration, duty.

A ``Scorer`` is what batch scoring, the API and promotion use (``experiments.registry.
load_scorer(model_uri)`` gives one; the MLflow pyfunc wraps the same object). It holds:

- ``booster``: the LightGBM violation classifier (cut at its best iteration);
- ``calibrator``: raw score -> calibrated probability (fitted on the validation period);
- ``categories``: categorical codes -> the dense indices the boosters were trained on
  (applied inside every predict, so callers pass the feature pipeline's codes as they are);
- ``feature_config`` and ``feature_names``: how features are built and the model's column order;
- ``profiles``: entity profiles materialised at the end of the training data (for scoring
  declarations from that cut-off on), or None;
- the duty model: a LightGBM regressor of the extra duty of a violation, or, without one, the
  documented rule ``duty_at_stake_usd × evasion_share``;
- ``model_name``, ``model_version`` ("name/N" once registered), ``run_id``, ``source_profile``;
- ``compile_policy``: large batches predict through the boosters compiled to native code
  (``experiments.compiled``, lleaves; the same numbers); SHAP contributions through
  ``experiments.shap`` (exact, LightGBM's ``pred_contrib`` numbers), LightGBM as the fallback.

Use: ``features = scorer.feature_frame(declarations)`` (profile mode, the bundled profiles),
``risk = scorer.predict_items(features)``, ``duty = scorer.expected_duty(features, risk)``;
or ``scorer.score(declarations)`` for all three. ``predict_risk(matrix)`` and
``contributions(matrix)`` take the float32 matrix of ``feature_matrix(features)``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import polars as pl

from experiments.calibration import Calibrator
from experiments.categories import CategoryIndex
from experiments.compiled import CompilePolicy, FastBooster
from features.config import FeatureConfig

if TYPE_CHECKING:
    import lightgbm as lgb

    from features.catalog import CatalogEntry
    from features.profiles import EntityProfiles

KEYS = ["declaration_id", "item_no"]
FORMAT_VERSION = 1
BOOSTER_FILE = "booster.txt"
DUTY_BOOSTER_FILE = "duty_booster.txt"
CALIBRATION_FILE = "calibration.json"
META_FILE = "scorer.json"
PROFILES_DIR = "profiles"
# Up to this many rows SHAP runs on one thread.
SMALL_BATCH = 32
# Feature that carries customs value × duty rate, for the duty rule without a regressor.
DUTY_AT_STAKE = "duty_at_stake_usd"


@dataclass
class Scorer:
    """See the module docstring."""

    booster: lgb.Booster
    calibrator: Calibrator
    categories: CategoryIndex
    feature_config: FeatureConfig
    feature_names: list[str]
    categorical_features: list[str]
    profiles: EntityProfiles | None = None
    duty_booster: lgb.Booster | None = None
    evasion_share: float = 0.3
    source_profile: str = "canonical"
    model_name: str = ""
    model_version: str = ""
    run_id: str = ""
    num_threads: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)
    # How boosters are compiled for large batches (``experiments.compiled``); None: from
    # the settings (RISK_COMPILED_MODEL, RISK_CACHE_DIR) when first needed.
    compile_policy: CompilePolicy | None = field(default=None, repr=False, compare=False)
    _fast: dict[int, FastBooster] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def __getstate__(self) -> dict[str, Any]:
        # Compiled code lives in this process only (a Dask worker loads its own, from the
        # cache or by compiling on its first large batch).
        return {**self.__dict__, "_fast": {}}

    # --- features -------------------------------------------------------------------------
    def feature_frame(
        self,
        declarations: pl.DataFrame,
        outcomes: pl.DataFrame | None = None,
        profiles: EntityProfiles | None = None,
        *,
        arrivals: pl.DataFrame | None = None,
        history: bool = False,
    ) -> pl.DataFrame:
        """Keys, pass-through columns and this model's features, in ``declarations``' order.

        Profile mode (default): the past is ``profiles`` or the bundled ones, and
        ``declarations`` must be from the profile's cut-off on. ``history=True``: every
        feature as of each row's own time over ``declarations``/``outcomes`` themselves
        (training, re-evaluation of a past period).
        """
        from features.pipeline import build_features
        from risk.schemas import InspectionOutcome, empty

        past = None if history else (profiles if profiles is not None else self.profiles)
        if not history and past is None:
            raise ValueError("this model has no entity profiles: pass profiles or history=True")
        frame = build_features(
            declarations.lazy(),
            (outcomes if outcomes is not None else empty(InspectionOutcome)).lazy(),
            profiles=past,
            config=self.feature_config,
            arrivals=None if arrivals is None else arrivals.lazy(),
        )
        order = declarations.select(KEYS).with_row_index("_row")
        return frame.join(order.lazy(), on=KEYS, how="inner").sort("_row").drop("_row").collect()

    def feature_matrix(self, features: pl.DataFrame) -> npt.NDArray[np.float32]:
        """Float32 matrix of the model's columns in its order; nulls become NaN (missing)."""
        return features.select(pl.col(self.feature_names).cast(pl.Float32)).to_numpy()

    # --- prediction -----------------------------------------------------------------------
    def fast_booster(self, booster: lgb.Booster) -> FastBooster:
        """``booster`` (the classifier or the duty regressor) with its compiled twin."""
        fast = self._fast.get(id(booster))
        if fast is None or fast.booster is not booster:
            if self.compile_policy is None:
                self.compile_policy = CompilePolicy.from_settings()
            fast = FastBooster(booster, self.compile_policy)
            self._fast[id(booster)] = fast
        return fast

    def warm_compiled(self, *, force: bool = False) -> None:
        """Compile the boosters now (or load them from the cache), whatever the batch size;
        ``force``: also models past the compile policy's size limit."""
        for booster in (self.booster, self.duty_booster):
            if booster is not None:
                self.fast_booster(booster).warm(force=force)

    def _predict_dense(self, booster: lgb.Booster, dense: npt.NDArray[Any]) -> np.ndarray:
        return self.fast_booster(booster).predict(dense, self.num_threads)

    def raw_scores(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Uncalibrated classifier output."""
        if matrix.shape[0] == 0:
            return np.zeros(0)
        return self._predict_dense(self.booster, self.categories.transform(matrix))

    def predict_risk(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """Calibrated probability of a violation per row of the feature matrix."""
        return self.calibrator.predict(self.raw_scores(matrix))

    def predict_items(self, features: pl.DataFrame) -> npt.NDArray[np.float64]:
        """Calibrated probability of a violation per row of a ``feature_frame``."""
        return self.predict_risk(self.feature_matrix(features))

    def duty_if_violation(self, features: pl.DataFrame) -> npt.NDArray[np.float64]:
        """Predicted extra duty (USD) of an item should it hold a violation."""
        if self.duty_booster is not None:
            if features.height == 0:
                return np.zeros(0)
            dense = self.categories.transform(self.feature_matrix(features))
            return np.clip(self._predict_dense(self.duty_booster, dense), 0.0, None)
        stake = features.get_column(DUTY_AT_STAKE).fill_null(0.0).to_numpy()
        return np.asarray(stake, dtype=np.float64) * self.evasion_share

    def expected_duty(
        self, features: pl.DataFrame, risk: npt.NDArray[Any]
    ) -> npt.NDArray[np.float64]:
        """Expected duty at risk (USD) per row: probability × predicted evaded duty."""
        return np.asarray(risk, dtype=np.float64) * self.duty_if_violation(features)

    def contributions(self, matrix: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
        """SHAP contributions per row and feature (log-odds), without the bias column.

        The values of LightGBM's ``pred_contrib=True``, computed by ``experiments.shap`` (the
        same exact TreeSHAP, 5-9x less work; within 1e-13 of LightGBM's), or by LightGBM where
        that does not cover the model or ``RISK_EXACT_SHAP=false``. Still tens of predictions'
        worth of work per row: only for the rows officers see.
        """
        from experiments.shap import forest_for

        if matrix.shape[0] == 0:
            return np.zeros((0, len(self.feature_names)))
        dense = self.categories.transform(matrix)
        # A few rows (one truck in the console) finish before a second thread has started.
        threads = 1 if matrix.shape[0] < SMALL_BATCH else self.num_threads
        forest = forest_for(self.booster)
        out: Any
        if forest is not None:
            out = forest.contributions(dense, threads)
        else:
            out = self.booster.predict(dense, pred_contrib=True, num_threads=threads)
        return np.asarray(out, dtype=np.float64)[:, :-1]

    def score(
        self,
        declarations: pl.DataFrame,
        outcomes: pl.DataFrame | None = None,
        *,
        profiles: EntityProfiles | None = None,
        arrivals: pl.DataFrame | None = None,
        history: bool = False,
    ) -> pl.DataFrame:
        """Keys, ``risk``, ``expected_duty_usd``, ``model_version``, ``run_id`` per item."""
        features = self.feature_frame(
            declarations, outcomes, profiles, arrivals=arrivals, history=history
        )
        risk = self.predict_items(features)
        return features.select(KEYS).with_columns(
            risk=pl.Series(risk, dtype=pl.Float64),
            expected_duty_usd=pl.Series(self.expected_duty(features, risk), dtype=pl.Float64),
            model_version=pl.lit(self.model_version),
            run_id=pl.lit(self.run_id),
        )

    # --- description ----------------------------------------------------------------------
    @property
    def catalog(self) -> dict[str, CatalogEntry]:
        """The catalogue entry (meaning, scheme, reason texts) of each of the model's features."""
        from features.catalog import entry_for

        return {name: entry_for(name) for name in self.feature_names}

    # --- persistence ----------------------------------------------------------------------
    def save(self, directory: Path) -> Path:
        """Write the scorer as a folder (booster text files, JSON, a profiles folder)."""
        directory.mkdir(parents=True, exist_ok=True)
        (directory / BOOSTER_FILE).write_text(self.booster.model_to_string(), encoding="utf-8")
        if self.duty_booster is not None:
            text = self.duty_booster.model_to_string()
            (directory / DUTY_BOOSTER_FILE).write_text(text, encoding="utf-8")
        self.calibrator.save(directory / CALIBRATION_FILE)
        if self.profiles is not None:
            self.profiles.save(directory / PROFILES_DIR)
        meta = {
            "format_version": FORMAT_VERSION,
            "feature_config": self.feature_config.model_dump(mode="json"),
            "feature_names": self.feature_names,
            "categorical_features": self.categorical_features,
            "category_codes": self.categories.to_dict(),
            "evasion_share": self.evasion_share,
            "source_profile": self.source_profile,
            "model_name": self.model_name,
            "run_id": self.run_id,
            "metadata": self.metadata,
        }
        (directory / META_FILE).write_text(json.dumps(meta, indent=2), encoding="utf-8")
        return directory

    @classmethod
    def load(
        cls,
        directory: Path,
        *,
        model_version: str = "",
        run_id: str | None = None,
        num_threads: int = 0,
    ) -> Scorer:
        """Read a folder written by ``save``."""
        import lightgbm as lgb

        from features.profiles import EntityProfiles

        meta: Mapping[str, Any] = json.loads((directory / META_FILE).read_text(encoding="utf-8"))
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{directory}: scorer format {meta.get('format_version')} unknown")
        duty_path = directory / DUTY_BOOSTER_FILE
        profiles_path = directory / PROFILES_DIR
        return cls(
            booster=lgb.Booster(model_file=str(directory / BOOSTER_FILE)),
            calibrator=Calibrator.load(directory / CALIBRATION_FILE),
            categories=CategoryIndex(meta["feature_names"], meta["category_codes"]),
            feature_config=FeatureConfig.model_validate(meta["feature_config"]),
            feature_names=list(meta["feature_names"]),
            categorical_features=list(meta["categorical_features"]),
            profiles=EntityProfiles.load(profiles_path) if profiles_path.is_dir() else None,
            duty_booster=lgb.Booster(model_file=str(duty_path)) if duty_path.is_file() else None,
            evasion_share=float(meta["evasion_share"]),
            source_profile=str(meta["source_profile"]),
            model_name=str(meta.get("model_name", "")),
            model_version=model_version,
            run_id=run_id if run_id is not None else str(meta.get("run_id", "")),
            num_threads=num_threads,
            metadata=dict(meta.get("metadata", {})),
        )
