"""Scoring one truck on the spot, for ``POST /api/v1/trucks/score``.

The champion model is loaded once per process, on the first request (start-up stays fast and
a console without a model still serves its pages). The truck is scored by the batch core's
phases (``pipelines.score``); its lane is the one it gets if it joins its crossing's queue as
the store holds it now: the waiting trucks keep their lanes (rule, random and overridden ones
as fixed), and the capacity left decides, exactly as ``risk.lanes`` fills a whole queue. A
lane computed for one truck alone would always be red, since all capacity would be its.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import TYPE_CHECKING, Any, cast
from uuid import uuid4

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from risk import store
from risk.console.schemas import (
    DeclarationScore,
    ItemScore,
    TruckScoreRequest,
    TruckScoreResponse,
)
from risk.console.spot_lane import Waiting, lane_in_queue
from risk.console.spot_reasons import SpotReasons, truck_reasons
from risk.errors import RiskError
from risk.lanes import CapacityConfig, assign_lanes, load_capacity
from risk.rules import RuleSet
from risk.schemas import LANES, DeclarationItem
from risk.settings import Settings, get_settings
from risk.store.models import Truck, User

if TYPE_CHECKING:
    from features.online import OnlineFeatures
    from pipelines.score import ItemScores, Scorer

FIXED = ("rule", "random", "override")
log = logging.getLogger(__name__)
ITEM_TYPES = {name: column.dtype for name, column in DeclarationItem.columns().items()}


class ModelUnavailableError(RiskError):
    """No champion model could be loaded to score with."""


class ScoringService:
    """Holds the champion scorer, the capacity and the rules for on-the-spot scores."""

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        model_uri: str | None = None,
        scorer: Scorer | None = None,
        capacity: CapacityConfig | None = None,
        rules: RuleSet | None = None,
        lang: str = "en",
    ) -> None:
        self._settings = settings
        self._model_uri = model_uri
        self._scorer = scorer
        self._capacity = capacity
        self._rules = rules
        self._lang = lang
        self._lock = threading.Lock()
        self._online: tuple[Scorer, OnlineFeatures | None] | None = None
        # One truck at a time through the model: Polars and LightGBM use every core already.
        self._compute = threading.Lock()

    def model_uri(self) -> str:
        """The model scored with: the one given, else the canonical profile's champion."""
        if self._model_uri:
            return self._model_uri
        from experiments.registry import champion_uri, registered_model_name

        settings = self._settings or get_settings()
        return champion_uri(registered_model_name(settings.registered_model, "canonical"))

    def scorer(self) -> Scorer:
        """The model, loaded on first use (and only once, even under concurrent calls)."""
        if self._scorer is None:
            with self._lock:
                if self._scorer is None:
                    # As `risk` does for every command (risk.cli), for a console served some
                    # other way: OpenMP threads that spin while waiting made one truck's
                    # predict ten times slower on a busy machine. Read when LightGBM loads.
                    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
                    from experiments.registry import load_scorer

                    (self._settings or get_settings()).configure_mlflow()
                    uri = self.model_uri()
                    try:
                        # experiments' Scorer is what pipelines.score's protocol describes.
                        self._scorer = cast("Scorer", load_scorer(uri))
                    except RiskError as error:
                        raise ModelUnavailableError(
                            f"{error} (train one with `risk train`, promote it with `risk promote`)"
                        ) from error
        scorer = self._scorer
        assert scorer is not None
        return scorer

    def online_features(self, scorer: Scorer) -> OnlineFeatures | None:
        """The scorer's entity profiles read for single trucks (once per model); None for a
        scorer without profiles."""
        profiles = scorer.profiles
        if profiles is None:
            return None
        if self._online is None or self._online[0] is not scorer:
            with self._lock:
                if self._online is None or self._online[0] is not scorer:
                    from features.online import OnlineFeatures
                    from pipelines.score_features import scoring_profiles

                    edges = scoring_profiles(profiles).reference
                    online: OnlineFeatures | None
                    try:
                        online = OnlineFeatures.from_profiles(
                            profiles,
                            scorer.feature_config,
                            # Rows after the profile's price period: as of its end, as
                            # LatestReference looks them up.
                            reference_until=getattr(edges, "latest", None),
                        )
                    except ValueError as error:  # e.g. a price reference of no one period
                        log.warning("scoring trucks through the feature pipeline: %s", error)
                        online = None
                    self._online = (scorer, online)
        return self._online[1]

    def truck_features(self, items: pl.DataFrame, scorer: Scorer) -> pl.DataFrame:
        """``pipelines.score_features.compute_features`` of one truck's items, by the online
        path (``features.online``: no Polars plan per truck, the same numbers); a batch it
        does not mirror goes through ``compute_features`` itself."""
        from features.online import UnsupportedBatchError
        from pipelines.score_features import ROW, as_of_cutoff, compute_features

        online = self.online_features(scorer)
        if online is not None and scorer.profiles is not None:
            try:
                frame = online.features(as_of_cutoff(items, scorer.profiles))
            except UnsupportedBatchError:
                pass
            else:  # in the batch's order, like compute_features' result when it keeps it
                return pl.DataFrame(
                    [
                        *(frame.get_column(name) for name in scorer.feature_names),
                        pl.Series(ROW, range(frame.height), dtype=pl.UInt32),
                    ]
                )
        return compute_features(items, scorer)

    def capacity(self) -> CapacityConfig:
        if self._capacity is None:
            self._capacity = load_capacity()
        return self._capacity

    def rules(self) -> RuleSet:
        if self._rules is None:
            from risk.rules import load_rules

            self._rules = load_rules(None)
        return self._rules

    def score_truck(
        self,
        *,
        session: Session,
        request: TruckScoreRequest,
        publish: bool,
        by: User,
        lang: str | None = None,
    ) -> tuple[TruckScoreResponse, dict[str, float]]:
        """Score the truck, give it its lane in today's queue, optionally publish it.

        The response's reasons are in ``lang`` (default: the service's); a published truck
        is stored with them in both languages. Returns the response and the seconds each
        stage took (for ``Server-Timing``).
        """
        lang = lang or self._lang
        from pipelines.score import aggregate_trucks, assemble, explain, score_items

        if publish and by.role == "analyst":
            raise store.PermissionDeniedError(
                f"{by.username} (analyst) may not put trucks into the queue"
            )
        scorer = self.scorer()
        timings: dict[str, float] = {}
        clock = time.perf_counter()

        def lap(stage: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            timings[stage] = now - clock
            clock = now

        # The request model enforces every rule of DeclarationItem (patterns, bounds, ISO
        # countries, unique keys), so the frame only needs the schema's types.
        items = pl.DataFrame([item.model_dump() for item in request.items], schema=ITEM_TYPES)
        # One truck is a tiny frame: the in-memory engine starts faster than the streaming one
        # (about a third off the feature step). The setting is process-wide, hence the lock.
        with self._compute, pl.Config(engine_affinity="in-memory"):
            rules = store.rules_in_force(session=session, base=self.rules())  # + watch lists
            features = self.truck_features(items, scorer)
            lap("features")
            scored = score_items(items, scorer, rules=rules, features=features, lang=lang)
            lap("predict")
            truck = aggregate_trucks(scored.items)
            crossing = truck.get_column("crossing")[0]
            key = truck.get_column("truck_key")[0]
            with_lane = self._lane_in_queue(session, truck, crossing=crossing, key=key)
            lap("lane")
            share = self.capacity().for_crossing(crossing).random_share
            if not publish:
                spot = truck_reasons(
                    scored,
                    with_lane.row(0, named=True),
                    scorer,
                    random_share=share,
                    lang=lang,
                )
                lap("reasons")
                return response_of_parts(scored, with_lane, spot, published=False), timings
            reasons = explain(
                scored,
                with_lane,
                scorer,
                reasons_for=LANES,
                random_share={crossing: share},
                lang=lang,
            )
            lap("reasons")
        batch = assemble(scored, with_lane, reasons)
        frames = store.published_frames(
            trucks=batch.trucks,
            declarations=batch.declarations,
            items=batch.items,
            declaration_items=items,
        )
        store.publish_scores(
            session=session,
            trucks=frames[0],
            declarations=frames[1],
            items=frames[2],
            run_id=f"api-{uuid4().hex[:16]}",
            model_version=scorer.model_version,
            model_run_id=scorer.run_id,
            published_by=by.username,
            source="POST /api/v1/trucks/score",
        )
        session.commit()
        lap("publish")
        return _response(batch, batch.trucks.row(0, named=True), published=True), timings

    def _lane_in_queue(
        self, session: Session, truck: pl.DataFrame, *, crossing: str, key: str
    ) -> pl.DataFrame:
        waiting = session.execute(
            select(
                Truck.truck_id,
                Truck.n_items,
                Truck.risk,
                Truck.duty_at_risk_usd,
                Truck.lane,
                Truck.decided_by,
            ).where(Truck.crossing == crossing, Truck.status == "waiting", Truck.truck_id != key)
        ).all()
        queue = [
            Waiting(
                truck_key=truck_id,
                n_items=n_items,
                risk=risk,
                duty_at_risk_usd=duty,
                # Lanes not the model's stay as they are and take their minutes.
                rule_lane=lane if decided_by in FIXED and lane in ("red", "green") else None,
                draw_key=f"{truck_id}|{crossing}|queue",
            )
            for truck_id, n_items, risk, duty, lane, decided_by in waiting
        ]
        me = truck.row(0, named=True)
        newcomer = Waiting(
            truck_key=me["truck_key"],
            n_items=me["n_items"],
            risk=me["risk"],
            duty_at_risk_usd=me["duty_at_risk_usd"],
            rule_lane=me["rule_lane"],
            draw_key=me["draw_key"],
        )
        decision = lane_in_queue(newcomer, queue, self.capacity(), crossing)
        if decision is None:  # a missing risk or duty: assign_lanes orders those itself
            return lane_by_assign_lanes(truck, queue, self.capacity(), crossing)
        return truck.with_columns(
            pl.lit(decision.lane, dtype=pl.String).alias("lane"),
            pl.lit(decision.selection, dtype=pl.String).alias("selection"),
            pl.lit(decision.decided_by, dtype=pl.String).alias("decided_by"),
            pl.lit(decision.officer_minutes, dtype=pl.Float64).alias("officer_minutes"),
            pl.lit(decision.duty_per_minute_usd, dtype=pl.Float64).alias("duty_per_minute_usd"),
        )


def lane_by_assign_lanes(
    truck: pl.DataFrame, queue: list[Waiting], capacity: CapacityConfig, crossing: str
) -> pl.DataFrame:
    """``truck`` (one row of ``aggregate_trucks``) with the lane columns ``assign_lanes`` gives
    it over itself and the waiting ``queue`` of its crossing."""
    frame = pl.DataFrame(
        [
            {
                "truck_key": t.truck_key,
                "crossing": crossing,
                "n_items": t.n_items,
                "risk": t.risk,
                "duty_at_risk_usd": t.duty_at_risk_usd,
                "rule_lane": t.rule_lane,
                "draw_key": t.draw_key,
            }
            for t in queue
        ],
        schema={
            "truck_key": pl.String,
            "crossing": pl.String,
            "n_items": pl.Int64,
            "risk": pl.Float64,
            "duty_at_risk_usd": pl.Float64,
            "rule_lane": pl.String,
            "draw_key": pl.String,
        },
    )
    candidate = truck.select(frame.columns).cast(dict(frame.schema))  # type: ignore[arg-type]
    lanes = assign_lanes(pl.concat([candidate, frame]), capacity, draw_key="draw_key")
    mine = lanes.head(1).drop(*candidate.columns)
    return pl.concat([truck, mine], how="horizontal")


def response_of_parts(
    scored: ItemScores, truck: pl.DataFrame, reasons: SpotReasons, *, published: bool
) -> TruckScoreResponse:
    """What ``_response`` makes of ``pipelines.score.assemble``'s frames, read from the parts
    (``spot_reasons.truck_reasons`` for the reasons): assembling the three output frames takes
    a dozen joins and fills, which for one truck cost more than scoring it; only the
    declarations' totals need Polars."""
    from pipelines.score import any_wrong

    items_by_declaration: dict[str, list[ItemScore]] = {}
    for declaration_id, item_no, risk, duty in scored.items.select(
        "declaration_id", "item_no", "risk", "duty_at_risk_usd"
    ).iter_rows():
        items_by_declaration.setdefault(declaration_id, []).append(
            ItemScore(
                item_no=item_no,
                risk=risk,
                duty_at_risk_usd=duty,
                reasons=reasons.items.get((declaration_id, item_no), []),
            )
        )
    totals = scored.items.group_by("declaration_id", maintain_order=True).agg(
        any_wrong().alias("risk"),  # pipelines.score's declaration risk
        pl.col("duty_at_risk_usd").sum(),
    )
    declarations = [
        DeclarationScore(
            declaration_id=declaration_id,
            risk=risk,
            duty_at_risk_usd=duty,
            reasons=reasons.declarations.get(declaration_id, []),
            items=items_by_declaration.get(declaration_id, []),
        )
        for declaration_id, risk, duty in totals.iter_rows()
    ]
    return _truck_response(
        truck.row(0, named=True),
        reasons=reasons.truck,
        model_version=scored.model_version,
        run_id=scored.run_id,
        published=published,
        declarations=declarations,
    )


def _response(batch: Any, row: dict[str, Any], *, published: bool) -> TruckScoreResponse:
    items_by_declaration: dict[str, list[ItemScore]] = {}
    for item in batch.items.iter_rows(named=True):
        items_by_declaration.setdefault(item["declaration_id"], []).append(
            ItemScore(
                item_no=item["item_no"],
                risk=item["risk"],
                duty_at_risk_usd=item["duty_at_risk_usd"],
                reasons=item["reasons"],
            )
        )
    declarations = [
        DeclarationScore(
            declaration_id=d["declaration_id"],
            risk=d["risk"],
            duty_at_risk_usd=d["duty_at_risk_usd"],
            reasons=d["reasons"],
            items=items_by_declaration.get(d["declaration_id"], []),
        )
        for d in batch.declarations.iter_rows(named=True)
    ]
    return _truck_response(
        row,
        reasons=row["reasons"],
        model_version=row["model_version"],
        run_id=row["run_id"],
        published=published,
        declarations=declarations,
    )


def _truck_response(
    row: dict[str, Any],
    *,
    reasons: list[str],
    model_version: str,
    run_id: str,
    published: bool,
    declarations: list[DeclarationScore],
) -> TruckScoreResponse:
    """The response for one truck's row (key, crossing, risk, duty, lane, selection, decider)."""
    if row["lane"] not in LANES:
        raise RiskError(f"scoring gave an unknown lane {row['lane']!r}")
    return TruckScoreResponse(
        truck_id=row["truck_key"],
        crossing=row["crossing"],
        risk=row["risk"],
        duty_at_risk_usd=row["duty_at_risk_usd"],
        lane=row["lane"],
        selection=row["selection"],
        decided_by=row["decided_by"],
        reasons=reasons,
        model_version=model_version,
        model_run_id=run_id,
        published=published,
        declarations=declarations,
    )
