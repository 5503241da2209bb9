"""Build every deployable artifact from the lock: ``python -m tools.build_artifacts`` (docs/deploy.md §1).

Target: AWS Lambda ``python3.11`` on x86_64 (Amazon Linux 2, glibc 2.26) and AWS Glue 5.0 (Python 3.11,
Amazon Linux 2023). Third-party code comes only as ``manylinux2014_x86_64`` (glibc 2.17) cp311 wheels at the
exact versions and hashes of the locks (``requirements/lambda.txt`` for the layer, ``requirements/runtime.txt``
for Glue; ``python -m tools.lock`` writes them), so the same bytes run on both services and here.

``build/artifacts/`` then holds, with the names ``parameter.json`` points at:

- ``lambda.zip``   the thin handlers of ``etl/aws/handlers/``, flat (one zip, one handler module per function);
- ``layer.zip``    ``python/``: the etl package and its runtime dependencies (no CLI, no embedded database),
  pyarrow without the parts the code never loads, with bytecode;
- ``fintech_etl-<version>.gluewheels.zip``  the Glue job's "zip of wheels" (``wheels/*.whl`` and
  ``wheels/requirements.txt``), installed by Glue with ``--no-index``: no package index at run time;
- ``transform_job.py`` (the Glue script), ``state_machine.yml`` (the definition as uploaded), the etl wheel;
- ``manifest.json``: size and SHA-256 of each artifact, unzipped sizes, and each function's code + layers
  against Lambda's limit of 262,144,000 bytes unzipped, and the SHA-256 and certificate count of the Amazon RDS
  CA bundle the layer carries (``etl/aws/certs/rds-global-bundle.pem``: the database functions verify Aurora's
  certificate with it). A function over the limit, or a layer without the bundle, fails the build with one line.

Downloaded wheels are cached under ``build/wheels/<hash of the lock>/``; every install re-checks the hashes.
Glue's pip resolves the etl wheel's dependencies from the zip alone, so the zip holds all of them (the CLI's
and the embedded database's too: Glue has no size limit that matters, and an incomplete zip fails to install).
Zips are reproducible: sorted entries, fixed timestamps and modes.
"""

from __future__ import annotations

import argparse
import compileall
import hashlib
import json
import os
import py_compile
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"  # the package's dependencies: Glue
LAMBDA_LOCK = ROOT / "requirements" / "lambda.txt"  # the same versions without the CLI and embedded database
DEFAULT_OUT = ROOT / "build" / "artifacts"
WHEEL_CACHE = ROOT / "build" / "wheels"

#: AWS Lambda quota: a function's deployment package and all its layers, unzipped (bytes).
LAMBDA_UNZIPPED_LIMIT = 262_144_000

#: pip's target for the Lambda python3.11 runtime and Glue 5.0 (both accept manylinux2014 wheels).
PLATFORM_OPTIONS = (
    "--platform", "manylinux2014_x86_64", "--implementation", "cp", "--python-version", "3.11", "--abi", "cp311",
    "--only-binary=:all:",
)  # fmt: skip

#: Removed from the layer: never imported by the handlers (``python -X importtime`` of every handler, and
#: tests/deploy runs handlers from the layer). Flight is pyarrow's RPC binding (nothing links to
#: ``libarrow_flight``); the ``_substrait`` binding goes, but ``libarrow_substrait`` stays: ``pyarrow.lib``
#: links it. pip --target copies each symlinked library three times: only the ``.so.<major>`` names the
#: loader asks for (``readelf -d``) are kept. Headers, Cython sources and test suites are build-time only;
#: ``bin/`` holds console scripts Lambda never runs. Of Powertools the handlers load the Logger and the parser
#: models only: its API Gateway/AppSync routers (``event_handler``) and dict-wrapper event classes go.
LAYER_PRUNE = (
    "aws_lambda_powertools/event_handler",
    "aws_lambda_powertools/utilities/data_classes",
    "bin",
    "pyarrow/include",
    "pyarrow/includes",
    "pyarrow/src",
    "pyarrow/tests",
    "pyarrow/*flight*",
    "pyarrow/_substrait*",
    "pyarrow/substrait.py",
    "pyarrow/libarrow*.so",
    "pyarrow/libarrow*.so.*.*.*",
    "pyarrow/_pyarrow_cpp_tests*",
    "pyarrow/**/*.pyx",
    "pyarrow/**/*.pxd",
    "pyarrow/**/*.pxi",
    "pyarrow/**/*.h",
    "numpy/**/tests",
    "numpy/_core/include",
    "numpy/f2py",
    "**/__pycache__",
)

