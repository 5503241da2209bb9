"""The deployable artifacts as Lambda and Glue get them: sizes, imports from the artifacts alone, real runs.

Each artifact test runs in a clean interpreter (``python -I -S``) whose import path is only what the service
would have: for Lambda the unzipped function code (``/var/task``) and layer (``/opt/python``) before the
standard library; for Glue the job's zip of wheels installed with ``pip --no-index`` next to pyspark. boto3
comes from the layer (pinned by the lock), which Lambda puts before the runtime's own copy.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import sysconfig
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pyarrow.parquet as pq
import pytest

from tests.deploy.conftest import ROOT, Built, clean_python
from tests.tls import TlsServer
from tools import build_artifacts as ba

pytestmark = pytest.mark.slow

HANDLERS = sorted(p.stem for p in (ROOT / "etl" / "aws" / "handlers").glob("*.py") if p.stem != "__init__")
LEFT_OUT = {"pgserver", "typer", "rich", "pygments", "click", "pyspark"}
SAMPLE = ROOT / "etl" / "data" / "samples" / "transactions_20240301.dat"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def test_every_function_fits_lambda_limit_with_its_layers(built: Built) -> None:
    functions = built.manifest["functions"]
    template = ba.load_template()
    deployed = {name for name, r in template["Resources"].items() if r["Type"] == "AWS::Lambda::Function"}
    assert set(functions) == deployed and len(deployed) == len(HANDLERS)
    assert {f["handler"].split(".")[0] for f in functions.values()} == set(HANDLERS)
    for f in functions.values():
        assert f["artifacts"] == ["lambda.zip", "layer.zip"]
        assert 0 < f["unzipped_bytes"] <= ba.LAMBDA_UNZIPPED_LIMIT == 262_144_000
    layer = built.manifest["artifacts"]["layer.zip"]
    assert layer["unzipped_bytes"] == sum(p.stat().st_size for p in built.layer.rglob("*") if p.is_file())


def test_build_fails_with_one_line_naming_the_function_over_the_limit(built: Built) -> None:
    """The same check as the build, on the built artifacts, with a limit the layer cannot meet."""
    result = subprocess.run(
        [sys.executable, "-m", "tools.build_artifacts", "--out", str(built.out), "--check-only", "--size-limit",
         "100000000"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("build_artifacts: Lambda function ") and "Function:" in lines[0]
    assert "lambda.zip + layer.zip" in lines[0] and "exceeds the limit of 100,000,000 bytes" in lines[0]


def test_parameter_keys_name_built_artifacts(built: Built) -> None:
    keys = ba.artifact_keys()
    assert set(keys) == {"LambdaCodeKey", "LayerKey", "GlueWheelsKey", "GlueScriptKey", "StateMachineKey"}
    for parameter, name in keys.items():
        assert name in built.manifest["artifacts"], parameter
    assert (built.out / "state_machine.yml").read_bytes() == ba.state_machine_source().read_bytes()


def test_artifact_hashes_in_manifest(built: Built) -> None:
    for name, artifact in built.manifest["artifacts"].items():
        assert hashlib.sha256((built.out / name).read_bytes()).hexdigest() == artifact["sha256"], name


def loaded_modules_report(handlers: list[str]) -> str:
    return f"""
import importlib, json, sys, sysconfig
for name in {handlers!r}:
    assert callable(importlib.import_module(name).handler), name
