"""Refusals and failures of the deploy script, each with its exit code (same scheme as the runner)."""

EXIT_OK = 0
EXIT_FAILED = 1  # the deploy ran and failed (e.g. a migration); see the report
EXIT_USAGE = 2  # bad arguments, or a missing tool
EXIT_TRANSIENT = 75  # try again later: stack locked, cluster unreachable


class DeployError(Exception):
    exit_code = EXIT_FAILED


class UsageError(DeployError):
    exit_code = EXIT_USAGE


class TransientError(DeployError):
    exit_code = EXIT_TRANSIENT
