"""A discrete-event simulation of a road crossing, driven by a heap of timed events.

Every truck queues outside the barrier in arrival order. It enters when a primary-control
booth is free and the zone past the barrier has room (``zone_capacity``): the 2025 lesson is
that crossings report no jam because trucks only enter as fast as they can be checked, so the
queue stands outside. At the booth it spends ``minutes_green``; a green truck is then released,
a yellow one waits for a document officer, a red one for an inspection bay. A truck leaves the
zone when released. Times are minutes from the start; ties are broken by the order events were
scheduled, so a run is deterministic.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from risk.lanes import LaneCapacity

_ARRIVE, _BOOTH_DONE, _DOC_DONE, _BAY_DONE = range(4)


@dataclass(frozen=True)
class Crossing:
    """The servers of one crossing and how long each kind of stop takes."""

    booths: int = 4
    minutes_green: float = 3.0
    document_officers: int = 5
    minutes_document: float = 15.0
    minutes_document_per_item: float = 0.0
    physical_bays: int = 6
    minutes_physical: float = 60.0
    minutes_physical_per_item: float = 0.0
    zone_capacity: int = 60

    @classmethod
    def from_capacity(cls, cap: LaneCapacity) -> Crossing:
        """The crossing whose servers deliver the rates of a capacity entry."""
        return cls(
            booths=cap.booths,
            minutes_green=cap.minutes_green,
            document_officers=cap.document_officers,
            minutes_document=cap.minutes_document,
            minutes_document_per_item=cap.minutes_document_per_item,
            physical_bays=cap.physical_bays,
            minutes_physical=cap.minutes_physical,
            minutes_physical_per_item=cap.minutes_physical_per_item,
            zone_capacity=cap.zone_capacity,
        )

    def service_minutes(self, lane: str, n_items: int) -> float:
        extra = max(n_items - 1, 0)
        if lane == "red":
            return self.minutes_physical + self.minutes_physical_per_item * extra
        if lane == "yellow":
            return self.minutes_document + self.minutes_document_per_item * extra
        return 0.0


@dataclass(frozen=True)
class Truck:
    """One truck to run through a crossing."""

    crossing: str
    lane: str  # green / yellow / red
    arrival_min: float = 0.0
    n_items: int = 1


@dataclass(frozen=True)
class SimulationResult:
    """When each truck entered and left, and the number of trucks not yet released over time."""

    arrival_min: np.ndarray
    entered_min: np.ndarray
    released_min: np.ndarray
    queue_time_min: np.ndarray
    queue_length: np.ndarray

    @property
    def hours_to_clear(self) -> float:
        return float(self.released_min.max() / 60) if len(self.released_min) else 0.0

    @property
    def wait_hours(self) -> np.ndarray:
        """From joining the queue to release: what a driver loses at the border."""
        return (self.released_min - self.arrival_min) / 60


@dataclass
class _State:
    crossing: Crossing
    outside: deque[int] = field(default_factory=deque)
    documents: deque[int] = field(default_factory=deque)
    bays: deque[int] = field(default_factory=deque)
    booths_free: int = 0
    officers_free: int = 0
    bays_free: int = 0
    in_zone: int = 0


def simulate(trucks: Sequence[Truck], crossings: Mapping[str, Crossing]) -> SimulationResult:
    """Run every truck through its crossing and return the timings."""
    n = len(trucks)
    arrival = np.array([t.arrival_min for t in trucks], dtype=np.float64)
    entered = np.full(n, np.nan)
    released = np.full(n, np.nan)
    states: dict[str, _State] = {}
    for truck in trucks:
        if truck.crossing not in states:
            crossing = crossings[truck.crossing]
            states[truck.crossing] = _State(
                crossing=crossing,
                booths_free=crossing.booths,
                officers_free=crossing.document_officers,
                bays_free=crossing.physical_bays,
            )
    heap: list[tuple[float, int, int, int]] = []
    seq = 0

    def schedule(time: float, kind: int, index: int) -> None:
        nonlocal seq
        heapq.heappush(heap, (time, seq, kind, index))
        seq += 1

    for index in np.argsort(arrival, kind="stable"):
        schedule(float(arrival[index]), _ARRIVE, int(index))

    in_system = 0
    times: list[float] = [0.0]
    lengths: list[int] = [0]

    def record(time: float) -> None:
        if times[-1] == time:
            lengths[-1] = in_system
        else:
            times.append(time)
            lengths.append(in_system)

    def admit(state: _State, now: float) -> None:
        cross = state.crossing
        while state.outside and state.booths_free and state.in_zone < cross.zone_capacity:
            index = state.outside.popleft()
            state.booths_free -= 1
            state.in_zone += 1
            entered[index] = now
            schedule(now + cross.minutes_green, _BOOTH_DONE, index)

    def start_services(state: _State, now: float) -> None:
        cross = state.crossing
        while state.documents and state.officers_free:
            index = state.documents.popleft()
            state.officers_free -= 1
            minutes = cross.service_minutes("yellow", trucks[index].n_items)
            schedule(now + minutes, _DOC_DONE, index)
        while state.bays and state.bays_free:
            index = state.bays.popleft()
            state.bays_free -= 1
            minutes = cross.service_minutes("red", trucks[index].n_items)
            schedule(now + minutes, _BAY_DONE, index)

    def release(state: _State, index: int, now: float) -> None:
        nonlocal in_system
        released[index] = now
        state.in_zone -= 1
        in_system -= 1
        record(now)

    while heap:
        now, _, kind, index = heapq.heappop(heap)
        state = states[trucks[index].crossing]
        if kind == _ARRIVE:
            state.outside.append(index)
            in_system += 1
            record(now)
        elif kind == _BOOTH_DONE:
            state.booths_free += 1
            lane = trucks[index].lane
            if lane == "red":
                state.bays.append(index)
            elif lane == "yellow":
                state.documents.append(index)
            else:
                release(state, index, now)
        elif kind == _DOC_DONE:
            state.officers_free += 1
            release(state, index, now)
        else:
            state.bays_free += 1
            release(state, index, now)
        start_services(state, now)
        admit(state, now)

    return SimulationResult(
        arrival_min=arrival,
        entered_min=entered,
        released_min=released,
        queue_time_min=np.array(times),
        queue_length=np.array(lengths),
    )
