"""Every ``etl`` command from the built wheel, installed (not editable) into a fresh virtualenv.

That is how Glue, Lambda and ``pip install fintech-etl`` get the package: no repository beside it. The
commands run from a folder outside the checkout with ``PYTHONSAFEPATH=1`` and no ``PYTHONPATH``, so only
the installed files can answer; the fixture first proves ``etl`` imports from the venv's site-packages.
The venv is built once for the module (the wheel's dependencies come from pip's cache after the first run).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import psycopg
import pytest

from etl.db import migrate
from tests import pg
from tests.aws.test_sim_cli import without_statement
from tests.aws.test_static import POLICIES
from tests.environment import FAKE_AWS

REPO = Path(__file__).resolve().parents[2]
COMMANDS = ("validate", "generate", "run", "status", "db", "demo", "sim", "backfill")


@dataclass
class Installed:
    venv: Path
    work: Path
    env: dict[str, str]
    server_url: str

    def python(self, code: str, database: str | None = None) -> str:
        env = dict(self.env)
        if database is not None:
            env |= {"ETL_DATABASE_URL": pg.database_url(self.server_url, database), "ETL_HOME": str(self.work / "py")}
        done = subprocess.run(
            [str(self.venv / "bin" / "python"), "-c", code],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    def etl(
        self, *args: str, database: str | None = None, home: str = "home", timeout: float = 900
    ) -> subprocess.CompletedProcess:
        """``etl ...`` in the venv; ``home`` names the test's own ``ETL_HOME`` (zones) under the work folder."""
        env = dict(self.env) | {"ETL_HOME": str(self.work / home)}
        if database is not None:
            env["ETL_DATABASE_URL"] = pg.database_url(self.server_url, database)
        return subprocess.run(
            [str(self.venv / "bin" / "etl"), *args],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def database(self, *, migrated: bool) -> str:
        """A fresh database on the test cluster, migrated by the installed ``etl db upgrade`` if asked."""
        name = pg.create_database(self.server_url)
        if migrated:
            done = self.etl("db", "upgrade", database=name)
            assert done.returncode == 0, done.stderr
        return name


def _run(args: list[str], **kwargs) -> None:
    done = subprocess.run(args, capture_output=True, text=True, **kwargs)
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-4000:]}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory, pg_url: str) -> Iterator[Installed]:
    root = tmp_path_factory.mktemp("wheel")
    dist, venv, work = root / "dist", root / "venv", root / "work"
    work.mkdir()
    source = root / "source"  # a clean copy: a stale build/ in the checkout must not leak into the wheel
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        if (REPO / name).is_file():
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, source / name)
    _run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(dist)], timeout=600)
    (wheel,) = dist.glob("fintech_etl-*.whl")
    _run([sys.executable, "-m", "venv", str(venv)], timeout=300)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[notebooks,aws]"], timeout=1800)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_", "PYTHON", "VIRTUAL_ENV", "AWS_"))}
    env |= FAKE_AWS | {
        "PATH": f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONSAFEPATH": "1",  # the working directory is never on sys.path
        "COLUMNS": "200",
        "ETL_PAN_KEY": "installed-wheel-test-pan-key",
    }
    found = Installed(venv, work, env, pg_url)
    where = found.python("import etl, sys; print(etl.__file__); print(*sys.path, sep='\\n')").splitlines()
    assert Path(where[0]).is_relative_to(venv) and "site-packages" in where[0], where
    assert not any(entry and Path(entry).resolve().is_relative_to(REPO) for entry in where[1:]), where
    yield found
    shutil.rmtree(venv, ignore_errors=True)  # about 1 GB; pytest keeps its last temp folders


def test_every_command_is_there(installed: Installed) -> None:
    done = installed.etl("--help")
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert f" {command} " in done.stdout, command


def test_packaged_data_is_inside_the_installed_package(installed: Installed) -> None:
    code = (
        "from etl import package_data as p; "
        "print(p.state_machine(), p.handlers_dir(), p.notebooks_dir(), p.samples_dir(), p.package_path('sql'), "
        "p.template(), p.policies_dir(), p.rds_ca_bundle(), sep='\\n')"
    )
    for path in installed.python(code).splitlines():
        assert Path(path).is_relative_to(installed.venv), path
    listed = installed.python(
        "from etl.db.migrate import available; from etl.package_data import handlers_dir, notebooks_dir; "
        "print(len(available()), sorted(p.stem for p in handlers_dir().glob('*.py')), "
        "sorted(p.stem for p in notebooks_dir().glob('*.ipynb')))"
    )
    assert listed.startswith(f"{len(migrate.available())} ")
    assert "'rds_write'" in listed and "'migrate'" in listed and "'reprocess'" in listed
    policies = installed.python(
        "from etl.package_data import policies_dir; print(len(list(policies_dir().glob('*.json'))))"
    )
    assert int(policies) == len(POLICIES)


