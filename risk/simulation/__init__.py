"""Queue simulation of a road crossing: a discrete-event engine and the policies it compares."""

from risk.simulation.engine import Crossing, SimulationResult, Truck, simulate
from risk.simulation.policies import (
    Detection,
    PolicyResult,
    crossings_for,
    format_table,
    model_lanes,
    queue_trucks,
    results_table,
    rule_lanes,
    run_policy,
    share_lanes,
    truck_key,
)

__all__ = [
    "Crossing",
    "Detection",
    "PolicyResult",
    "SimulationResult",
    "Truck",
    "crossings_for",
    "format_table",
    "model_lanes",
    "queue_trucks",
    "results_table",
    "rule_lanes",
    "run_policy",
    "share_lanes",
    "simulate",
    "truck_key",
]