ZIP_DATE = (1980, 1, 1, 0, 0, 0)

#: The RDS CA bundle inside the layer, where ``etl.package_data.rds_ca_bundle`` finds it in Lambda.
LAYER_RDS_CA_BUNDLE = "python/etl/aws/certs/rds-global-bundle.pem"
#: SHA-256 of https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem as vendored (docs/deploy.md §1):
#: a build whose layer carries other bytes fails, so a refresh changes the file and this pin together.
RDS_CA_BUNDLE_SHA256 = "e5bb2084ccf45087bda1c9bffdea0eb15ee67f0b91646106e466714f9de3c7e3"


class BuildError(Exception):
    """A build that must not produce artifacts; its message is the one line the command prints."""


@dataclass(frozen=True)
class Artifact:
    name: str
    bytes: int
    sha256: str
    unzipped_bytes: int | None = None


@dataclass(frozen=True)
class FunctionSize:
    """A Lambda function of template.yml: its code and layers, by artifact name, and their unzipped total."""

    function: str
    handler: str
    artifacts: tuple[str, ...]
    unzipped_bytes: int
    limit: int = LAMBDA_UNZIPPED_LIMIT


# --- reproducible zips --------------------------------------------------------------------------------------


def write_zip(target: Path, entries: Iterable[tuple[str, Path]]) -> None:
    """A zip of ``(name in archive, file)`` pairs, sorted, with fixed dates and modes: same input, same bytes."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as archive:
        for name, path in sorted(entries):
            info = zipfile.ZipInfo(name, ZIP_DATE)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=6)


def tree_entries(root: Path, prefix: str = "") -> list[tuple[str, Path]]:
    """Every file under ``root`` as a zip entry named ``prefix`` + its relative path."""
    return [(prefix + p.relative_to(root).as_posix(), p) for p in root.rglob("*") if p.is_file()]


def unzipped_size(path: Path) -> int:
    """What Lambda counts against its limit: the uncompressed size of every member."""
    with zipfile.ZipFile(path) as archive:
        return sum(info.file_size for info in archive.infolist())


def describe(path: Path) -> Artifact:
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    unzipped = unzipped_size(path) if path.suffix in {".zip", ".whl"} else None
    return Artifact(path.name, path.stat().st_size, digest, unzipped)


# --- the lock and its wheels --------------------------------------------------------------------------------


def lock_pins(lock: Path = LAMBDA_LOCK) -> dict[str, str]:
    """``{normalised name: version}`` of every ``name==version`` line of a pip lock."""
    pins = {}
    for line in lock.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


def pip(*args: str) -> None:
    command = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet", *args]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(f"pip {args[0]} failed: {detail}")


def locked_wheels(lock: Path, cache_root: Path = WHEEL_CACHE) -> Path:
    """The folder of the lock's wheels for the target platform, downloaded once per lock (hash-checked)."""
    key = hashlib.sha256(lock.read_bytes()).hexdigest()[:16]
    folder = cache_root / key
    if not (folder / ".complete").exists():
        shutil.rmtree(folder, ignore_errors=True)
        pip("download", "--no-deps", "--require-hashes", "-r", str(lock), *PLATFORM_OPTIONS, "-d", str(folder))
        (folder / ".complete").write_text(lock.name + "\n")
    return folder


