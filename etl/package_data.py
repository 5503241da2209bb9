"""Files the package carries besides its code, found through ``importlib.resources``.

Glue, Lambda and ``pip install fintech-etl`` get the package from its wheel, without the repository around it,
so every file a command needs at run time lives inside ``etl/`` and ships as package data (``pyproject.toml``):
the CloudFormation template (``etl/aws/template.yml``, whose roles ``etl sim`` enforces) with the policy
documents it inlines (``etl/aws/roles_and_policies/``), the state machine definition (``etl/aws/state_machine.yml``),
the Lambda handlers (``etl/aws/handlers/``), the notebooks (``etl/notebooks/*.ipynb``), the dummy samples
(``etl/data/samples/``), the migrations (``etl/sql/``) and the Amazon RDS CA bundle the deployed functions
verify Aurora's certificate with (``etl/aws/certs/rds-global-bundle.pem``). Each exists once; deploy steps and
docs point at these paths.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from etl.errors import ConfigError

PACKAGE = "etl"
TEMPLATE = ("aws", "template.yml")
POLICIES = ("aws", "roles_and_policies")
STATE_MACHINE = ("aws", "state_machine.yml")
HANDLERS = ("aws", "handlers")
NOTEBOOKS = ("notebooks",)
SAMPLES = ("data", "samples")
MIGRATIONS = ("sql",)
RDS_CA_BUNDLE = ("aws", "certs", "rds-global-bundle.pem")


def package_path(*parts: str) -> Path:
    """A file or folder inside the installed package, as a real path (papermill, moto and Spark want paths).

    ``ConfigError`` (one line, exit 2 from the CLI) when it is missing or the package is not on a file system
    (imported from a zip): the install is incomplete, and a checkout (``pip install -e .``) has every file.
    """
    where = "/".join((PACKAGE, *parts))
    target = resources.files(PACKAGE).joinpath(*parts)
    if not isinstance(target, Path):
        raise ConfigError(f"{where} is inside a zipped etl package; install the wheel unpacked or use a checkout")
    if not target.exists():
        raise ConfigError(f"{where} is missing from the installed etl package; reinstall it or use a checkout")
    return target


def template() -> Path:
    """``etl/aws/template.yml``: the stack CloudFormation deploys (docs/deploy.md §3), whose roles, policies,
    retries and alarms ``etl sim`` deploys on the emulation."""
    return package_path(*TEMPLATE)


def policies_dir() -> Path:
    """``etl/aws/roles_and_policies/``: one policy document per role, the template inlines each (its role's
    ``Metadata.PolicyDocument`` names the file, relative to the template)."""
    return package_path(*POLICIES)


def state_machine() -> Path:
    """``etl/aws/state_machine.yml``: the definition deployed to Step Functions (docs/deploy.md §2)."""
    return package_path(*STATE_MACHINE)


def handlers_dir() -> Path:
    """``etl/aws/handlers/``: the Lambda entry points, zipped flat as the functions' code (``module.handler``)."""
    return package_path(*HANDLERS)


def notebooks_dir() -> Path:
    """``etl/notebooks/``: the papermill notebooks (``*.ipynb``) beside the modules they call."""
    return package_path(*NOTEBOOKS)


def samples_dir() -> Path:
    """``etl/data/samples/``: the committed dummy ``.dat`` files the notebooks default to."""
    return package_path(*SAMPLES)


def rds_ca_bundle() -> Path:
    """``etl/aws/certs/rds-global-bundle.pem``: Amazon RDS's global CA bundle (every region's root CAs), the
    trust anchors of ``ETL_DB_SSLROOTCERT=rds`` (docs/deploy.md §3). In Lambda it is found inside the layer
    (``/opt/python/etl/...``) through the package, so no path is written into the template."""
    return package_path(*RDS_CA_BUNDLE)
