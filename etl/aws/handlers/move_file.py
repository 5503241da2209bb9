"""MoveToArchive / MoveToArchiveSkipped / MoveToError: the raw file (and sidecars) to archive or error."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.move_file)
