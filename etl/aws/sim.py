"""``etl sim``: the packaged state machine and Lambda handlers (``etl/aws/``) on emulated AWS (moto).

:func:`simulation` builds what the package's ``etl/aws/template.yml`` (or an operator's own template: ``etl sim
--template``) deploys on moto in server mode (``etl.aws.moto_compat``): the
five buckets, the SNS topic (with an SQS queue subscribed, so notifications can be read back), the seven
functions with the template's environment, each under its template role with the role's policy as deployed
and enforced on every call (``etl.aws.iam_emulation``, docs/design.md §12), the Glue job (run by
:class:`SparkGlueRunner` on a local SparkSession, under the Glue job's role) and the state machine.
The database is the one the CLI would use (``ETL_DATABASE_URL``, ``ETL_DB_SECRET_ID`` or the embedded one),
handed to the database functions as the template does: an RDS-format secret named by ``ETL_DB_SECRET_ID``,
which their roles must be allowed to read, with the CLI's own ``ETL_DB_SSLMODE`` / ``ETL_DB_SSLROOTCERT``
where the template has ``verify-full`` and the RDS bundle (a local server has its own CA, or no TLS).
A file then goes the production way: uploaded to landing, ``lz_to_raw`` invoked with the S3 event,
``start_step_function`` with the raw bucket's event. The template ships inside the package, so an installed
wheel deploys the same roles, retries and alarms as a checkout: the emulation is the same wherever ``etl`` runs.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from etl.aws.asl import render_definition, sample_substitutions
from etl.aws.events import s3_notification
from etl.aws.iam_emulation import deployed_roles, load_template
from etl.aws.moto_compat import ACCOUNT_ID, EmulatedAWS, emulated_aws
from etl.aws.states import s3_location
from etl.config import ZONES, Settings, get_settings
from etl.errors import ConfigError, EtlError
from etl.io.secrets import pan_key
from etl.io.zones import zone
from etl.package_data import handlers_dir, template
from etl.pipeline.notify import Status

PREFIX = "fintech-etl"
HANDLERS = ("lz_to_raw", "start_step_function", "validation", "transform", "rds_write", "move_file", "notification")
SparkFactory = Callable[[], Any]


def function_name(module: str) -> str:
    """``fintech-etl-rds-write``: the names ``etl.aws.asl.sample_substitutions`` puts in the definition."""
    return f"{PREFIX}-{module.replace('_', '-')}"


def s3_event(bucket: str, keys: Sequence[str]) -> dict[str, Any]:
    """An S3 ``ObjectCreated:Put`` notification for ``keys``, shaped and URL-encoded as S3 sends them."""
    return s3_notification(bucket, keys)


class FunctionFailed(EtlError):
    """A function invoked through the Lambda API (as the S3 event trigger does) ended in a function error."""


class SparkGlueRunner:
    """The Glue job on a local SparkSession: the raw object is downloaded to a temp file, the stage file the
    engine writes is uploaded to the stage zone under the same key (Spark here has no S3 file system)."""

    def __init__(self, spark: SparkFactory | None = None) -> None:
        self._factory = spark
        self._session: Any = None
        self._owned = False
        self.runs: list[dict[str, Any]] = []

    def session(self) -> Any:
        if self._session is None:
            if self._factory is not None:
                self._session = self._factory()
            else:
                from etl.spark.engine import spark_session

                self._session = spark_session("fintech-etl-sim")
                self._owned = True
        return self._session

    def __call__(self, job_name: str, arguments: dict[str, str]) -> None:
        from etl.spark.engine import run_job
        from etl.spark.job import job_arguments

        argv = ["transform_job.py", *(part for pair in arguments.items() for part in pair)]
        args = job_arguments(argv)
        source = s3_location(str(args["source"]))
        stage = zone(str(args["stage_uri"]))
        with tempfile.TemporaryDirectory(prefix="etl-sim-glue-") as folder:
            local = Path(folder) / PurePosixPath(source["key"]).name
            stage.client.download_file(source["bucket"], source["key"], str(local))  # type: ignore[attr-defined]
            local_stage = Path(folder) / "stage"
            result = run_job(self.session(), **{**args, "source": str(local), "stage_uri": str(local_stage)})
            staged = Path(result["stage_file"])
            stage.put_file(staged, staged.relative_to(local_stage).as_posix())
        self.runs.append({**result, "stage_file": stage.uri_of(staged.relative_to(local_stage).as_posix())})

    def close(self) -> None:
        if self._session is not None and self._owned:
            self._session.stop()
        self._session = None


@dataclass
class FileRun:
    """One file through the emulated pipeline."""

    file: str
    landing_key: str
    status: Status  # the notification's, or FAILURE when nothing ran
    execution_name: str | None = None
    execution_status: str | None = None
    states: list[str] = field(default_factory=list)
    notification: dict[str, Any] | None = None
    detail: str | None = None
    denied: list[str] = field(default_factory=list)  # calls IAM refused during this file's run

    @property
    def ok(self) -> bool:
        return self.status in (Status.SUCCESS, Status.SKIPPED)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "execution_name": self.execution_name,
            "execution_status": self.execution_status,
            "states": self.states,
            "notification": self.notification,
            "detail": self.detail,
            "denied": self.denied,
        }


@contextlib.contextmanager
def _template_errors(path: Path) -> Iterator[None]:
    """A template the emulation cannot deploy (unreadable, not YAML, a resource shape or ``!Sub`` placeholder it
    does not know) is a configuration error naming the file, in one line: an operator's own template
    (``etl sim --template``) gets a message, not a traceback."""
    try:
        yield
    except (OSError, yaml.YAMLError, KeyError, ValueError, TypeError, AttributeError) as exc:
        detail = (str(exc).strip().splitlines() or [""])[0]
        raise ConfigError(
            f"{path}: cannot deploy this template on the emulation: {type(exc).__name__} {detail}"
        ) from exc


def read_template(path: Path) -> dict[str, Any]:
    """The template's resources, read before anything starts (a bad file fails first, alone)."""
    with _template_errors(path):
        resources = load_template(path)["Resources"]
        if not isinstance(resources, dict):
            raise TypeError("Resources is not a mapping")
        return resources


