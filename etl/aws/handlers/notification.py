"""NotifySuccess / NotifySkipped / NotifyFailure: publish the file's notification to SNS."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.notify)
