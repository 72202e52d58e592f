"""Process settings: every command runs with them, and what the environment says wins."""

from __future__ import annotations

import os

import pytest

from risk import cli
from risk.process import SETTINGS


def test_every_command_runs_with_the_process_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SETTINGS:
        monkeypatch.delenv(name, raising=False)
    cli._before_any_command()
    assert {name: os.environ[name] for name in SETTINGS} == SETTINGS
    assert SETTINGS["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:10000"


def test_the_environment_s_own_values_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("_RJEM_MALLOC_CONF", "dirty_decay_ms:0")
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    cli._before_any_command()
    assert os.environ["_RJEM_MALLOC_CONF"] == "dirty_decay_ms:0"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
