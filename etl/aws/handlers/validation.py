"""ValidateFile: validation report, duplicate check and rule counts for one raw file."""

from etl.aws import states


def handler(event, context):
    return states.validate_file(event)
