"""Landing bucket trigger: move each new object into the raw zone (docs/state_machine.md, lz_to_raw)."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.lz_to_raw)