class Simulation:
    """The deployed stack on emulated AWS; tests drive its pieces, ``etl sim`` calls :meth:`run_file`."""

    def __init__(
        self,
        aws: EmulatedAWS,
        database_url: str,
        pan_key_value: bytes,
        threshold: int,
        *,
        without: tuple[tuple[str, str], ...] = (),
        template_path: Path | None = None,
        database_tls: dict[str, str] | None = None,
    ) -> None:
        self.aws = aws
        self.template = template() if template_path is None else template_path  # the stack it deploys
        # ETL_DB_SSLMODE / ETL_DB_SSLROOTCERT of the database functions: the template's verify-full against the
        # RDS bundle, here the CLI's own (a local server has its own CA, or none)
        self.database_tls = database_tls or {}
        self.without = without  # (role logical id, statement Sid) pairs left out of the deployed policies
        self.buckets = {name: f"{PREFIX}-{name}" for name in ZONES}
        self.database_url = database_url
        self.threshold = threshold
        self._pan_key = pan_key_value
        self._notifications: list[dict[str, Any]] = []

    # -- the stack ----------------------------------------------------------------------------------------
    def deploy(self) -> Simulation:
        s3, sns, sqs = (self.aws.client(s) for s in ("s3", "sns", "sqs"))
        for bucket in self.buckets.values():
            s3.create_bucket(Bucket=bucket)
        self.topic_arn = sns.create_topic(Name=f"{PREFIX}-notifications")["TopicArn"]
        self.queue_url = sqs.create_queue(QueueName=f"{PREFIX}-notifications")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]
        sns.subscribe(
            TopicArn=self.topic_arn,
            Protocol="sqs",
            Endpoint=queue_arn["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        secret = self.aws.client("secretsmanager").create_secret(
            Name=f"{PREFIX}/pan-key", SecretString=self._pan_key.decode()
        )
        self.pan_key_secret_id = secret["ARN"]
        database = self.aws.client("secretsmanager").create_secret(
            Name=f"{PREFIX}/database", SecretString=json.dumps(rds_secret(self.database_url))
        )
        self.db_secret_id = database["ARN"]
        self.failed_triggers_url = sqs.create_queue(QueueName=f"{PREFIX}-failed-triggers")["QueueUrl"]
        self.failed_triggers_arn = sqs.get_queue_attributes(
            QueueUrl=self.failed_triggers_url, AttributeNames=["QueueArn"]
        )["Attributes"]["QueueArn"]
        names = {f"{PREFIX}/pan-key": self.pan_key_secret_id, f"{PREFIX}/database": self.db_secret_id}
        self.aws.iam.resolve_secret = lambda secret_id: names.get(secret_id, secret_id)
        substitutions = sample_substitutions(prefix=PREFIX)
        self.machine_arn = f"arn:aws:states:{self.aws.region}:{ACCOUNT_ID}:stateMachine:{PREFIX}"
        with _template_errors(self.template):
            self.roles = deployed_roles(self.template, self.template_values(substitutions["GlueJobName"]), HANDLERS)
        policies = dict(self.roles.policies)
        for role, sid in self.without:
            policies[role] = policies[role].without(sid)
        role_arns = {
            name: self.aws.create_role(f"{PREFIX}-{name}", service, policies[name])
            for name, service in [
                *((role, "lambda.amazonaws.com") for role in set(self.roles.functions.values())),
                (self.roles.glue_job, "glue.amazonaws.com"),
            ]
        }
        glue = self.aws.client("glue")
        glue.create_job(
            Name=substitutions["GlueJobName"],
            Role=role_arns[self.roles.glue_job],
            Command={"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": "s3://artifacts/glue/transform_job.py"},
            DefaultArguments={
                "--job-language": "python",
                "--stage_uri": f"s3://{self.buckets['stage']}",
                "--error_uri": f"s3://{self.buckets['error']}",
                "--pan_key_secret_id": self.pan_key_secret_id,
            },
            GlueVersion="5.0",
        )
        created = self.aws.create_state_machine(PREFIX, render_definition(substitutions))
        assert created == self.machine_arn, created
        states_role = self.aws.create_role(
            f"{PREFIX}-{self.roles.state_machine}", "states.amazonaws.com", policies[self.roles.state_machine]
        )
        self.aws.enforce_state_machine_role(states_role, f"{PREFIX} (state machine)")
        for module in HANDLERS:
            role = role_arns[self.roles.functions[module]]
            self.aws.create_function(function_name(module), f"{module}.handler", self.environment(module), 900, role)
        with _template_errors(self.template):
            self._deploy_failure_handling()
        return self

    def _deploy_failure_handling(self) -> None:
        """The template's event invoke configurations (retries, on-failure queue) and its alarms on the two
        trigger functions and the failed-triggers queue, with the template's metrics and thresholds."""
        resources = load_template(self.template)["Resources"]
        module_of = {
            logical: str(r["Properties"]["Handler"]).rsplit(".", 1)[0]
            for logical, r in resources.items()
            if r["Type"] == "AWS::Lambda::Function"
        }
        references = {"FailedTriggersQueue": self.failed_triggers_arn}
        references |= {logical: function_name(module) for logical, module in module_of.items()}
        lambda_client, cloudwatch = self.aws.client("lambda"), self.aws.client("cloudwatch")
        for resource in resources.values():
            props = resource["Properties"]
            if resource["Type"] == "AWS::Lambda::EventInvokeConfig":
                destination = props["DestinationConfig"]["OnFailure"]["Destination"]["Fn::GetAtt"][0]
                lambda_client.put_function_event_invoke_config(
                    FunctionName=references[props["FunctionName"]["Ref"]],
                    MaximumRetryAttempts=props["MaximumRetryAttempts"],
                    MaximumEventAgeInSeconds=props["MaximumEventAgeInSeconds"],
                    DestinationConfig={"OnFailure": {"Destination": references[destination]}},
                )
            elif resource["Type"] == "AWS::CloudWatch::Alarm" and props["Namespace"] in ("AWS/Lambda", "AWS/SQS"):
                (dimension,) = props["Dimensions"]
                target = dimension["Value"]
                value = (
                    self.failed_triggers_url.rsplit("/", 1)[1] if "Fn::GetAtt" in target else references[target["Ref"]]
                )
                cloudwatch.put_metric_alarm(
                    AlarmName=props["AlarmName"]["Fn::Sub"].replace("${AWS::StackName}", PREFIX),
                    AlarmDescription=props["AlarmDescription"],
                    Namespace=props["Namespace"],
                    MetricName=props["MetricName"],
                    Dimensions=[{"Name": dimension["Name"], "Value": value}],
                    Statistic=props["Statistic"],
                    Period=props["Period"],
                    EvaluationPeriods=props["EvaluationPeriods"],
                    Threshold=float(props["Threshold"]),
                    ComparisonOperator=props["ComparisonOperator"],
                    TreatMissingData=props["TreatMissingData"],
                    AlarmActions=[self.topic_arn],
                )

    def template_values(self, glue_job: str) -> dict[str, str]:
        """What CloudFormation substitutes into the template's policies, for this emulated stack."""
        region, zone_of = self.aws.region, {"Landing": "landing", "Raw": "raw", "Stage": "stage"}
        zone_of |= {"Archive": "archive", "Error": "error"}
        values = {
            "AWS::Partition": "aws",
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": PREFIX,
            "ArtifactsBucket": f"{PREFIX}-artifacts",
            "EtlStateMachine": self.machine_arn,
            "EtlStateMachine.Name": PREFIX,
            "TransformGlueJob": glue_job,
            "NotificationTopic": self.topic_arn,
            "NotificationKey.Arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000000",
            "CardDataKey.Arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000001",
            "FailedTriggersKey.Arn": f"arn:aws:kms:{region}:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000002",
            "FailedTriggersQueue.Arn": self.failed_triggers_arn,
            "DbSecret": self.db_secret_id,
            "PanKeySecret": self.pan_key_secret_id,
        }
        for logical, name in zone_of.items():
            values[f"{logical}Bucket"] = self.buckets[name]
            values[f"{logical}Bucket.Arn"] = f"arn:aws:s3:::{self.buckets[name]}"
        for module in HANDLERS:
            logical = "".join(part.title() for part in module.split("_"))
            values[f"{logical}Function.Arn"] = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name(module)}"
        return values

    def environment(self, module: str) -> dict[str, str]:
        """A function's environment as template.yml gives it (the database through its RDS-format secret)."""
        env = {f"ETL_{name.upper()}_URI": f"s3://{bucket}" for name, bucket in self.buckets.items()}
        extra = {
            "start_step_function": {
                "ETL_STATE_MACHINE_ARN": self.machine_arn,
                "ETL_LARGE_FILE_THRESHOLD_BYTES": str(self.threshold),
            },
            "validation": {"ETL_DB_SECRET_ID": self.db_secret_id, **self.database_tls},
            "rds_write": {"ETL_DB_SECRET_ID": self.db_secret_id, **self.database_tls},
            "move_file": {"ETL_DB_SECRET_ID": self.db_secret_id, **self.database_tls},
            "transform": {"ETL_PAN_KEY_SECRET_ID": self.pan_key_secret_id},
            "notification": {"ETL_SNS_TOPIC_ARN": self.topic_arn},
        }
        return env | extra.get(module, {})

    # -- driving it ---------------------------------------------------------------------------------------
    def upload(self, path: Path, key: str | None = None) -> str:
        """Put a local file into the landing bucket (as the sender does); returns its key."""
        key = key or path.name
        self.aws.client("s3").upload_file(str(path), self.buckets["landing"], key)
        return key

    def invoke(self, module: str, event: Any) -> dict[str, Any]:
        """Invoke a function through the Lambda API; a function error raises :class:`FunctionFailed`."""
        response = self.aws.client("lambda").invoke(FunctionName=function_name(module), Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise FunctionFailed(f"{module} failed: {payload.get('errorType')}: {payload.get('errorMessage')}")
        return payload

    def invoke_async(self, module: str, event: Any) -> None:
        """Invoke a function asynchronously (``Event``), as EventBridge delivers the bucket events."""
        response = self.aws.client("lambda").invoke(
            FunctionName=function_name(module), InvocationType="Event", Payload=json.dumps(event)
        )
        assert response["StatusCode"] == 202, response

    def land(self, keys: Sequence[str]) -> dict[str, Any]:
        """The landing bucket's event for ``keys`` delivered to ``lz_to_raw``."""
        return self.invoke("lz_to_raw", s3_event(self.buckets["landing"], keys))

    def trigger(self, raw_keys: Sequence[str]) -> dict[str, Any]:
        """The raw bucket's event for ``raw_keys`` delivered to ``start_step_function``."""
        return self.invoke("start_step_function", s3_event(self.buckets["raw"], raw_keys))

    def wait(self, execution_arn: str, timeout_s: float = 600.0) -> dict[str, Any]:
        return self.aws.wait_for_execution(execution_arn, timeout_s)

    def notifications(self) -> list[dict[str, Any]]:
        """Every notification published so far (read from the SQS subscription)."""
        sqs = self.aws.client("sqs")
        while True:
            messages = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not messages:
                return list(self._notifications)
            for message in messages:
                self._notifications.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def notification_for(self, execution_name: str) -> dict[str, Any] | None:
        found = [n for n in self.notifications() if n.get("executionname") == execution_name]
        return found[-1] if found else None

    def run_file(self, path: Path, key: str | None = None) -> FileRun:
        """One local file the production way: landing → lz_to_raw → start_step_function → its execution."""
        landing_key = self.upload(path, key)
        run = FileRun(file=path.name, landing_key=landing_key, status=Status.FAILURE)
        denials_before = len(self.aws.iam.denials)
        try:
            self._run(run)
        except FunctionFailed as exc:  # a trigger function failed: the file stays where it was
            run.detail = str(exc)
        finally:
            run.denied = [call.denial_text() for call in self.aws.iam.denials[denials_before:]]
        if run.denied:  # a refused call fails the run even where the code caught the error
            run.status = Status.FAILURE
            run.detail = "IAM denied: " + "; ".join(run.denied)
        return run

    def _run(self, run: FileRun) -> None:
        landing_key = run.landing_key
        landed = self.land([landing_key])
        if not landed["moved"]:
            run.detail = f"not moved to raw: {landed['skipped']}"
            return
        started = self.trigger([landed["moved"][0]["key"]])
        if not started["started"]:
            run.detail = f"no execution started: {started}"
            return
        execution = started["started"][0]
        described = self.wait(execution["execution_arn"])
        run.execution_name = execution["name"]
        run.execution_status = described["status"]
        run.states = self.aws.executed_states(execution["execution_arn"])
        run.notification = self.notification_for(execution["name"])
        if run.notification:
            run.status = Status(run.notification["status"])
        elif described["status"] == "SUCCEEDED":
            run.status = Status.SUCCESS
        if described["status"] != "SUCCEEDED":
            run.detail = f"{described.get('error', '')}: {described.get('cause', '')}".strip(": ")


def rds_secret(database_url: str) -> dict[str, Any]:
    """The RDS secret format (what the template's DbSecret holds) of a database URL or conninfo. A server that
    trusts local connections gets a placeholder password it ignores (the format requires one)."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(database_url)
    return {
        "engine": "postgres",
        "host": params.get("host", "localhost"),
        "port": int(params.get("port") or 5432),
        "dbname": params.get("dbname", "postgres"),
        "username": params.get("user", "postgres"),
        "password": params.get("password") or "unused-by-a-trusting-server",
    }


def database_tls(settings: Settings) -> dict[str, str]:
    """The TLS variables the CLI reaches its database with, for the emulated database functions."""
    values = {"ETL_DB_SSLMODE": settings.db_sslmode, "ETL_DB_SSLROOTCERT": settings.db_sslrootcert}
    return {name: str(value) for name, value in values.items() if value}


def _database_url(settings: Settings) -> str:
    """The CLI's database, started and migrated if embedded, as a URL the functions can use."""
    from etl.db.connect import connect, locate

    location = locate(settings)
    connect(settings, location=location).close()
    return location.conninfo


@contextlib.contextmanager
def simulation(
    settings: Settings | None = None,
    *,
    threshold: int | None = None,
    spark: SparkFactory | None = None,
    lambda_dir: Path | None = None,
    key: bytes | None = None,
    without: tuple[tuple[str, str], ...] = (),
    template_path: Path | None = None,
) -> Iterator[Simulation]:
    """A deployed :class:`Simulation`; ``threshold`` (bytes) routes larger files through the Glue job;
    ``without`` leaves (role logical id, statement Sid) pairs out of the deployed policies.

    The handlers are the package's own (``etl/aws/handlers/``, the code deployed to Lambda) unless
    ``lambda_dir`` names another folder; the stack is the package's ``etl/aws/template.yml`` unless
    ``template_path`` names another template (an operator's customised copy)."""
    template_path = template() if template_path is None else template_path
    read_template(template_path)  # a missing or unreadable template: one line, before any server starts
    lambda_dir = handlers_dir() if lambda_dir is None else lambda_dir
    settings = settings or get_settings()
    database_url = _database_url(settings)  # before moto: a secret or the embedded server are real
    key = key or pan_key(settings)
    runner = SparkGlueRunner(spark)
    try:
        with emulated_aws(lambda_dir, glue_runner=runner) as aws:
            limit = settings.large_file_threshold_bytes if threshold is None else threshold
            tls = database_tls(settings)
            yield Simulation(
                aws, database_url, key, limit, without=without, template_path=template_path, database_tls=tls
            ).deploy()
    finally:
        runner.close()


def run_files(
    paths: Sequence[Path],
    settings: Settings | None = None,
    *,
    threshold: int | None = None,
    key: bytes | None = None,
    template_path: Path | None = None,
) -> list[FileRun]:
    """``etl sim``: each file through the emulated pipeline, in order (``key``: the PAN key, if resolved;
    ``template_path``: the stack to deploy, the package's template by default)."""
    with simulation(settings, threshold=threshold, key=key, template_path=template_path) as sim:
        return [sim.run_file(path) for path in paths]
