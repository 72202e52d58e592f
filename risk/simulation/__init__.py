"""Queue simulation of a road crossing: a discrete-event engine and the policies it compares."""

from risk.simulation.engine import Crossing, SimulationResult, Truck, simulate
from risk.simulation.policies import (
    Detection,
    PolicyResult,
    Queue,
    crossings_for,
    format_table,
    load_queue,
    model_lanes,
    results_table,
    rule_lanes,
    run_policy,
    share_lanes,
)

__all__ = [
    "Crossing",
    "Detection",
    "PolicyResult",
    "Queue",
    "SimulationResult",
    "Truck",
    "crossings_for",
    "format_table",
    "model_lanes",
    "load_queue",
    "results_table",
    "rule_lanes",
    "run_policy",
    "share_lanes",
    "simulate",
]
