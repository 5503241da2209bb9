"""TransformInLambda: the pyarrow engine writes the file's stage parquet."""

from etl.aws import states


def handler(event, context):
    return states.transform_file(event)
