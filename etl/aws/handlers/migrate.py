"""Custom::DatabaseMigrations: apply the packaged migrations when the stack deploys (answers CloudFormation)."""

from etl.aws import migrations_resource


def handler(event, context):
    return migrations_resource.handle(event, context).status
