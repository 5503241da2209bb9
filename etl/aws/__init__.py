"""The AWS edge: the state machine definition, IAM policy checks, emulated AWS for tests and ``etl sim``."""
