"""The same dbt project on a real PostgreSQL server gives the same KPI values as DuckDB.

The `postgres_database` fixture uses the server named by KPI_PG_HOST (and KPI_PG_PORT,
KPI_PG_USER, KPI_PG_PASSWORD) when set; otherwise it starts a private server: the
PostgreSQL binaries of the Debian package (installed with `apt-get install -y postgresql`
when missing and possible), `initdb` in a temporary folder with trust authentication, on
a free local port, stopped at the end of the session. When neither is possible the tests
are skipped with the reason, so a machine without PostgreSQL still runs the default tests.

Then `dbt seed` and `dbt build --target postgres` (models, data tests, unit tests) run
into a fresh database, and every row of `analytics.kpi_values` and `analytics.kpi_windows`
is compared with the DuckDB build of the session (`demo_warehouse`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline.project import Project
from tests.conftest import REPO_ROOT
from tests.support import apt
from tests.support.engines import VALUE_KEYS, WINDOW_KEYS, compare, duckdb_rows

pytestmark = [pytest.mark.postgres, pytest.mark.dbt]

SERVER_SETTINGS = {
    # a throwaway test server: no durability, memory for the KPI marts' sorts and joins
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "work_mem": "256MB",
    "maintenance_work_mem": "256MB",
    "shared_buffers": "256MB",
    "jit": "off",
    "max_connections": "40",
    # kpi_values' CTEs are estimated at a tenth of their rows, and PostgreSQL then merge-joins
    # `ly` on 3 of its 5 keys (a quadratic join filter); hash joins on all 5 keys are fast
    "enable_mergejoin": "off",
}


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    user: str
    password: str

    def connect(self, dbname: str) -> Any:
        import psycopg2

        connection = psycopg2.connect(
            host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname
        )
        connection.autocommit = True
        return connection


# --- the server ---------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _postgres_bin() -> Path | None:
    """The newest PostgreSQL server binaries on this machine (Debian layout, or PATH)."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0,
    )
    if candidates:
        return candidates[-1].parent
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _as_postgres_user(argv: Sequence[str]) -> list[str]:
    """initdb and pg_ctl refuse to run as root: run them as the `postgres` system user."""
    if os.geteuid() != 0:
        return list(argv)
    runuser = shutil.which("runuser")
    if runuser:
        return [runuser, "-u", "postgres", "--", *argv]
    return ["su", "postgres", "-s", "/bin/sh", "-c", " ".join(f"'{a}'" for a in argv)]


