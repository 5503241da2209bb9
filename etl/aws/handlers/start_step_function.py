"""Raw bucket trigger: start one state machine execution per raw file, named from its content."""

from etl.aws import states


def handler(event, context):
    return states.start_executions(event)
