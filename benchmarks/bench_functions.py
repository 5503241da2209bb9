"""Each AWS function's peak memory, wall time and CPU time on one big file, run as Lambda (and Glue) run them.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_functions.py --rows 10000000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_functions.py --rows 360000 --rows 1000000 --no-glue

The figures size ``etl/aws/template.yml`` (docs/design.md §11): each function's ``MemorySize`` and ``Timeout``, the Glue
job's workers and timeout. A file of ``--rows`` transactions is generated once with the repository's generator
and kept under ``--data`` (reused by path on the next run). Then, per size, on a fresh stack:

- moto's server runs in its own process (``python -m moto.server``): emulated S3 keeps objects in its own
  memory, which must not count as the function's. S3 is reached over HTTP, as the functions reach S3.
- PostgreSQL is a throwaway ``tests/pg.py`` cluster (a fresh migrated database per size), reached through an
  RDS-format secret in Secrets Manager, as the template configures the database functions.
- Each function is a fresh interpreter (a cold Lambda): its handler module imported from the handlers folder
  that is zipped as the functions' code, called with the event the trigger or the state machine sends, with
  the environment the template gives that function (read from the packaged template). The file goes the
  production way: uploaded to landing (not measured), LandToRaw, StartStepFunction, ValidateFile,
  TransformInLambda, LoadToDatabase, MoveToArchive, NotifySuccess; MoveToError moves a second raw copy.
- TransformWithGlue is the Glue script (``glue/transform_job.py``) on a local SparkSession (local[2], the
  engine's local configuration) reading the local file, since local Spark has no S3 file system. It is not a
  Lambda: its peak is the Python driver's plus the JVM's (each process's own peak, summed).

Per function: peak RSS (the process's own high-water mark, VmHWM), wall time, CPU time (user + system, from
``wait4``: less sensitive than wall time to the load of a shared machine), the most it kept in its temp folder
at once (``/tmp`` on Lambda: 512 MB unless ``EphemeralStorage`` says more), the bytes it moved (files, and S3
through Python's sockets; not libpq's COPY), the PostgreSQL server's CPU time meanwhile (the cluster serves
only this run; none with ``--database-url``) and the load average when it started.

The last table applies the sizing rule of docs/design.md §11 (``size_lambda``) to the largest size measured:
memory = peak x 1.5 rounded up to 128 MB, at least one vCPU (1,769 MB) for a function spending over 10 s of CPU;
Lambda gives a function memory/1769 vCPU, so the local time becomes ``max(wall, cpu / vcpus + database CPU)``
there, or the bytes it read and wrote at an assumed 40 MiB/s (S3 and Aurora over the network) if longer, and the
timeout is 3x that (slower vCPUs, real S3 and Aurora over the network), at least 60 s, rounded up to 30 s,
capped at Lambda's 900 s; ``/tmp`` (EphemeralStorage) = 1.5x what the function held there, up to 512 MB.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.generate_data import make_file
from etl.aws.sim import database_tls
from etl.config import get_settings

REPO = Path(__file__).resolve().parents[1]
MiB = 1 << 20
ONE_VCPU_MB = 1769  # Lambda: a function gets one full vCPU at 1,769 MB, in proportion below and above
LAMBDA_MAX_TIMEOUT = 900
HEADROOM_MEMORY = 1.5
HEADROOM_TIME = 3.0
CPU_HEAVY_S = 10.0  # a function spending more CPU than this on the file gets at least one full vCPU
S3_MIB_S = 40.0  # assumed: what one Lambda streams from S3 / to the database per second (local I/O is faster)
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}

#: The peak of the function's own process: VmHWM, read by the process itself at its end. (The ``ru_maxrss``
#: that ``wait4`` reports for a child would not do: Linux carries the forked parent's size across ``exec``.)
PEAK = """
def _peak_kib(pid="self"):
    with open(f"/proc/{{pid}}/status") as f:
        return int(next(line for line in f if line.startswith("VmHWM:")).split()[1])