files = {{n: getattr(m, "__file__", None) for n, m in list(sys.modules.items())}}
print(json.dumps({{"files": files, "stdlib": [sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib")]}}))
"""


def test_every_handler_imports_from_the_artifacts_alone(built: Built) -> None:
    result = clean_python([built.code, built.layer], loaded_modules_report(HANDLERS))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    allowed = [str(built.code), str(built.layer), *report["stdlib"]]
    outside = {n: f for n, f in report["files"].items() if f and not any(f.startswith(a) for a in allowed)}
    assert outside == {}
    top = {n.split(".")[0] for n in report["files"]}
    assert {"etl", "pyarrow", "pydantic", "psycopg", "yaml"} <= top
    assert not top & LEFT_OUT
    assert not any(n.startswith("pyarrow._flight") or n.startswith("pyarrow._substrait") for n in report["files"])
    # boto3 is imported lazily by the handlers: the layer's pinned copy is the one found first
    boto = clean_python(
        [built.code, built.layer], "import boto3, botocore; print(boto3.__file__, botocore.__version__)"
    )
    assert boto.returncode == 0, boto.stderr
    path, version = boto.stdout.split()
    assert path.startswith(str(built.layer)) and version == ba.lock_pins()["botocore"]
    for left_out in LEFT_OUT:
        assert not (built.layer / left_out).exists(), left_out
    # bytecode for a read-only /opt: every module the handlers load from the layer has its .pyc
    missing = [
        f
        for f in report["files"].values()
        if f and f.startswith(str(built.layer)) and f.endswith(".py")
        and not (Path(f).parent / "__pycache__" / f"{Path(f).stem}.cpython-311.pyc").exists()
    ]  # fmt: skip
    assert missing == []


RUN_HANDLER = """
import importlib, json
module, event = {module!r}, json.loads({event!r})
class Context:
    function_name = module
print(json.dumps(importlib.import_module(module).handler(event, Context())))
"""


@pytest.fixture
def moto_endpoint() -> str:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class RawFile:
    """The sample file in an emulated raw bucket, and what a handler needs to work on it."""

    env: dict[str, str]  # the function's environment: zones on moto's server, a PAN key, no database yet
    payload: dict  # a state's input naming the file
    zones: dict[str, str]
    s3: Any


def raw_sample(moto_endpoint: str, tmp_path: Path) -> RawFile:
    aws = {
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, **CREDENTIALS)
    zones = {zone: f"etl-{zone}" for zone in ("landing", "raw", "stage", "archive", "error")}
    for bucket in zones.values():
        s3.create_bucket(Bucket=bucket)
    data = SAMPLE.read_bytes()
    s3.put_object(Bucket=zones["raw"], Key=SAMPLE.name, Body=data)
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        **aws,
        **{f"ETL_{zone.upper()}_URI": f"s3://{bucket}" for zone, bucket in zones.items()},
        "ETL_PAN_KEY": "artifact-test-pan-key",
    }
    pointer = {
        "bucket": zones["raw"],
        "key": SAMPLE.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "feed": "transactions",
        "business_date": "2024-03-01",
    }
    return RawFile(env, {"file": pointer, "execution_name": "transactions-20240301-artifacts"}, zones, s3)


def run_handler(built: Built, handler: str, raw: RawFile, env: dict[str, str], cwd: Path):
    """The deployed handler in the clean interpreter; the completed process."""
    code = RUN_HANDLER.format(module=handler, event=json.dumps(raw.payload))
    return clean_python([built.code, built.layer], code, env={**raw.env, **env}, cwd=cwd)


def test_validation_and_transform_handlers_run_from_the_artifacts(
    built: Built, moto_endpoint: str, db_url: str, tmp_path: Path
) -> None:
    """ValidateFile then TransformInLambda, as the state machine calls them, in the clean interpreter:
    S3 over HTTP (moto's server), a real migrated PostgreSQL through the layer's psycopg."""
    raw = raw_sample(moto_endpoint, tmp_path)
    s3, zones, data = raw.s3, raw.zones, SAMPLE.read_bytes()

    def run(handler: str) -> dict:
        result = run_handler(built, handler, raw, {"ETL_DATABASE_URL": db_url}, tmp_path)
        assert result.returncode == 0, result.stderr[-3000:]
        return json.loads(result.stdout.strip().splitlines()[-1])

    validation = run("validation")
    assert validation["valid"] is True and validation["duplicate"] is False
    assert validation["row_count"] == data.count(b"\nD|")
    assert SAMPLE.name + ".report.json" in {o["Key"] for o in s3.list_objects_v2(Bucket=zones["raw"])["Contents"]}

    transformed = run("transform")
    assert transformed["rows_staged"] == validation["row_count"]
    key = "transactions/business_date=2024-03-01/transactions_20240301.parquet"
    assert transformed["stage_uri"] == f"s3://{zones['stage']}/{key}"
    local = tmp_path / "stage.parquet"
    local.write_bytes(s3.get_object(Bucket=zones["stage"], Key=key)["Body"].read())
    table = pq.read_table(local)
    assert table.num_rows == transformed["rows_staged"]
    assert "card_last4" in table.column_names and "card_number" not in table.column_names


def test_the_rds_ca_bundle_ships_in_the_layer_and_is_found_from_there(built: Built) -> None:
    record = built.manifest["rds_ca_bundle"]
    shipped = built.layer / "etl" / "aws" / "certs" / "rds-global-bundle.pem"
    assert record == {
        "path": "layer.zip:python/etl/aws/certs/rds-global-bundle.pem",
        "sha256": ba.RDS_CA_BUNDLE_SHA256,
        "certificates": 108,
    }
    assert hashlib.sha256(shipped.read_bytes()).hexdigest() == ba.RDS_CA_BUNDLE_SHA256
    # ETL_DB_SSLROOTCERT=rds, as the template sets it, resolves inside the layer through the package
    found = clean_python(
        [built.code, built.layer],
        "from etl.config import Settings\nfrom etl.db.tls import connection_options\n"
        "settings = Settings(db_secret_id='s', db_sslmode='verify-full', db_sslrootcert='rds')\n"
        "print(connection_options(settings, 'secret')['sslrootcert'])",
        env={"PATH": os.environ["PATH"]},
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(shipped)


def test_the_validation_handler_verifies_tls_from_the_artifacts(
    built: Built, moto_endpoint: str, tls_server: TlsServer, tls_db_name: str, tmp_path: Path
) -> None:
    """The deployed settings (verify-full, the layer's RDS bundle) refuse a server Amazon RDS did not sign,
    with the one line naming the bundle inside the layer; the same handler with the server's own CA
    validates the file over TLS."""
    raw = raw_sample(moto_endpoint, tmp_path)
    database = {"ETL_DATABASE_URL": tls_server.url(tls_db_name, host="localhost"), "ETL_DB_SSLMODE": "verify-full"}
    refused = run_handler(built, "validation", raw, {**database, "ETL_DB_SSLROOTCERT": "rds"}, tmp_path)
    assert refused.returncode != 0
    last = refused.stderr.strip().splitlines()[-1]
    bundle = built.layer / "etl" / "aws" / "certs" / "rds-global-bundle.pem"
    assert last == (
        f"etl.db.tls.DatabaseTlsError: cannot connect to postgresql://postgres@localhost:{tls_server.port}/"
        f"{tls_db_name} over TLS (sslmode=verify-full): the server's certificate is not signed by a CA in {bundle}"
    )
    verified = run_handler(built, "validation", raw, {**database, "ETL_DB_SSLROOTCERT": str(tls_server.ca)}, tmp_path)
    assert verified.returncode == 0, verified.stderr[-3000:]
    assert json.loads(verified.stdout.strip().splitlines()[-1])["valid"] is True


def spark_only(tmp_path: Path) -> Path:
    """A folder holding only pyspark and py4j from the test environment: Glue 5.0's Spark 3.5.4."""
    import py4j
    import pyspark

    folder = tmp_path / "glue-spark"
    folder.mkdir()
    for module in (pyspark, py4j):
        source = Path(module.__file__).parent
        (folder / source.name).symlink_to(source)
    return folder


def test_glue_job_installs_without_an_index_and_runs_next_to_spark(
    built: Built, moto_endpoint: str, tmp_path: Path
) -> None:
    """What Glue does with ``--additional-python-modules <zip> --python-modules-installer-option --no-index``,
    then the job's script on a sample file: local Spark 3.5.4, the PAN key from Secrets Manager over HTTP."""
    site = tmp_path / "glue-site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-index", "--no-compile", "--find-links",
         str(built.glue_wheels), "-r", str(built.glue_wheels / "requirements.txt"), "--target", str(site)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    pinned = {
        line.split("==")[0].replace("_", "-").lower()
        for line in (built.glue_wheels / "requirements.txt").read_text().split()
    }
    assert pinned == set(ba.lock_pins(ba.RUNTIME_LOCK)) | {"fintech-etl"}
    assert not pinned & {"pyspark", "py4j"}  # Glue's own
    script_dir = tmp_path / "script"
    script_dir.mkdir()
    (script_dir / "transform_job.py").write_bytes((built.out / "transform_job.py").read_bytes())
    spark = spark_only(tmp_path)
    result = clean_python([script_dir, site, spark], loaded_modules_report([]) .replace(
        "files = ", "import transform_job; assert callable(transform_job.main)\nfiles = "))  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    allowed = [str(script_dir), str(site), str(spark), *report["stdlib"]]
    outside = {n: f for n, f in report["files"].items() if f and not any(f.startswith(a) for a in allowed)}
    assert outside == {}
    assert {"etl", "pyspark", "pyarrow"} <= {n.split(".")[0] for n in report["files"]}
    assert sysconfig.get_python_version() == "3.11"  # Glue 5.0's Python

    secrets = boto3.client("secretsmanager", endpoint_url=moto_endpoint, **CREDENTIALS)
    secrets.create_secret(Name="etl/pan-key", SecretString="glue-artifact-key")
    argv = ["transform_job.py", "--feed", "transactions", "--source_uri", str(SAMPLE), "--stage_uri",
            str(tmp_path / "stage"), "--business_date", "20240301", "--execution_name", "glue-artifacts",
            "--pan_key_secret_id", "etl/pan-key", "--error_uri", "s3://unused"]  # fmt: skip
    java = shutil.which("java")
    assert java, "Java 17 is required for the Glue job's Spark"
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "JAVA_HOME": os.environ.get("JAVA_HOME") or str(Path(java).resolve().parent.parent),
        "ETL_SPARK_MASTER": "local[1]",
        "AWS_ENDPOINT_URL": moto_endpoint,
        **{k.upper(): v for k, v in CREDENTIALS.items() if k != "region_name"},
        "AWS_DEFAULT_REGION": CREDENTIALS["region_name"],
    }
    run = clean_python([script_dir, site, spark], f"import transform_job; transform_job.main({argv!r})", env=env)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    rows = SAMPLE.read_bytes().count(b"\nD|")
    assert result["rows"] == rows
    table = pq.read_table(result["stage_file"], partitioning=None)
    assert table.num_rows == rows and set(table.column("execution_name").to_pylist()) == {"glue-artifacts"}
