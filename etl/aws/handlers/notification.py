"""NotifySuccess / NotifySkipped / NotifyFailure: publish the file's notification to SNS."""

from etl.aws import states


def handler(event, context):
    return states.notify(event)
