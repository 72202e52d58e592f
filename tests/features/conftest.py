"""Fixtures of the feature tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from feature_traffic import Traffic, make_traffic


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    return make_traffic(150, seed=7)


@pytest.fixture(name="make_traffic", scope="session")
def make_traffic_fixture() -> Callable[..., Traffic]:
    return make_traffic