def etl_wheel(out: Path) -> Path:
    """The etl package as a wheel (pure Python); setuptools' in-tree ``build/lib`` is cleared first so a
    module deleted from the source cannot linger in the wheel."""
    for stale in (ROOT / "build" / "lib", *ROOT.glob("build/bdist.*")):
        shutil.rmtree(stale, ignore_errors=True)
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}  # 1980-01-01: reproducible wheel timestamps
    with tempfile.TemporaryDirectory() as tmp:
        command = [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp, str(ROOT)]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        if result.returncode != 0:
            raise BuildError(f"building the etl wheel failed: {result.stderr.strip().splitlines()[-1:]}")
        (wheel,) = Path(tmp).glob("fintech_etl-*.whl")
        return Path(shutil.copy2(wheel, out / wheel.name))


def install(target: Path, wheels: Path, package: Path, lock: Path = LAMBDA_LOCK) -> None:
    """The lock's wheels (hashes checked again, no index) and the etl wheel into ``target``, no bytecode."""
    pip("install", "--no-deps", "--no-index", "--no-compile", "--find-links", str(wheels), "--require-hashes",
        "-r", str(lock), *PLATFORM_OPTIONS, "--target", str(target))  # fmt: skip
    pip("install", "--no-deps", "--no-index", "--no-compile", str(package), "--target", str(target))
    for record in target.glob("*.dist-info/direct_url.json"):  # the build folder's path: not reproducible
        listing = record.with_name("RECORD")
        listing.write_text("".join(line for line in listing.read_text().splitlines(True) if "direct_url" not in line))
        record.unlink()


def prune(root: Path, patterns: Iterable[str] = LAYER_PRUNE) -> int:
    """Delete what matches ``patterns`` (relative to ``root``); returns the bytes removed."""
    removed = 0
    for pattern in patterns:
        for path in sorted(root.glob(pattern), key=lambda p: len(p.parts), reverse=True):
            if not path.exists():
                continue
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
            removed += sum(p.stat().st_size for p in files)
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    return removed


def compile_bytecode(root: Path, deployed_at: str) -> None:
    """Unchecked-hash ``.pyc`` beside every module: Lambda's file system is read-only, so without them every
    cold start compiles all of pyarrow's, pydantic's and botocore's Python again (measured here: importing
    the handlers took 10.7-11.2 s without, 2.7-2.8 s with). Unchecked-hash pycs do not depend on file dates,
    and ``ddir`` records the deployed path, so the bytes are reproducible and tracebacks name /opt/python."""
    if sys.version_info[:2] != (3, 11):
        raise BuildError(f"build with Python 3.11 (the Lambda and Glue runtime), not {sys.version.split()[0]}")
    ok = compileall.compile_dir(
        root, quiet=2, ddir=deployed_at, workers=1, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
    )
    if not ok:
        raise BuildError(f"compiling the layer's Python failed under {root}")