import socket as _socket
_NET = [0]  # bytes through Python sockets (S3 over HTTP; libpq's own socket is not one): rchar does not see them


def _counted(name, size):
    method = getattr(_socket.socket, name)

    def counting(self, *args, **kwargs):
        result = method(self, *args, **kwargs)
        _NET[0] += size(result, args)
        return result

    setattr(_socket.socket, name, counting)


_counted("recv", lambda r, a: len(r))
_counted("recv_into", lambda r, a: r)
_counted("send", lambda r, a: r)
_counted("sendall", lambda r, a: memoryview(a[0]).nbytes)


def _io_kib():
    with open("/proc/self/io") as f:
        counts = dict(line.split(": ") for line in f.read().splitlines())
    return (int(counts["rchar"]) + int(counts["wchar"]) + _NET[0]) // 1024
"""

#: a cold Lambda: the handler module imported from the handlers folder, called once with the event file's event
RUN_HANDLER = (
    PEAK
    + """
import importlib, json, sys, types
sys.path.insert(0, {handlers!r})
handler = importlib.import_module({module!r}).handler
with open({event!r}) as f:
    event = json.load(f)
result = handler(event, types.SimpleNamespace(function_name={name!r}, aws_request_id="benchmark"))
print(json.dumps({{"result": result, "peak_kib": _peak_kib(), "io_kib": _io_kib()}}))
"""
)

#: the Glue script; before the session stops, the JVM's own peak and CPU time from /proc (it is not waited for)
RUN_GLUE = (
    PEAK
    + """
import json, os, resource, sys
sys.path.insert(0, {glue_dir!r})
import transform_job
result = transform_job.main({argv!r})
from pyspark import SparkContext
jvm = SparkContext._gateway.proc.pid
with open(f"/proc/{{jvm}}/stat") as f:
    fields = f.read().rsplit(")", 1)[1].split()
jvm_cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
me = resource.getrusage(resource.RUSAGE_SELF)
print(json.dumps({{"result": result, "peak_kib": _peak_kib(), "cpu": me.ru_utime + me.ru_stime,
                  "jvm_peak_kib": _peak_kib(jvm), "jvm_cpu": jvm_cpu}}))