def test_generate_validate_db_run_status(installed: Installed) -> None:
    incoming = installed.work / "incoming"
    for args in (
        ["transactions", "--date", "2024-03-01", "--rows", "80"],
        ["transactions", "--date", "2024-03-02", "--rows", "80", "--updates-of", "2024-03-01"],
        ["account_summary", "--date", "2024-03-01", "--rows", "40", "--corrupt", "T002"],
    ):
        done = installed.etl("generate", *args, "--seed", "7", "-o", str(incoming))
        assert done.returncode == 0, done.stderr
    day1, day2 = incoming / "transactions_20240301.dat", incoming / "transactions_20240302.dat"
    corrupt = incoming / "account_summary_20240301.dat"
    assert installed.etl("validate", str(day1), str(day2)).returncode == 0
    rejected = installed.etl("validate", str(corrupt), "--json")
    assert rejected.returncode == 1 and "T002" in rejected.stdout

    database = installed.database(migrated=False)
    pending = json.loads(installed.etl("db", "status", "--json", database=database).stdout)
    shipped = [m.name for m in migrate.available()]  # the checkout's migrations, which the wheel must carry
    assert [m["applied_at"] for m in pending["migrations"]] == [None] * len(shipped)
    not_migrated = installed.etl("run", str(day1), database=database)
    assert not_migrated.returncode == 2 and day1.is_file()  # a configuration error; the file stays
    upgraded = json.loads(installed.etl("db", "upgrade", "--json", database=database).stdout)
    assert upgraded["applied"] == shipped
    status = json.loads(installed.etl("db", "status", "--json", database=database).stdout)
    assert all(m["applied_at"] for m in status["migrations"])

    ran = installed.etl("run", str(day1), str(day2), str(corrupt), "--json", database=database)
    assert ran.returncode == 1, ran.stderr  # the corrupt file is rejected, the others load
    ledger = json.loads(installed.etl("status", "--json", database=database).stdout)["files"]
    assert sorted((f["file_name"], f["status"]) for f in ledger) == [
        ("account_summary_20240301.dat", "REJECTED"),
        ("transactions_20240301.dat", "LOADED"),
        ("transactions_20240302.dat", "LOADED"),
    ]
    day2_row = next(f for f in ledger if f["file_name"] == "transactions_20240302.dat")
    assert day2_row["rows_updated"] > 0  # the next day's updates went through the upsert
    stop = installed.etl("db", "stop", database=database)
    assert stop.returncode == 2 and "nothing to stop" in stop.stderr + stop.stdout


def test_demo(installed: Installed) -> None:
    database = installed.database(migrated=True)
    done = installed.etl("demo", "--days", "2", "--rows", "60", database=database, home="demo")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "where the data is" in done.stdout
    with psycopg.connect(pg.database_url(installed.server_url, database)) as conn:
        statuses = conn.execute("SELECT status, count(*) FROM etl.file_ledger GROUP BY status").fetchall()
        loaded = conn.execute("SELECT count(*) FROM fintech.transactions").fetchone()[0]
        expected = conn.execute(
            "SELECT sum(rows_inserted) - sum(rows_deleted) FROM etl.file_ledger WHERE feed = 'transactions'"
        ).fetchone()[0]
    assert statuses == [("LOADED", 4)] and loaded == expected and loaded > 100


def test_sim_runs_the_packaged_state_machine_and_handlers(installed: Installed) -> None:
    database = installed.database(migrated=True)
    samples = Path(installed.python("from etl.package_data import samples_dir; print(samples_dir())"))
    files = [samples / "transactions_20240301.dat", samples / "corrupt" / "transactions_20240301.dat"]
    done = installed.etl("sim", *map(str, files), "--json", database=database)
    assert done.returncode == 1, done.stderr  # the corrupt file fails, as it must
    # stderr holds only the functions' JSON invocation lines (CloudWatch's on AWS), no warning: the installed
    # package enforces IAM as a checkout does
    logged = [json.loads(line) for line in done.stderr.splitlines()]
    assert logged and {line["message"] for line in logged} <= {"invocation done", "invocation failed"}
    good, bad = (json.loads(line) for line in done.stdout.splitlines())
    assert good["status"] == "SUCCESS" and good["notification"]["status"] == "SUCCESS"
    assert good["states"][0] == "ValidateFile" and "LoadToDatabase" in good["states"]
    assert bad["status"] == "FAILURE" and bad["notification"]["status"] == "FAILURE"
    assert good["denied"] == bad["denied"] == []
    with psycopg.connect(pg.database_url(installed.server_url, database)) as conn:
        assert conn.execute("SELECT count(*) FROM fintech.transactions").fetchone()[0] > 0


