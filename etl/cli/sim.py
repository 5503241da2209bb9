"""``etl sim FILE...``: the real state machine and handlers on emulated AWS; the states each file went through."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from etl.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    STATUS_COLOURS,
    card_token_key,
    check_inputs,
    console,
    err_console,
    print_json,
    shown,
    usage_error,
)
from etl.config import get_settings


def sim(
    files: Annotated[list[Path], typer.Argument(help="One or more .dat files.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="Print each run as a JSON line.")] = False,
    threshold: Annotated[
        int | None,
        typer.Option("--large-file-threshold", min=0, help="Bytes above which the Glue (PySpark) step runs."),
    ] = None,
    template: Annotated[
        Path | None,
        typer.Option(
            "--template",
            help="CloudFormation template to deploy (roles and policies, retries, alarms); default: the "
            "package's etl/aws/template.yml.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run each file through the packaged state machine and Lambda handlers on moto (landing → ... → notify)."""
    check_inputs([*files, *([template] if template else [])])
    from etl.aws.sim import read_template, run_files
    from etl.db.connect import describe
    from etl.package_data import template as packaged_template

    read_template(packaged_template() if template is None else template)  # unreadable: one line, before anything

    logging.getLogger("moto").setLevel(logging.CRITICAL)  # moto logs every Fail state it interprets as an ERROR
    settings = get_settings()
    key = card_token_key(settings)  # refused before anything runs when missing and not all-local
    if not as_json:
        deployed = "template.yml" if template is None else shown(str(template))
        err_console.print(
            f"emulated AWS (moto over HTTP, IAM as {deployed} deploys it); database: {shown(describe(settings))}",
            highlight=False,
            soft_wrap=True,  # a long template path stays on the line (a log line, not a paragraph)
        )
    # a ConfigError (a package installed without its data files, a database URL that cannot be used) is one
    # line, exit 2, from etl/cli/main.py; so is a database that cannot be reached (no password in the message)
    import psycopg

    try:
        runs = run_files(files, settings, threshold=threshold, key=key, template_path=template)
    except psycopg.OperationalError as exc:
        usage_error(f"cannot use the database: {exc}")
    for run in runs:
        if as_json:
            print_json(run.to_dict())
            continue
        colour = STATUS_COLOURS.get(run.status, "red")
        console.print(
            f"[bold]{shown(run.file)}[/]  [{colour}]{run.status}[/]  "
            f"(execution {run.execution_name}: {run.execution_status})",
            highlight=False,
        )
        console.print("  " + shown(" → ".join(run.states)), highlight=False, soft_wrap=True)
        if run.notification:
            console.print_json(data=run.notification, ensure_ascii=True)
        elif run.detail and not run.denied:
            console.print(f"  {shown(run.detail)}", highlight=False)
        for denied in run.denied:  # a call the role's policy refused fails the run, even if the code caught it
            console.print(f"  [red]IAM denied:[/] {shown(denied)}", highlight=False, soft_wrap=True)  # one line
    raise typer.Exit(EXIT_OK if all(run.ok for run in runs) else EXIT_FAILED)


def register(app: typer.Typer) -> None:
    app.command("sim")(sim)