"""
)


@dataclass(frozen=True)
class Step:
    """One state of the state machine and the code that serves it."""

    state: str
    module: str  # handler module (``lz_to_raw``); "glue" for the Glue job


STEPS = (
    Step("LandToRaw", "lz_to_raw"),
    Step("StartStepFunction", "start_step_function"),
    Step("ValidateFile", "validation"),
    Step("TransformInLambda", "transform"),
    Step("TransformWithGlue", "glue"),
    Step("LoadToDatabase", "rds_write"),
    Step("MoveToArchive", "move_file"),
    Step("MoveToError", "move_file"),
    Step("NotifySuccess", "notification"),
)


@dataclass
class Measurement:
    state: str
    module: str
    rows: int
    file_bytes: int
    peak_mib: float
    wall_s: float
    cpu_s: float
    tmp_mib: float = 0.0  # what the function keeps in its temp folder at once (Lambda's /tmp)
    io_mib: float = 0.0  # bytes the process read and wrote: files (/tmp) and Python sockets (S3), not libpq's
    note: str = ""
    db_cpu_s: float = 0.0  # the PostgreSQL server's CPU time meanwhile (its whole cluster serves only this run)
    load: float = 0.0  # the machine's load average when the function started (wall times depend on it)


# --- the file -------------------------------------------------------------------------------------------------


def data_file(rows: int, data: Path) -> Path:
    """The transactions file of ``rows`` records under ``data``, generated once (a folder renamed into place
    only when complete, so an interrupted run never leaves a short file to be reused)."""
    folder = data / f"transactions-{rows}"
    found = sorted(folder.glob("transactions_*.dat")) if folder.is_dir() else []
    if found:
        return found[0]
    partial = data / f".partial-transactions-{rows}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    started = time.perf_counter()
    path = make_file("transactions", rows, partial)
    partial.rename(folder)
    print(f"generated {rows:,} rows in {time.perf_counter() - started:.1f} s", flush=True)
    return folder / path.name


# --- the stack: moto's server in its own process, a PostgreSQL cluster ------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def moto_server(log: Path) -> Iterator[str]:
    """``python -m moto.server`` on a free port, in its own process; yields its endpoint."""
    port = _free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], stdout=out, stderr=out
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                break
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto's server did not start:\n{log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)


@dataclass
class Stack:
    """One size's emulated stack: buckets, secrets, topic, state machine and database, and the values that
    fill ``template.yml``'s references in the functions' environments."""

    endpoint: str
    values: dict[str, str]
    buckets: dict[str, str]
    machine_arn: str

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint,
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )


def deploy(endpoint: str, name: str, database_url: str, template: Mapping[str, Any]) -> Stack:
    from etl.aws.asl import render_definition, sample_substitutions
    from etl.aws.sim import rds_secret
    from etl.config import ZONES

    stack = Stack(endpoint, {}, {zone: f"{name}-{zone}" for zone in ZONES}, "")
    s3, secrets = stack.client("s3"), stack.client("secretsmanager")
    for bucket in stack.buckets.values():
        s3.create_bucket(Bucket=bucket)
    pan = secrets.create_secret(Name=f"{name}/pan-key", SecretString="benchmark-pan-key")["ARN"]
    db = secrets.create_secret(Name=f"{name}/database", SecretString=json.dumps(rds_secret(database_url)))["ARN"]
    topic = stack.client("sns").create_topic(Name=f"{name}-notifications")["TopicArn"]
    stack.machine_arn = stack.client("stepfunctions").create_state_machine(
        name=name,
        definition=render_definition(sample_substitutions(prefix=name)),
        roleArn=f"arn:aws:iam::123456789012:role/{name}-states",
    )["stateMachineArn"]
    parameters = {k: str(p["Default"]) for k, p in template.get("Parameters", {}).items() if "Default" in p}
    stack.values = {
        **parameters,
        **{f"{zone.title()}Bucket": bucket for zone, bucket in stack.buckets.items()},
        "DbSecret": db,
        "PanKeySecret": pan,
        "NotificationTopic": topic,
        "EtlStateMachine": stack.machine_arn,
    }
    return stack


def _resolved(value: Any, values: Mapping[str, str]) -> str:
    """A template environment value: a string, ``!Ref Name`` or ``!Sub "...${Name}..."``."""
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return values[value["Ref"]]
    if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
        return re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], value["Fn::Sub"])
    if isinstance(value, dict):
        raise ValueError(f"template environment value {value} is neither !Ref nor !Sub")
    return str(value)


def function_resource(template: Mapping[str, Any], module: str) -> dict[str, Any]:
    """The template's ``AWS::Lambda::Function`` properties whose handler is ``<module>.handler``."""
    for resource in template["Resources"].values():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::Lambda::Function" and props.get("Handler") == f"{module}.handler":
            return props
    raise KeyError(f"template.yml has no function with handler {module}.handler")


def function_env(template: Mapping[str, Any], module: str, stack: Stack, home: Path) -> dict[str, str]:
    """What the function's process sees: its template environment, AWS credentials and endpoint, a private temp
    folder (Lambda's /tmp) and nothing of the caller's ``ETL_*`` but its database TLS settings: the template
    verifies Aurora against the RDS bundle, the benchmark's local server has its own CA or none (as ``etl sim``)."""
    variables = function_resource(template, module).get("Environment", {}).get("Variables", {})
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ETL_", "AWS_"))}
    env.update(AWS_ENV)
    env["AWS_ENDPOINT_URL"] = stack.endpoint
    env["TMPDIR"] = str(home)
    env["HOME"] = str(home)
    env.update({name: _resolved(value, stack.values) for name, value in variables.items()})
    for name in ("ETL_DB_SSLMODE", "ETL_DB_SSLROOTCERT"):
        env.pop(name, None)
    env.update(database_tls(get_settings()))
    return env


