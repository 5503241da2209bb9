"""Raw bucket trigger: start one state machine execution per raw file, named from its content."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.start_step_function)