def test_sim_enforces_the_templates_policies_from_the_wheel(installed: Installed, tmp_path: Path) -> None:
    """IAM is checked from an installed wheel: the packaged template's policies allow the good file (above);
    a copy of the template one grant short (``--template``) fails the same file with the one-line denial."""
    template = Path(installed.python("from etl.package_data import template; print(template())"))
    assert template.is_relative_to(installed.venv)
    custom = without_statement("CopyIntoRawAndVerify", tmp_path / "template.yml", source=template)
    sample = installed.python("from etl.package_data import samples_dir; print(samples_dir())")
    done = installed.etl(
        "sim",
        f"{sample}/transactions_20240301.dat",
        "--template",
        str(custom),
        database=installed.database(migrated=True),
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"IAM as {custom} deploys it" in done.stderr
    denied = [line.strip() for line in done.stdout.splitlines() if "IAM denied:" in line]
    assert denied == [
        "IAM denied: fintech-etl-lz-to-raw (role LzToRawRole) is not allowed s3:GetObject on arn:aws:s3:::"
        "fintech-etl-raw/transactions/transactions_20240301.dat (by HeadObject): no statement of its policy allows it"
    ], done.stdout


def test_sim_deploys_the_templates_failure_handling_from_the_wheel(installed: Installed) -> None:
    """The template-only parts of the stack stand in an installed package too: the trigger functions' retries
    and on-failure queue, and the alarms on them and on the queue (what the failed-trigger tests exercise)."""
    code = textwrap.dedent("""\
        import json
        from etl.aws.sim import function_name, simulation
        with simulation() as sim:
            lam, cloudwatch = sim.aws.client("lambda"), sim.aws.client("cloudwatch")
            triggers = [function_name(m) for m in ("lz_to_raw", "start_step_function")]
            configs = [lam.get_function_event_invoke_config(FunctionName=name) for name in triggers]
            alarms = cloudwatch.describe_alarms()["MetricAlarms"]
            print(json.dumps({
                "retries": [c["MaximumRetryAttempts"] for c in configs],
                "on_failure": sorted({c["DestinationConfig"]["OnFailure"]["Destination"] for c in configs}),
                "queue": sim.failed_triggers_arn,
                "alarms": sorted({a["Dimensions"][0]["Value"] for a in alarms}),
            }))
    """)
    found = json.loads(installed.python(code, database=installed.database(migrated=True)).splitlines()[-1])
    assert found["retries"] == [2, 2] and found["on_failure"] == [found["queue"]]
    assert set(found["alarms"]) == {
        "fintech-etl-lz-to-raw",
        "fintech-etl-start-step-function",
        "fintech-etl-failed-triggers",
    }


def test_backfill_runs_the_packaged_notebooks(installed: Installed) -> None:
    database = installed.database(migrated=True)
    out = installed.work / "backfill"
    done = installed.etl(
        "backfill", "transactions", "--start", "2024-03-01", "--end", "2024-03-02", "-o", str(out),
        database=database, home="backfill",
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for day in ("2024-03-01", "2024-03-02"):
        notebook = nbformat.read(out / f"reprocess_transactions_{day}.ipynb", as_version=4)
        text = json.dumps([cell.get("outputs", []) for cell in notebook.cells])
        assert "dry run" in text and "Traceback" not in text  # seeded from the packaged samples
    profiled = installed.etl(
        "backfill", "account_summary", "--start", "2024-03-02", "--end", "2024-03-02",
        "--notebook", "profile_schema", "-o", str(out), database=database, home="backfill",
    )  # fmt: skip
    assert profiled.returncode == 0, profiled.stdout + profiled.stderr
    profile = json.loads((out / "account_summary_20240302.profile.json").read_text())
    assert profile["rows"] == 200  # the packaged sample day, profiled from its raw file


@pytest.mark.parametrize("name", ["state_machine", "template"])
def test_a_missing_data_file_is_one_line_exit_2(installed: Installed, name: str) -> None:
    definition = Path(installed.python(f"from etl.package_data import {name}; print({name}())"))
    hidden = definition.with_name("hidden.yml")
    shutil.move(definition, hidden)
    try:
        done = installed.etl("sim", str(installed.work / "nothing.dat"))
        assert done.returncode == 2 and "Traceback" not in done.stderr  # a usage error comes first
        sample = installed.python("from etl.package_data import samples_dir; print(samples_dir())")
        done = installed.etl(
            "sim", f"{sample}/transactions_20240301.dat", "--json", database=installed.database(migrated=True)
        )
    finally:
        shutil.move(hidden, definition)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"etl/aws/{definition.name}" in lines[0] and "checkout" in lines[0]