# --- measuring one function ---------------------------------------------------------------------------------


@dataclass
class Child:
    report: dict[str, Any]  # the child's last line: its result and its own peak (``peak_kib``)
    wall_s: float
    cpu_s: float


def run_measured(code: str, env: Mapping[str, str], folder: Path, label: str) -> Child:
    """``python -c code`` in a fresh process: its wall time, its CPU time from ``wait4`` and its report."""
    out, err = folder / f"{label}.out", folder / f"{label}.err"
    with out.open("wb") as so, err.open("wb") as se:
        started = time.perf_counter()
        child = subprocess.Popen([sys.executable, "-c", code], env=dict(env), stdout=so, stderr=se, cwd=folder)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - started
        child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{label} failed ({child.returncode}):\n{err.read_text(errors='replace')[-4000:]}")
    return Child(json.loads(out.read_text().strip().splitlines()[-1]), wall, usage.ru_utime + usage.ru_stime)


def tmp_peak(folder: Path, stop: list[bool], peak: list[int]) -> None:
    """Sampled total size of ``folder`` (a function's temp files) until ``stop``: the most it held at once."""
    while not stop:
        total = 0
        for root, _, files in os.walk(folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(root, name)).st_size
        peak[0] = max(peak[0], total)
        time.sleep(0.2)


@contextlib.contextmanager
def watched_tmp(folder: Path) -> Iterator[list[int]]:
    import threading

    stop: list[bool] = []
    peak = [0]
    watcher = threading.Thread(target=tmp_peak, args=(folder, stop, peak), daemon=True)
    watcher.start()
    try:
        yield peak
    finally:
        stop.append(True)
        watcher.join()


def server_cpu(postmaster: int | None) -> float:
    """CPU seconds of a PostgreSQL server so far: the postmaster's own and its reaped backends' (cutime, cstime),
    plus its live children's. 0 without a server of our own."""
    if postmaster is None:
        return 0.0

    def times(pid: int | str) -> tuple[int, list[str]]:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[1]), fields  # (ppid, fields from state on)

    ticks = sum(int(x) for x in times(postmaster)[1][11:15])
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                ppid, fields = times(entry)
                if ppid == postmaster:
                    ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


