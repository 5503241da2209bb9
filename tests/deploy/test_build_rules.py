"""The build's rules without building: size check, reproducible zips, the locks, the template's Glue job."""

from __future__ import annotations

import hashlib
import re
import tomllib
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT
from tools import build_artifacts as ba
from tools import lock


def sizes(limit: int) -> list[ba.FunctionSize]:
    functions = {
        "SmallFunction": ("small.handler", ["lambda.zip"]),
        "BigFunction": ("big.handler", ["lambda.zip", "layer.zip"]),
    }
    artifacts = {
        "lambda.zip": ba.Artifact("lambda.zip", 10, "x", 40),
        "layer.zip": ba.Artifact("layer.zip", 50, "y", 70),
    }
    return ba.function_sizes(functions, artifacts, limit)


def test_size_check_names_the_function_over_a_small_fake_limit() -> None:
    assert [(s.function, s.unzipped_bytes) for s in sizes(100)] == [("SmallFunction", 40), ("BigFunction", 110)]
    ba.check_sizes(sizes(110))  # at the limit is allowed
    with pytest.raises(ba.BuildError) as caught:
        ba.check_sizes(sizes(100))
    message = str(caught.value)
    assert (
        message
        == "Lambda function BigFunction: 110 bytes unzipped (lambda.zip + layer.zip) exceeds the limit of 100 bytes"
    )
    assert "\n" not in message


def test_a_function_whose_artifact_is_not_built_fails_the_build() -> None:
    with pytest.raises(ba.BuildError, match=r"Lambda function F: artifact layer\.zip"):
        ba.function_sizes({"F": ("f.handler", ["layer.zip"])}, {}, 100)


def test_zips_are_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "src"
    (source / "pkg").mkdir(parents=True)
    (source / "pkg" / "a.py").write_text("A = 1\n")
    (source / "b.txt").write_text("b\n")
    ba.write_zip(tmp_path / "one.zip", ba.tree_entries(source, "python/"))
    (source / "b.txt").touch()  # a newer mtime must not change the archive
    ba.write_zip(tmp_path / "two.zip", list(reversed(ba.tree_entries(source, "python/"))))
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    assert ba.unzipped_size(tmp_path / "one.zip") == len("A = 1\n") + len("b\n")


def test_prune_removes_only_what_the_patterns_name(tmp_path: Path) -> None:
    for name in ("pyarrow/lib.cpython-311-x86_64-linux-gnu.so", "pyarrow/libarrow.so.2000", "pyarrow/libarrow.so",
                 "pyarrow/libarrow.so.2000.0.0", "pyarrow/_flight.so", "pyarrow/include/arrow/api.h",
                 "pyarrow/libarrow_substrait.so.2000", "pyarrow/_substrait.so"):  # fmt: skip
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x" * 10)
    assert ba.prune(tmp_path) == 50
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["pyarrow/lib.cpython-311-x86_64-linux-gnu.so", "pyarrow/libarrow.so.2000",
                    "pyarrow/libarrow_substrait.so.2000"]  # fmt: skip


# --- the locks ----------------------------------------------------------------------------------------------


def test_lambda_lock_is_the_package_without_the_cli_and_embedded_database() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    kept = lock.lambda_requirements()
    assert [d for d in dependencies if d not in kept] == [d for d in dependencies if d.startswith(lock.LAMBDA_LEFT_OUT)]
    assert len(dependencies) - len(kept) == len(lock.LAMBDA_LEFT_OUT)
    generated = (ROOT / "requirements" / "lambda.in").read_text().splitlines()[1:]
    assert generated == kept, "requirements/lambda.in is stale: run python -m tools.lock"
    pins = ba.lock_pins(ba.LAMBDA_LOCK)
    assert not set(pins) & {"typer", "rich", "pgserver", "click", "pygments", "psutil"}


def test_every_lock_holds_the_same_version_of_a_package() -> None:
    runtime = ba.lock_pins(ba.RUNTIME_LOCK)
    layer = ba.lock_pins(ba.LAMBDA_LOCK)
    dev = ba.lock_pins(ROOT / "requirements" / "dev.txt")
    assert set(layer) <= set(runtime) <= set(dev)
    assert {name: runtime[name] for name in layer} == layer
    assert {name: dev[name] for name in runtime} == runtime
    # Lambda python3.11 is glibc 2.26: the newest pyarrow with a manylinux2014 wheel is 20
    assert runtime["pyarrow"] == "20.0.0"


def test_locks_pin_every_line_with_hashes() -> None:
    for name in ("runtime.txt", "lambda.txt", "dev.txt"):
        text = (ROOT / "requirements" / name).read_text()
        entries = re.split(r"\n(?=[A-Za-z])", text.strip())
        assert entries and all("==" in e.split()[0] and "--hash=sha256:" in e for e in entries), name


# --- template.yml: the Glue job installs from the artifacts bucket only ---------------------------------------


def test_glue_job_installs_its_wheels_from_the_artifacts_bucket_without_an_index() -> None:
    job = ba.load_template()["Resources"]["TransformGlueJob"]["Properties"]
    arguments = job["DefaultArguments"]
    assert job["GlueVersion"] == "5.0"
    assert arguments["--additional-python-modules"] == {"Fn::Sub": "s3://${ArtifactsBucket}/${GlueWheelsKey}"}
    assert arguments["--python-modules-installer-option"] == "--no-index"
    assert job["Command"]["ScriptLocation"] == {"Fn::Sub": "s3://${ArtifactsBucket}/${GlueScriptKey}"}
    keys = ba.artifact_keys()
    assert keys["GlueWheelsKey"].endswith(".gluewheels.zip") and keys["GlueScriptKey"] == "transform_job.py"


def test_the_vendored_rds_bundle_is_the_pinned_global_bundle_of_root_cas() -> None:
    """Every certificate is a self-signed "Amazon RDS <region> Root CA <key> G1" CA, valid for decades."""
    import datetime as dt

    from cryptography import x509
    from cryptography.x509.oid import NameOID

    from etl.package_data import rds_ca_bundle

    data = rds_ca_bundle().read_bytes()
    assert hashlib.sha256(data).hexdigest() == ba.RDS_CA_BUNDLE_SHA256
    certificates = x509.load_pem_x509_certificates(data)
    assert len(certificates) == 108
    names = [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in certificates]
    assert all(n.startswith("Amazon RDS ") and " Root CA " in n and n.endswith(" G1") for n in names)
    assert {n.split()[-2] for n in names} == {"RSA2048", "RSA4096", "ECC384"}
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in names
    assert all(c.subject == c.issuer and c.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
               for c in certificates)  # fmt: skip
    assert min(c.not_valid_after_utc for c in certificates) > dt.datetime(2060, 1, 1, tzinfo=dt.UTC)


def test_a_layer_without_the_pinned_bundle_fails_the_build_in_one_line(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    with pytest.raises(ba.BuildError, match=re.escape("has no python/etl/aws/certs/rds-global-bundle.pem")):
        ba.describe_ca_bundle(bundle)
    bundle.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    with pytest.raises(ba.BuildError, match="not the pinned e5bb2084") as caught:
        ba.describe_ca_bundle(bundle)
    assert "\n" not in str(caught.value)
