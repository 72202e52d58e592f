"""The JSON API for machine clients (bearer tokens from `risk users token`)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Response

from risk import store
from risk.console.deps import ApiUser, DbSession, State
from risk.console.i18n import DEFAULT_LANGUAGE
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

# The language of the reasons returned; the console's default (Russian) unless asked.
ReasonLanguage = Annotated[
    Literal["ru", "en"],
    Query(
        description="Language of the reasons: `ru` (the console's default) or `en`. Trucks "
        "published with one language only return it whatever is asked."
    ),
]

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
    lang: ReasonLanguage = DEFAULT_LANGUAGE,  # type: ignore[assignment]
) -> TruckScoreResponse:
    """Risk, duty at risk, lane and reasons for one truck's declaration items, with the
    champion model. The lane is the one the truck gets if it joins its crossing's queue now
    (the capacity left after the waiting trucks). Reasons in ``lang``; a published truck
    keeps them in both languages."""
    result, timings = state.scoring.score_truck(
        session=db, request=payload, publish=publish, by=user, lang=lang
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
    lang: ReasonLanguage = DEFAULT_LANGUAGE,  # type: ignore[assignment]
) -> QueuePage:
    """Waiting trucks, red first, then yellow, blue, green; riskiest first within a lane.
    Reasons in ``lang`` (the other language where a truck has none in it)."""
    now = store.utcnow()
    trucks = store.queue(session=db, crossing=crossing, lane=lane, limit=limit)
    return QueuePage(
        crossing=crossing,
        lane=lane,
        generated_at=now,
        counts=store.lane_counts(session=db, crossing=crossing),
        trucks=[queue_entry(t, now=now, lang=lang) for t in trucks],
    )
