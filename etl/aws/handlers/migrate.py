"""Custom::DatabaseMigrations: apply the packaged migrations when the stack deploys (answers CloudFormation)."""

from typing import Any

from etl.aws import migrations_resource
from etl.aws.invocation import Handler, LambdaContext, logged


def answer(event: dict[str, Any], context: LambdaContext) -> str:
    return migrations_resource.handle(event, context).status


handler: Handler = logged(answer, with_context=True)