def _start_private_server(bin_dir: Path) -> tuple[Server, Path]:
    folder = Path(tempfile.mkdtemp(prefix="kpi-postgres-"))
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    folder.chmod(0o700)
    data = folder / "data"
    init = subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        raise RuntimeError(f"initdb failed: {init.stderr or init.stdout}")
    port = _free_port()
    options = " ".join(
        [f"-p {port}", f"-k {folder}", "-c listen_addresses=127.0.0.1"]
        + [f"-c {k}={v}" for k, v in SERVER_SETTINGS.items()]
    )
    start = subprocess.run(
        _as_postgres_user(
            [
                str(bin_dir / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                str(folder / "server.log"),
                "-o",
                options,
                "-w",
                "-t",
                "120",
                "start",
            ]
        ),
        capture_output=True,
        text=True,
        timeout=180,
    )
    if start.returncode != 0:
        log = (
            (folder / "server.log").read_text(errors="replace")
            if (folder / "server.log").exists()
            else ""
        )
        _stop_private_server(bin_dir, folder)
        raise RuntimeError(f"pg_ctl start failed: {start.stderr or start.stdout}\n{log}")
    return Server("127.0.0.1", port, "postgres", ""), folder


def _stop_private_server(bin_dir: Path, folder: Path) -> None:
    subprocess.run(
        _as_postgres_user(
            [str(bin_dir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "stop"]
        ),
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[Server]:
    """A PostgreSQL server: KPI_PG_HOST's, else a private one started (and stopped) here."""
    try:
        import dbt.adapters.postgres  # noqa: F401
        import psycopg2  # noqa: F401
    except ImportError:
        pytest.skip("dbt-postgres is not installed: pip install -e '.[postgres]'")
    if os.environ.get("KPI_PG_HOST"):
        server = Server(
            os.environ["KPI_PG_HOST"],
            int(os.environ.get("KPI_PG_PORT", "5432")),
            os.environ.get("KPI_PG_USER", "postgres"),
            os.environ.get("KPI_PG_PASSWORD", ""),
        )
        try:
            server.connect("postgres").close()
        except Exception as exc:
            pytest.skip(
                f"KPI_PG_HOST={server.host}:{server.port} does not accept connections: {exc}"
            )
        yield server
        return
    bin_dir = _postgres_bin()
    if bin_dir is None:
        reason = apt.install("postgresql", "PostgreSQL")
        bin_dir = _postgres_bin()
        if bin_dir is None:
            pytest.skip(reason or "PostgreSQL binaries not found after installing the package")
    try:
        server, folder = _start_private_server(bin_dir)
    except (RuntimeError, OSError, subprocess.TimeoutExpired, KeyError) as exc:
        pytest.skip(f"could not start a private PostgreSQL server: {exc}")
    try:
        yield server
    finally:
        _stop_private_server(bin_dir, folder)


@pytest.fixture(scope="session")
def postgres_build(
    postgres_server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, str, dict[str, float]]]:
    """A fresh database holding `dbt seed` + `dbt build --target postgres` of the project."""
    if not any((REPO_ROOT / "seeds").rglob("*.csv")):
        pytest.skip("no seed CSVs in seeds/ (run `kpi generate` first)")
    dbname = f"kpi_test_{secrets.token_hex(4)}"
    admin = postgres_server.connect("postgres")
    try:
        admin.cursor().execute(f'CREATE DATABASE "{dbname}"')
    finally:
        admin.close()
    folder = tmp_path_factory.mktemp("postgres_build")
    project = Project(
        REPO_ROOT,
        env={
            "KPI_TARGET": "postgres",
            "KPI_PG_HOST": postgres_server.host,
            "KPI_PG_PORT": str(postgres_server.port),
            "KPI_PG_USER": postgres_server.user,
            "KPI_PG_PASSWORD": postgres_server.password,
            "KPI_PG_DATABASE": dbname,
            "KPI_PG_SSLMODE": "disable",
            "KPI_SCHEMA": "analytics",
            "KPI_WAREHOUSE": str(folder / "unused.duckdb"),
            "DBT_TARGET_PATH": str(folder / "target"),
            "DBT_LOG_PATH": str(folder / "logs"),
        },
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    project.dbt(["seed"])
    timings["seed"] = time.perf_counter() - started
    started = time.perf_counter()
    project.dbt(["build", "--exclude", "resource_type:seed"])
    timings["build"] = time.perf_counter() - started
    try:
        yield postgres_server, dbname, timings
    finally:
        admin = postgres_server.connect("postgres")
        try:
            admin.cursor().execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        finally:
            admin.close()


# --- reading and comparing ------------------------------------------------------------------


def _postgres_rows(
    server: Server, dbname: str, table: str, keys: Sequence[str]
) -> tuple[list[str], list[tuple[Any, ...]]]:
    # byte order ("C") so both engines sort text keys the same way
    order = ", ".join(f'{k} COLLATE "C"' if k not in ("period_start",) else k for k in keys)
    connection = server.connect(dbname)
    try:
        cursor = connection.cursor()
        cursor.execute(f"SELECT * FROM analytics.{table} ORDER BY {order}")
        return [d[0] for d in cursor.description], cursor.fetchall()
    finally:
        connection.close()


# --- the tests --------------------------------------------------------------------------------


def test_postgres_build_gives_the_same_kpi_values_as_duckdb(
    postgres_build: tuple[Server, str, dict[str, float]], demo_warehouse: Path
) -> None:
    server, dbname, timings = postgres_build
    duck = duckdb_rows(demo_warehouse, "kpi_values", VALUE_KEYS)
    pg = _postgres_rows(server, dbname, "kpi_values", VALUE_KEYS)
    assert len(duck[1]) > 1000
    assert len(pg[1]) == len(duck[1])
    problems = compare(duck, pg, VALUE_KEYS, "postgres")  # is_deviation too: flat series use a tolerance
    assert not problems, "\n".join(problems)
    kpis = {r[0] for r in duck[1]}
    grains = {r[duck[0].index("grain")] for r in duck[1]}
    assert len(kpis) > 10 and grains == {"day", "week", "month", "quarter", "year"}
    print(
        f"postgres seed {timings['seed']:.0f} s, build {timings['build']:.0f} s; {len(pg[1])} rows equal"
    )


def test_postgres_build_gives_the_same_windows_as_duckdb(
    postgres_build: tuple[Server, str, dict[str, float]], demo_warehouse: Path
) -> None:
    server, dbname, _ = postgres_build
    duck = duckdb_rows(demo_warehouse, "kpi_windows", WINDOW_KEYS)
    pg = _postgres_rows(server, dbname, "kpi_windows", WINDOW_KEYS)
    assert len(pg[1]) == len(duck[1])
    problems = compare(duck, pg, WINDOW_KEYS, "postgres")
    assert not problems, "\n".join(problems)


def test_postgres_catalog_and_wide_tables_match(
    postgres_build: tuple[Server, str, dict[str, float]], demo_warehouse: Path
) -> None:
    server, dbname, _ = postgres_build
    for table, keys in (
        ("kpi_catalog", ("kpi",)),
        ("kpi_monthly", ("period_start",)),
        ("kpi_yearly", ("period_start",)),
    ):
        problems = compare(
            duckdb_rows(demo_warehouse, table, keys),
            _postgres_rows(server, dbname, table, keys),
            keys,
            "postgres",
        )
        assert not problems, f"{table}:\n" + "\n".join(problems)
