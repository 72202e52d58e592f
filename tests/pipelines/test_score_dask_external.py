"""Scoring against a separately started Dask scheduler and workers (a real cluster's shape).

The scheduler and two worker processes are started with the ``dask`` command line, as an
operator would start them on cluster nodes, each bound to 127.0.0.1; the job connects by
address, as ``risk score --cluster tcp://host:8786`` does. The scorer, the batch partitions
and the lanes travel over TCP to other processes, so everything the workers need must pickle.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from score_support import world

from pipelines.score import score_batch
from pipelines.score_dask import cluster_client, score_on_cluster
from risk.lanes import CapacityConfig, LaneCapacity

CAPACITY = CapacityConfig(
    seed=3, default=LaneCapacity(physical_per_hour=1.0, document_per_hour=3.0, horizon_hours=8.0)
)
DASK = Path(sys.executable).with_name("dask")
START_TIMEOUT_S = 60.0


def _start(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE", "MLFLOW_DISABLE_TELEMETRY": "true"}
    with log.open("wb") as out:
        # Own process group: stopping the group stops the nannies' worker children too.
        return subprocess.Popen(
            [str(DASK), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    scheduler = _start(
        [
            "scheduler",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--no-dashboard",
            "--scheduler-file",
            str(scheduler_file),
        ],
        folder / "scheduler.log",
    )
    workers: subprocess.Popen[bytes] | None = None
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not scheduler_file.is_file():
            assert scheduler.poll() is None, (folder / "scheduler.log").read_text()
            assert time.monotonic() < deadline, "the Dask scheduler did not start"
            time.sleep(0.2)
        time.sleep(0.2)  # the file is written in one go, but give the writer its close
        address = json.loads(scheduler_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        workers = _start(
            [
                "worker",
                address,
                "--host",
                "127.0.0.1",
                "--nworkers",
                "2",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--memory-limit",
                "2GiB",
            ],
            folder / "workers.log",
        )
        with cluster_client(address) as client:
            client.wait_for_workers(2, timeout=START_TIMEOUT_S)
        yield address
    finally:
        if workers is not None:
            _stop(workers)
        _stop(scheduler)


def test_external_scheduler_equals_local(scheduler_address: str) -> None:
    w = world()
    local = score_batch(w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals)
    remote = score_on_cluster(
        w.queue, w.scorer, address=scheduler_address, capacity=CAPACITY, arrivals=w.arrivals
    )
    assert remote.items.equals(local.items)
    assert remote.declarations.equals(local.declarations)
    assert remote.trucks.equals(local.trucks)
    assert set(remote.trucks["lane"]) == {"red", "yellow", "green"}


def test_external_workers_did_the_work(scheduler_address: str) -> None:
    """The partitions ran in the worker processes, not in this one."""
    w = world()
    with cluster_client(scheduler_address) as client:
        pids = set(client.run(os.getpid).values())
        score_on_cluster(
            w.queue, w.scorer, capacity=CAPACITY, arrivals=w.arrivals, client=client, partitions=2
        )
        processed = client.run(
            lambda dask_worker: len(dask_worker.state.tasks) + dask_worker.state.executed_count
        )
    assert len(pids) == 2
    assert os.getpid() not in pids
    assert all(count > 0 for count in processed.values())