# --- template.yml and parameter.json ------------------------------------------------------------------------


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref X`` -> ``{"Ref": "X"}``, ``!GetAtt``, ``!Sub``...)."""


def _cfn_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = suffix if suffix in {"Ref", "Condition"} else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        return {name: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {name: loader.construct_sequence(node, deep=True)}
    return {name: loader.construct_mapping(node, deep=True)}


_CfnLoader.add_multi_constructor("!", _cfn_tag)


def load_template(path: Path | None = None) -> dict[str, Any]:
    """The stack's template (the package's ``etl/aws/template.yml`` unless ``path`` names another)."""
    from etl.package_data import template

    path = template() if path is None else path
    return yaml.load(path.read_text(), Loader=_CfnLoader)  # a SafeLoader plus CloudFormation's tags


def artifact_keys(parameters: Path = ROOT / "parameter.json") -> dict[str, str]:
    """``{parameter: artifact file name}`` for the ``*Key`` parameters (the S3 keys of the artifacts)."""
    values = {p["ParameterKey"]: p["ParameterValue"] for p in json.loads(parameters.read_text())}
    return {name: value.rsplit("/", 1)[-1] for name, value in values.items() if name.endswith("Key")}


def function_artifacts(template: Mapping[str, Any], keys: Mapping[str, str]) -> dict[str, tuple[str, list[str]]]:
    """``{function logical id: (handler, [code artifact, layer artifacts...])}`` as template.yml deploys them."""
    resources = template["Resources"]

    def artifact(s3_key: Any, where: str) -> str:
        parameter = s3_key.get("Ref") if isinstance(s3_key, dict) else None
        if parameter not in keys:
            raise BuildError(f"{where}: S3Key must be !Ref to a *Key parameter of parameter.json, not {s3_key!r}")
        return keys[parameter]

    functions = {}
    for name, resource in resources.items():
        if resource["Type"] != "AWS::Lambda::Function":
            continue
        props = resource["Properties"]
        parts = [artifact(props["Code"]["S3Key"], name)]
        for layer in props.get("Layers", []):
            layer_id = layer["Ref"]
            parts.append(artifact(resources[layer_id]["Properties"]["Content"]["S3Key"], layer_id))
        functions[name] = (props["Handler"], parts)
    return functions


def function_sizes(
    functions: Mapping[str, tuple[str, list[str]]], artifacts: Mapping[str, Artifact], limit: int
) -> list[FunctionSize]:
    sizes = []
    for name, (handler, parts) in functions.items():
        missing = [part for part in parts if part not in artifacts]
        if missing:
            raise BuildError(f"Lambda function {name}: artifact {missing[0]} (parameter.json) is not built")
        total = sum(artifacts[part].unzipped_bytes or 0 for part in parts)
        sizes.append(FunctionSize(name, handler, tuple(parts), total, limit))
    return sizes


def check_sizes(sizes: Iterable[FunctionSize]) -> None:
    """Lambda refuses a function whose code and layers exceed the limit unzipped: fail the build first."""
    for size in sizes:
        if size.unzipped_bytes > size.limit:
            raise BuildError(
                f"Lambda function {size.function}: {size.unzipped_bytes:,} bytes unzipped "
                f"({' + '.join(size.artifacts)}) exceeds the limit of {size.limit:,} bytes"
            )


# --- the artifacts ------------------------------------------------------------------------------------------


def state_machine_source() -> Path:
    """The definition ``etl`` itself loads (wherever the package keeps it)."""
    from etl.package_data import state_machine

    return state_machine()


def build(out: Path = DEFAULT_OUT, limit: int = LAMBDA_UNZIPPED_LIMIT) -> dict[str, Any]:
    """Build everything into ``out`` (emptied first) and return the manifest (also written there)."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    package = etl_wheel(out)
    version = package.name.split("-")[1]
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        layer = Path(tmp) / "layer" / "python"
        install(layer, locked_wheels(LAMBDA_LOCK), package, LAMBDA_LOCK)
        pruned = prune(layer)
        compile_bytecode(layer, "/opt/python")
        ca_bundle = describe_ca_bundle(layer.parent / LAYER_RDS_CA_BUNDLE)
        write_zip(out / "layer.zip", tree_entries(layer.parent))
    handlers = ROOT / "etl" / "aws" / "handlers"
    write_zip(out / "lambda.zip", [(p.name, p) for p in handlers.glob("*.py") if p.name != "__init__.py"])
    glue_wheels = [*sorted(locked_wheels(RUNTIME_LOCK).glob("*.whl")), package]
    requirements = Path(out / "requirements.txt")
    requirements.write_text("".join(f"{name}=={version}\n" for name, version in sorted(wheel_pins(glue_wheels))))
    write_zip(
        out / f"fintech_etl-{version}.gluewheels.zip",
        [(f"wheels/{p.name}", p) for p in glue_wheels] + [("wheels/requirements.txt", requirements)],
    )
    requirements.unlink()
    shutil.copy2(ROOT / "glue" / "transform_job.py", out / "transform_job.py")
    shutil.copy2(state_machine_source(), out / "state_machine.yml")
    extra = {"version": version, "layer_pruned_bytes": pruned, "rds_ca_bundle": ca_bundle}
    return write_manifest(out, limit, extra=extra)


