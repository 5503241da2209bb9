"""``etl replay``: run failed work again — files in the error zone, failed executions, failure-queue events.

Locally a replayed file goes back into landing and through ``etl run``'s pipeline, with the same summary and
notifications. With ``ETL_STATE_MACHINE_ARN`` set (AWS), files go back into the landing bucket for the
triggers, failed executions are started again, and ``--queue`` re-invokes what a trigger failed on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from etl.cli.common import EXIT_FAILED, EXIT_OK, card_token_key, console, print_json, shown, usage_error
from etl.errors import ConfigError

if TYPE_CHECKING:
    from etl.config import Settings


def replay(
    keys: Annotated[
        list[str] | None,
        typer.Argument(
            help="Error-zone keys (<feed>/<date>/<file>), as `etl status` and notifications show.", show_default=False
        ),
    ] = None,
    feed: Annotated[str | None, typer.Option(help="Every error-zone file of this feed.")] = None,
    date: Annotated[str | None, typer.Option(help="With --feed: only this business date (YYYY-MM-DD).")] = None,
    execution: Annotated[
        list[str] | None, typer.Option("--execution", help="A failed execution's ARN (AWS); repeatable.")
    ] = None,
    queue: Annotated[
        str | None, typer.Option(help="A trigger's failure-queue URL (AWS): re-invoke its events.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="At most this many queued events.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Only JSON on stdout: one line per replayed item.")] = False,
) -> None:
    """Run failed work again, through the unchanged pipeline (a file already loaded ends SKIPPED)."""
    from etl.config import get_settings

    settings = get_settings()
    if date and not feed:
        usage_error("--date needs --feed (the error zone is laid out <feed>/<date>/)")
    if not (keys or feed or execution or queue):
        usage_error("nothing to replay: name error-zone keys, --feed [--date], --execution or --queue")
    try:
        if settings.state_machine_arn or execution or queue:
            ok = _replay_aws(settings, keys or [], feed, date, execution or [], queue, limit, as_json)
        else:
            ok = _replay_local(settings, keys or [], feed, date, as_json)
    except ConfigError as exc:
        usage_error(str(exc))
    raise typer.Exit(EXIT_OK if ok else EXIT_FAILED)


def _replay_local(settings: Settings, keys: list[str], feed: str | None, date: str | None, as_json: bool) -> bool:
    from etl.cli.run import _summary, check_database, check_zones, database_location, show_locations
    from etl.io.zones import valid_key
    from etl.pipeline.context import Context
    from etl.pipeline.replay import error_files, is_data_key, replay_local

    key = card_token_key(settings)  # before any file moves: the development key only for an all-local run
    where = database_location(settings)
    with Context(settings, pan_key=key) as ctx:
        check_database(ctx, where)  # as `etl run`: database and zones usable, then the one informational line
        check_zones(ctx)
        chosen = [*keys, *(error_files(ctx.zone("error"), feed, date) if feed else [])]
        if not chosen:
            raise ConfigError("no file in the error zone matches")
        for key in chosen:  # every key checked before anything moves or prints
            if not (valid_key(key) and is_data_key(key) and ctx.zone("error").exists(key)):
                raise ConfigError(f"{key}: no data file there to replay (error zone {ctx.zone('error').uri})")
        if not as_json:
            show_locations(settings, where)
        outcomes = list(replay_local(ctx, chosen))
    if not as_json:
        _summary(outcomes)
    return all(o.ok for o in outcomes)


def _replay_aws(
    settings: Settings,
    keys: list[str],
    feed: str | None,
    date: str | None,
    executions: list[str],
    queue: str | None,
    limit: int,
    as_json: bool,
) -> bool:
    import boto3

    from etl.aws.replay import Replayed, replay_execution, replay_queue
    from etl.pipeline.context import Context
    from etl.pipeline.replay import error_files, take_out

    done: list[Replayed] = []
    with Context(settings) as ctx:
        error, landing = ctx.zone("error"), ctx.zone("landing")
        for key in [*keys, *(error_files(error, feed, date) if feed else [])]:
            landed = take_out(error, key, landing)
            done.append(Replayed(error.uri_of(key), "landed", landing.uri_of(landed)))
        if executions:
            sfn = boto3.client("stepfunctions")
            done += [replay_execution(ctx, sfn, arn) for arn in executions]
    if queue:
        done += replay_queue(boto3.client("sqs"), boto3.client("lambda"), queue, limit)
    for item in done:
        if as_json:
            print_json(item.to_dict())
        else:
            colour = "red" if item.action == "failed_again" else "green"
            line = f"{shown(item.source)}  [{colour}]{item.action}[/]  {shown(item.detail)}"
            console.print(line, highlight=False, soft_wrap=True)
    return all(item.action != "failed_again" for item in done)


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
