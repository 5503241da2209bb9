"""Custom::DatabaseMigrations: apply the packaged migrations when the stack deploys (answers CloudFormation)."""

from typing import Any

from etl.aws import migrations_resource
from etl.aws.invocation import LambdaContext


def handler(event: dict[str, Any], context: LambdaContext) -> str:
    return migrations_resource.handle(event, context).status