def describe_ca_bundle(path: Path) -> dict[str, Any]:
    """Where the layer holds the RDS CA bundle, its SHA-256 (compare with the one docs/deploy.md records for
    the download) and how many certificates it has; a layer without it fails the build."""
    if not path.is_file():
        raise BuildError(f"the layer has no {LAYER_RDS_CA_BUNDLE}: the etl wheel was built without its package data")
    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != RDS_CA_BUNDLE_SHA256:
        raise BuildError(
            f"{LAYER_RDS_CA_BUNDLE} has SHA-256 {digest}, not the pinned {RDS_CA_BUNDLE_SHA256}: "
            "refresh the bundle and the pin together (docs/deploy.md §1)"
        )
    return {
        "path": f"layer.zip:{LAYER_RDS_CA_BUNDLE}",
        "sha256": digest,
        "certificates": data.count(b"-----BEGIN CERTIFICATE-----"),
    }


def wheel_pins(wheels: Iterable[Path]) -> list[tuple[str, str]]:
    """``(distribution, version)`` from wheel file names (PEP 427: ``name-version-...whl``)."""
    return [tuple(p.name.split("-")[:2]) for p in wheels]  # type: ignore[misc]


def write_manifest(out: Path, limit: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Describe what is in ``out``, check every function's size, and write ``manifest.json``."""
    artifacts = {p.name: describe(p) for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"}
    sizes = function_sizes(function_artifacts(load_template(), artifact_keys()), artifacts, limit)
    manifest = {
        **(extra or {}),
        "platform": "AWS Lambda python3.11 / AWS Glue 5.0: cp311 manylinux2014_x86_64",
        "locks": {"layer": LAMBDA_LOCK.relative_to(ROOT).as_posix(), "glue": RUNTIME_LOCK.relative_to(ROOT).as_posix()},
        "lambda_unzipped_limit": limit,
        "artifacts": {name: asdict(a) for name, a in artifacts.items()},
        "functions": {s.function: asdict(s) for s in sizes},
    }
    check_sizes(sizes)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def check_only(out: Path, limit: int) -> dict[str, Any]:
    """Re-check a finished build (its manifest keeps what only the build knows)."""
    previous = json.loads((out / "manifest.json").read_text()) if (out / "manifest.json").exists() else {}
    return write_manifest(
        out, limit, extra={k: previous[k] for k in ("version", "layer_pruned_bytes", "rds_ca_bundle") if k in previous}
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.build_artifacts", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (emptied first)")
    parser.add_argument("--size-limit", type=int, default=LAMBDA_UNZIPPED_LIMIT, help=argparse.SUPPRESS)
    parser.add_argument("--check-only", action="store_true", help="only re-check the artifacts already in --out")
    args = parser.parse_args(argv)
    try:
        manifest = check_only(args.out, args.size_limit) if args.check_only else build(args.out, args.size_limit)
    except BuildError as exc:
        print(f"build_artifacts: {exc}", file=sys.stderr)
        return 1
    for name, artifact in manifest["artifacts"].items():
        unzipped = f", {artifact['unzipped_bytes']:,} unzipped" if artifact["unzipped_bytes"] else ""
        print(f"{args.out / name}: {artifact['bytes']:,} bytes{unzipped}")
    worst = max(manifest["functions"].values(), key=lambda f: f["unzipped_bytes"])
    print(f"largest function (code + layers, unzipped): {worst['function']} {worst['unzipped_bytes']:,} "
          f"of {manifest['lambda_unzipped_limit']:,} bytes")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
