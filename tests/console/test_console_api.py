"""The JSON API: tokens, the queue, refusals of malformed scoring requests, OpenAPI."""

from __future__ import annotations

import copy

import httpx
import pytest
from console_support import Console
from sqlalchemy import select

from risk import store
from risk.console.schemas import EXAMPLE_ITEM
from risk.store.models import ApiToken


@pytest.fixture
def token(console: Console) -> str:
    with console.sessions.begin() as session:
        return store.add_token(session=session, username="officer1", label="gate-scanner")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize("header", [{}, {"Authorization": "Bearer rsk_not-a-real-token"}])
def test_the_api_needs_a_valid_token(console: Console, header: dict[str, str]) -> None:
    response = console.client().get("/api/v1/queue", headers=header)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


def test_tokens_are_stored_hashed_and_can_be_revoked(console: Console, token: str) -> None:
    with console.sessions() as session:
        stored = session.scalars(select(ApiToken.token_hash)).all()
    assert token not in stored and len(stored) == 1 and len(stored[0]) == 64
    client = console.client()
    assert client.get("/api/v1/queue", headers=bearer(token)).status_code == 200
    with console.sessions.begin() as session:
        assert store.revoke_tokens(session=session, username="officer1") == 1
    assert client.get("/api/v1/queue", headers=bearer(token)).status_code == 401


def test_the_api_queue_is_in_lane_order_and_filters(console: Console, token: str) -> None:
    client = console.client()
    body = client.get("/api/v1/queue", headers=bearer(token)).json()
    lanes = [truck["lane"] for truck in body["trucks"]]
    assert lanes == sorted(lanes, key=store.LANE_ORDER.index)
    assert sum(body["counts"].values()) == len(body["trucks"])
    red = client.get("/api/v1/queue", params={"lane": "red", "limit": 3}, headers=bearer(token))
    assert [t["lane"] for t in red.json()["trucks"]] == ["red"] * 3
    bad = client.get("/api/v1/queue", params={"lane": "purple"}, headers=bearer(token))
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["query", "lane"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"hs_code": "85A7"}, ["body", "items", 0, "hs_code"]),
        ({"origin_country": "ZQ"}, ["body", "items", 0, "origin_country"]),
        ({"customs_value_usd": -5}, ["body", "items", 0, "customs_value_usd"]),
        ({"procedure": "smuggling"}, ["body", "items", 0, "procedure"]),
        ({"declared_at": "yesterday"}, ["body", "items", 0, "declared_at"]),
        ({"importer_id": None}, ["body", "items", 0, "importer_id"]),
        ({"colour": "red"}, ["body", "items", 0, "colour"]),
    ],
)
def test_a_malformed_item_gets_422_naming_the_field(
    console: Console, token: str, change: dict[str, object], field: list[object]
) -> None:
    item = copy.deepcopy(EXAMPLE_ITEM) | change
    response = console.client().post(
        "/api/v1/trucks/score", json={"items": [item]}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert [error["loc"] for error in response.json()["detail"]] == [field]


def test_items_of_two_trucks_are_refused(console: Console, token: str) -> None:
    other = EXAMPLE_ITEM | {"truck_id": "ANOTHER-TRUCK", "item_no": 2}
    response = console.client().post(
        "/api/v1/trucks/score", json={"items": [EXAMPLE_ITEM, other]}, headers=bearer(token)
    )
    assert response.status_code == 422
    assert "share truck_id" in response.json()["detail"][0]["msg"]


def test_a_browser_session_posting_to_the_api_needs_the_csrf_header(console: Console) -> None:
    client = console.login("officer1")
    response = client.post("/api/v1/trucks/score", json={"items": [EXAMPLE_ITEM]})
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert client.get("/api/v1/queue").status_code == 200  # reading needs no token


# MLflow 3.17's tracking store maps a relationship with ``noload``, deprecated in SQLAlchemy
# 2.1; as an error it would break the mapping of every ORM class in the process.
@pytest.mark.filterwarnings(
    "ignore:The ``noload`` loader strategy is deprecated:sqlalchemy.exc.SADeprecationWarning"
)
def test_without_a_champion_model_scoring_answers_503(console: Console, token: str) -> None:
    response = console.client().post(
        "/api/v1/trucks/score", json={"items": [EXAMPLE_ITEM]}, headers=bearer(token)
    )
    assert response.status_code == 503
    assert "models:/" in response.json()["detail"]


def test_openapi_documents_the_api_with_models_and_examples(console: Console) -> None:
    spec = httpx.get(f"{console.url}/api/openapi.json").json()
    score = spec["paths"]["/api/v1/trucks/score"]["post"]
    assert score["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "TruckScoreResponse"
    )
    assert {"401", "403", "422", "503"} <= set(score["responses"])
    schemas = spec["components"]["schemas"]
    assert schemas["TruckScoreRequest"]["examples"][0]["items"][0]["hs_code"] == "8517130000"
    assert "examples" in schemas["TruckScoreResponse"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert "/api/v1/queue" in spec["paths"] and "/queue" not in spec["paths"]
    docs = httpx.get(f"{console.url}/api/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
