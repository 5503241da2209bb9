"""TransformInLambda: the pyarrow engine writes the file's stage parquet."""

from etl.aws import states
from etl.aws.invocation import Handler, logged

handler: Handler = logged(states.transform_in_lambda)
