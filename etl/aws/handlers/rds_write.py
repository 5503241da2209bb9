"""LoadToDatabase: upsert the staged file; raises TransientDatabaseError for retryable failures."""

from etl.aws import states


def handler(event, context):
    return states.load_file(event)
