"""ValidateFile: validation report, duplicate check and rule counts for one raw file."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.validate_file)
