"""Landing bucket trigger: move each new object into the raw zone (docs/state_machine.md, lz_to_raw)."""

from etl.aws import states


def handler(event, context):
    return states.land_to_raw(event)
