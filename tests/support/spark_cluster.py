"""A standalone Spark cluster on loopback for the cluster tier: a master, two workers (one core
each) and a Thrift server whose master is that cluster, all started from pyspark's own jars
(`spark-class`, `spark-submit`) and stopped at the end.

The workers keep their executors' logs under their work folders, so a test can tell that the
tasks ran there and not in the driver.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

WORKERS = 2
START_TIMEOUT = 180  # seconds for the master, the workers and the Thrift server to come up


@dataclass(frozen=True)
class Cluster:
    thrift_port: int
    warehouse: Path
    worker_folders: tuple[Path, ...]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def _wait(until: float, what: str, ready: Callable[[], bool], logs: list[Path]) -> None:
    while not ready():
        if time.monotonic() > until:
            tails = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in logs if p.exists())
            raise TimeoutError(f"{what} did not start in {START_TIMEOUT} s\n{tails}")
        time.sleep(1)


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def _process(args: list[str], log: Path, env: dict[str, str], cwd: Path) -> Iterator[None]:
    with log.open("w") as out:
        proc = subprocess.Popen(
            args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        yield
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def standalone_cluster(folder: Path, memory_per_worker: str = "2g") -> Iterator[Cluster]:
    home = _spark_home()
    bin_ = home / "bin"
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1",
           "SPARK_LOG_DIR": str(folder / "logs"), "SPARK_NO_DAEMONIZE": "1"}
    folder.mkdir(parents=True, exist_ok=True)
    master_port, thrift_port = _free_port(), _free_port()
    master = f"spark://127.0.0.1:{master_port}"
    until = time.monotonic() + START_TIMEOUT
    logs = [folder / "master.log"]
    with ExitStack() as stack:
        stack.enter_context(_process(
            [str(bin_ / "spark-class"), "org.apache.spark.deploy.master.Master",
             "--host", "127.0.0.1", "--port", str(master_port), "--webui-port", str(_free_port())],
            logs[0], env, folder,
        ))
        _wait(until, "the Spark master", lambda: _port_open(master_port), logs)
        workers = tuple(folder / f"worker{i}" for i in range(1, WORKERS + 1))
        for work in workers:
            logs.append(work.with_suffix(".log"))
            stack.enter_context(_process(
                [str(bin_ / "spark-class"), "org.apache.spark.deploy.worker.Worker",
                 "--host", "127.0.0.1", "--cores", "1", "--memory", memory_per_worker,
                 "--webui-port", str(_free_port()), "--work-dir", str(work), master],
                logs[-1], env, folder,
            ))
        logs.append(folder / "thrift.log")
        warehouse = folder / "warehouse"
        stack.enter_context(_process(
            [str(bin_ / "spark-submit"), "--master", master,
             "--class", "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2",
             "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.driver.bindAddress=127.0.0.1",
             "--conf", "spark.ui.enabled=false", "--conf", "spark.executor.cores=1",
             "--conf", "spark.executor.memory=1g", "--conf", "spark.sql.session.timeZone=UTC",
             "--conf", "spark.sql.shuffle.partitions=4",
             "--conf", f"spark.sql.warehouse.dir={warehouse}",
             "--hiveconf", f"hive.server2.thrift.port={thrift_port}",
             "--hiveconf", "hive.server2.thrift.bind.host=127.0.0.1",
             "spark-internal"],
            logs[-1], env, folder,
        ))

        def executors_on_both_workers() -> bool:
            return all(any(work.glob("app-*/*/stderr")) for work in workers)

        _wait(until, "the Thrift server", lambda: _port_open(thrift_port), logs)
        _wait(until, "the executors", executors_on_both_workers, logs)
        yield Cluster(thrift_port, warehouse, workers)


def tasks_run_by(worker: Path) -> int:
    """How many tasks the executors of this worker ran (their logs' "Running task" lines)."""
    return sum(
        log.read_text(errors="replace").count("Running task")
        for log in worker.glob("app-*/*/stderr")
    )
