"""LoadToDatabase: upsert the staged file; raises TransientDatabaseError for retryable failures."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.load_to_database, timed=True)  # the load's timeouts come from the time left