class Runner:
    """Runs the functions of one size on one stack, in order, keeping each measurement."""

    def __init__(
        self, stack: Stack, template: Mapping[str, Any], work: Path, rows: int, file_bytes: int, db_pid: int | None
    ) -> None:
        from etl.package_data import handlers_dir

        self.stack, self.template, self.work = stack, template, work
        self.rows, self.file_bytes, self.db_pid = rows, file_bytes, db_pid
        self.handlers = str(handlers_dir())
        self.results: list[Measurement] = []

    def invoke(self, state: str, module: str, event: Any, note: str = "") -> dict[str, Any]:
        home = self.work / f"{state}-tmp"
        home.mkdir(mode=0o700)
        event_file = self.work / f"{state}.event.json"
        event_file.write_text(json.dumps(event))
        code = RUN_HANDLER.format(handlers=self.handlers, module=module, event=str(event_file), name=state)
        env = function_env(self.template, module, self.stack, home)
        db_before, load = server_cpu(self.db_pid), os.getloadavg()[0]
        with watched_tmp(home) as tmp:
            child = run_measured(code, env, self.work, state)
        shutil.rmtree(home, ignore_errors=True)
        self._keep(state, module, child, tmp[0], note)
        self.results[-1].db_cpu_s = server_cpu(self.db_pid) - db_before
        self.results[-1].load = load
        return child.report["result"]

    def glue(self, source: Path, pointer: Mapping[str, Any], name: str) -> dict[str, Any]:
        stage = self.work / "glue-stage"
        home = self.work / "glue-tmp"
        home.mkdir(mode=0o700)
        argv = [
            "transform_job.py",
            *("--source_uri", str(source), "--stage_uri", str(stage), "--feed", str(pointer["feed"])),
            *("--business_date", str(pointer["business_date"]), "--execution_name", name),
            *("--pan_key_secret_id", self.stack.values["PanKeySecret"], "--error_uri", "s3://unused"),
        ]
        env = function_env(self.template, "transform", self.stack, home)
        env["ETL_SPARK_MASTER"] = "local[2]"
        code = RUN_GLUE.format(glue_dir=str(REPO / "glue"), argv=argv)
        with watched_tmp(home) as tmp:
            child = run_measured(code, env, self.work, "TransformWithGlue")
        report = child.report
        staged = Path(report["result"]["stage_file"]).stat().st_size
        note = (
            f"not a Lambda: local[2] driver, Python {report['peak_kib'] / 1024:.0f} + "
            f"JVM {report['jvm_peak_kib'] / 1024:.0f} MiB; stage file {staged / MiB:,.0f} MiB"
        )
        # the JVM is not waited for by the driver: its peak and CPU time come from /proc
        glue = Child(
            {"peak_kib": report["peak_kib"] + report["jvm_peak_kib"]}, child.wall_s, report["cpu"] + report["jvm_cpu"]
        )
        self._keep("TransformWithGlue", "glue", glue, tmp[0], note)
        shutil.rmtree(stage, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
        return report["result"]

    def _keep(self, state: str, module: str, child: Child, tmp: int, note: str) -> None:
        peak, io = child.report["peak_kib"] / 1024, child.report.get("io_kib", 0) / 1024
        m = Measurement(state, module, self.rows, self.file_bytes, peak, child.wall_s, child.cpu_s, tmp / MiB, io, note)
        self.results.append(m)
        print(
            f"  {state:<18} peak {m.peak_mib:7.1f} MiB  wall {m.wall_s:7.2f} s  cpu {m.cpu_s:7.2f} s"
            f"  tmp {m.tmp_mib:6.0f} MiB  io {io:7.0f} MiB  {note}",
            flush=True,
        )


def run_size(
    stack: Stack, template: Mapping[str, Any], work: Path, source: Path, glue: bool, db_pid: int | None
) -> list[Measurement]:
    """The file through every function, the production way, on a fresh stack."""
    from etl.aws.sim import s3_event

    rows = int(source.parent.name.rsplit("-", 1)[1])
    runner = Runner(stack, template, work, rows, source.stat().st_size, db_pid)
    s3 = stack.client("s3")
    started = time.perf_counter()
    s3.upload_file(str(source), stack.buckets["landing"], source.name)
    print(f"  (upload to landing {time.perf_counter() - started:.1f} s, not measured)", flush=True)

    moved = runner.invoke("LandToRaw", "lz_to_raw", s3_event(stack.buckets["landing"], [source.name]))
    raw_key = moved["moved"][0]["key"]
    started_run = runner.invoke("StartStepFunction", "start_step_function", s3_event(stack.buckets["raw"], [raw_key]))
    execution = started_run["started"][0]
    described = stack.client("stepfunctions").describe_execution(executionArn=execution["execution_arn"])
    pointer, name = json.loads(described["input"])["file"], execution["name"]
    threshold = json.loads(described["input"])["options"]["large_file_threshold_bytes"]

    validation = runner.invoke("ValidateFile", "validation", {"file": pointer, "execution_name": name})
    assert validation["valid"] and not validation["duplicate"], validation["rule_counts"]
    routed = "Glue" if pointer["size"] > threshold else "Lambda"
    transform = runner.invoke(
        "TransformInLambda",
        "transform",
        {"file": pointer, "execution_name": name},
        note=f"routed to {routed} (threshold {threshold / MiB:.0f} MiB)",
    )
    if glue:
        result = runner.glue(source, pointer, name)
        assert result["rows"] == transform["rows_staged"], (result, transform)
    state: dict[str, Any] = {
        "file": pointer,
        "validation": {k: validation[k] for k in ("valid", "duplicate", "row_count", "rule_counts", "report")},
        "transform": {"engine": "pyarrow", **transform},
    }
    load = runner.invoke("LoadToDatabase", "rds_write", {**state, "execution_name": name})
    assert load["status"] == "LOADED", load
    state["load"] = load

    error_pointer = _second_raw_copy(stack, pointer)  # the same file again, to time the move into error
    state["moved"] = runner.invoke(
        "MoveToArchive",
        "move_file",
        {"file": pointer, "destination": "archive", "status": "SUCCESS", "execution_name": name},
    )
    failed = {**state, "file": error_pointer, "error": {"Error": "States.Timeout", "Cause": "benchmark"}}
    del failed["load"], failed["moved"], failed["transform"]
    runner.invoke(
        "MoveToError",
        "move_file",
        {"file": error_pointer, "destination": "error", "status": "FAILURE", "state": failed, "execution_name": name},
    )
    runner.invoke("NotifySuccess", "notification", {"status": "SUCCESS", "state": state, "execution_name": name})
    return runner.results


def _second_raw_copy(stack: Stack, pointer: Mapping[str, Any]) -> dict[str, Any]:
    """A server-side copy of the raw file (and its report) under a numbered folder, as a second arrival."""
    s3, bucket = stack.client("s3"), pointer["bucket"]
    folder, _, file_name = pointer["key"].rpartition("/")
    key = f"{folder}/1/{file_name}"
    for suffix in ("", ".report.json"):  # one CopyObject (up to 5 GB): moto's multipart copy rereads the source
        s3.copy_object(CopySource={"Bucket": bucket, "Key": pointer["key"] + suffix}, Bucket=bucket, Key=key + suffix)
    return {**pointer, "key": key}


# --- sizing -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizing:
    memory_mb: int
    lambda_s: float  # the local figures on memory_mb's vCPU share
    timeout_s: int
    fits: bool  # within Lambda's 900 s with the headroom
    tmp_mb: int  # EphemeralStorage: Lambda's /tmp is 512 MB unless the template says more


def size_lambda(m: Measurement) -> Sizing:
    """docs/design.md §11's rule: memory = peak x 1.5 up to 128 MB, and one full vCPU (1,769 MB) for a function
    that spends over 10 s of CPU on the file (below that its time grows as 1/vCPU while Lambda bills the same
    GB-seconds); time on Lambda = max(wall, cpu / vCPUs + the database's CPU, I/O bytes at 40 MiB/s) at that
    memory; timeout = 3x
    that, at least 60 s, up to 30 s, capped at 900 s; /tmp = 1.5x what the function held there, up to 512 MB
    (512 at least)."""
    memory = max(256, math.ceil(m.peak_mib * HEADROOM_MEMORY / 128) * 128)
    if m.cpu_s > CPU_HEAVY_S:
        memory = max(memory, ONE_VCPU_MB)
    vcpus = min(memory / ONE_VCPU_MB, 6.0)
    on_lambda = max(m.wall_s, m.cpu_s / vcpus + m.db_cpu_s, m.io_mib / S3_MIB_S)
    wanted = max(60, math.ceil(on_lambda * HEADROOM_TIME / 30) * 30)
    tmp = max(512, math.ceil(m.tmp_mib * HEADROOM_MEMORY / 512) * 512)
    return Sizing(memory, on_lambda, min(wanted, LAMBDA_MAX_TIMEOUT), wanted <= LAMBDA_MAX_TIMEOUT, tmp)


def print_tables(results: list[Measurement], template: Mapping[str, Any]) -> None:
    print(
        "\n| state | rows | file MiB | peak RSS MiB | wall s | CPU s | DB CPU s | /tmp MiB | I/O MiB | load avg "
        "| note |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for m in results:
        print(
            f"| {m.state} | {m.rows:,} | {m.file_bytes / MiB:,.0f} | {m.peak_mib:,.0f} | {m.wall_s:,.1f} "
            f"| {m.cpu_s:,.1f} | {m.db_cpu_s:,.1f} | {m.tmp_mib:,.0f} | {m.io_mib:,.0f} | {m.load:.1f} | {m.note} |"
        )
    largest = max(m.rows for m in results)
    print(f"\nSizing from {largest:,} rows (memory = peak x {HEADROOM_MEMORY}, timeout = {HEADROOM_TIME}x the time")
    print("at that memory's vCPU share, docs/design.md §11), beside the template's current values:\n")
    print(
        "| state | function | template MemorySize / Timeout / EphemeralStorage | rule: MemorySize "
        "| est. Lambda s | rule: Timeout | rule: EphemeralStorage |"
    )
    print("|---|---|---|---|---|---|---|")
    for m in results:
        if m.rows != largest or m.module == "glue":
            continue
        props = function_resource(template, m.module)
        s = size_lambda(m)
        over = "" if s.fits else " (over 900 s: needs more memory or another engine)"
        tmp = props.get("EphemeralStorage", {}).get("Size", 512)
        print(
            f"| {m.state} | {m.module} | {props.get('MemorySize')} / {props.get('Timeout')} / {tmp} "
            f"| {s.memory_mb} | {s.lambda_s:,.0f} | {s.timeout_s}{over} | {s.tmp_mb} |"
        )


@contextlib.contextmanager
def fresh_database(cluster_url: str | None, given: str | None) -> Iterator[str]:
    """A fresh migrated database on the cluster, or the given (migrated) one."""
    if given:
        yield given
        return
    import psycopg

    from etl.db import migrate
    from tests import pg

    name = pg.create_database(cluster_url)  # type: ignore[arg-type]
    url = pg.database_url(cluster_url, name)  # type: ignore[arg-type]
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate.upgrade(conn)
        yield url
    finally:
        pg.drop_database(cluster_url, name)  # type: ignore[arg-type]


def main(argv: list[str] | None = None) -> list[Measurement]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="file size(s) in records (default 10,000,000)")
    parser.add_argument(
        "--data", type=Path, default=REPO / "benchmarks" / "out" / "data", help="where generated files are kept"
    )
    parser.add_argument("--no-glue", action="store_true", help="skip the Glue job on local Spark")
    parser.add_argument("--database-url", help="a migrated database to use instead of a throwaway cluster's")
    args = parser.parse_args(argv)
    from etl.aws.iam_emulation import load_template
    from etl.package_data import template as packaged_template
    from tests import pg

    template = load_template(packaged_template())
    args.data.mkdir(parents=True, exist_ok=True)
    results: list[Measurement] = []
    with contextlib.ExitStack() as stack, tempfile.TemporaryDirectory(prefix="bench-functions-") as tmp:
        work = Path(tmp)
        endpoint = stack.enter_context(moto_server(work / "moto.log"))
        cluster_url, db_pid = None, None
        if not args.database_url:
            cluster = pg.start_cluster()
            stack.callback(cluster.stop)
            cluster_url = cluster.url()
            db_pid = int((cluster.pgdata / "postmaster.pid").read_text().split()[0])
        for rows in args.rows or [10_000_000]:
            source = data_file(rows, args.data)
            print(f"\n== {rows:,} rows, {source.stat().st_size / MiB:,.0f} MiB: {source}", flush=True)
            size_work = work / f"rows-{rows}"
            size_work.mkdir()
            with fresh_database(cluster_url, args.database_url) as url:
                deployed = deploy(endpoint, f"bench-{rows}", url, template)
                results += run_size(deployed, template, size_work, source, not args.no_glue, db_pid)
            shutil.rmtree(size_work, ignore_errors=True)
    print_tables(results, template)
    return results


if __name__ == "__main__":
    main()
