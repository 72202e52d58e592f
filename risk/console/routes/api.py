"""The JSON API for machine clients (bearer tokens from `risk users token`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from risk import store
from risk.console.deps import ApiUser, DbSession, State
from risk.console.schemas import (
    ApiError,
    Lane,
    QueuePage,
    TruckScoreRequest,
    TruckScoreResponse,
)
from risk.console.views import queue_entry

ERRORS = {
    401: {"model": ApiError, "description": "No valid API token or session."},
    403: {"model": ApiError, "description": "The user's role may not do this."},
}

router = APIRouter(prefix="/api/v1", tags=["api"], responses=ERRORS)  # type: ignore[arg-type]


@router.post(
    "/trucks/score",
    response_model=TruckScoreResponse,
    summary="Score one truck on the spot",
    responses={
        422: {"description": "A malformed item: the response names the field."},
        503: {"model": ApiError, "description": "No champion model to score with."},
    },
)
def score_truck(
    payload: TruckScoreRequest,
    user: ApiUser,
    state: State,
    db: DbSession,
    response: Response,
    publish: Annotated[
        bool, Query(description="Also put the truck into its crossing's queue.")
    ] = False,
) -> TruckScoreResponse:
    """Risk, duty at risk, lane and reasons for one truck's declaration items, with the
    champion model. The lane is the one the truck gets if it joins its crossing's queue now
    (the capacity left after the waiting trucks)."""
    result, timings = state.scoring.score_truck(
        session=db, request=payload, publish=publish, by=user
    )
    response.headers["Server-Timing"] = ", ".join(
        f"{stage};dur={seconds * 1000:.1f}" for stage, seconds in timings.items()
    )
    return result


@router.get("/queue", response_model=QueuePage, summary="A crossing's queue in lane order")
def queue(
    user: ApiUser,
    db: DbSession,
    crossing: Annotated[str | None, Query(max_length=64)] = None,
    lane: Annotated[Lane | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> QueuePage:
    """Waiting trucks, red first, then yellow, blue, green; riskiest first within a lane."""
    now = store.utcnow()
    trucks = store.queue(session=db, crossing=crossing, lane=lane, limit=limit)
    return QueuePage(
        crossing=crossing,
        lane=lane,
        generated_at=now,
        counts=store.lane_counts(session=db, crossing=crossing),
        trucks=[queue_entry(t, now=now) for t in trucks],
    )
