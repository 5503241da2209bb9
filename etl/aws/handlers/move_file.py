"""MoveToArchive / MoveToArchiveSkipped / MoveToError: the raw file (and sidecars) to archive or error."""

from etl.aws import states


def handler(event, context):
    return states.move_file(event)
