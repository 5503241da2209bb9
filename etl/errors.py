"""The one root of every error the package raises on purpose, and the two families that decide what happens next.

- :class:`EtlError` is the root: anything the package raises deliberately derives from it, so a caller (the CLI,
  a Lambda handler, a notebook) can tell "the package said no, with a reason" from a bug.
- :class:`ConfigError` is a usage or configuration problem (a bad variable, a missing key, an unreachable or
  unmigrated database before any file was touched). The CLI maps it to one line on stderr and exit code 2, in one
  place (``etl/cli/main.py``), never a traceback.
- :class:`TransientError` marks a failure that a later attempt may not meet (a lost connection, a throttled
  service). Step Functions retries on the class *name* the Lambda runtime reports, so subclasses keep the names
  the state machine matches (``TransientDatabaseError``).

Messages carry no row values: an error line may reach a terminal, a log or a notification (docs/design.md §5).
"""

from __future__ import annotations


class EtlError(Exception):
    """Root of the package's deliberate errors."""


class ConfigError(EtlError):
    """A usage or configuration problem: the CLI prints one line and exits with code 2."""


class TransientError(EtlError):
    """A failure worth retrying later; the caller (Step Functions, a rerun) retries."""
