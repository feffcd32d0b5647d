"""Every failure the runner expects, each with the exit code a Kubernetes Job acts on.

The CLI is the only place that turns these into exit codes; everything else raises.
"""

from __future__ import annotations

from typing import Optional

# One table, mirrored in README.md ("Exit codes").
EXIT_OK = 0
EXIT_MIGRATION_FAILED = 1  # permanent: the SQL (or a half-run no-transaction file) needs a human
EXIT_BAD_INPUT = 2  # permanent: bad usage, bad configuration or bad migration files
EXIT_DRIFT = 3  # permanent until reviewed: an applied file changed
EXIT_PENDING = 4  # `status --check` only: migrations are waiting
EXIT_TRANSIENT = 75  # EX_TEMPFAIL: unreachable database, lock busy, lock timeouts exhausted
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class RunnerError(Exception):
    """Base class: a message for people, an exit code for machines."""

    exit_code = EXIT_MIGRATION_FAILED

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(RunnerError):
    exit_code = EXIT_BAD_INPUT


class MigrationFileError(RunnerError):
    """A migration file cannot be used as it is (name, encoding, content)."""

    exit_code = EXIT_BAD_INPUT


class DriftError(RunnerError):
    exit_code = EXIT_DRIFT


class TransientError(RunnerError):
    """Retrying later may succeed: the Job should count this attempt and try again."""

    exit_code = EXIT_TRANSIENT


class DatabaseUnavailable(TransientError):
    pass


class LockNotAcquired(TransientError):
    pass


class LockTimeoutsExhausted(TransientError):
    pass


class ConnectionLost(TransientError):
    """The server went away mid-migration; it rolled the open transaction back."""


class IncompleteMigration(RunnerError):
    """A no-transaction migration stopped part-way; re-running it blindly is unsafe."""

    exit_code = EXIT_MIGRATION_FAILED


class Interrupted(RunnerError):
    def __init__(self, signum: int, message: str, hint: Optional[str] = None):
        super().__init__(message, hint)
        self.signum = signum

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum


class MigrationFailed(RunnerError):
    """A statement of a migration failed on the server; the migration was rolled back."""

    exit_code = EXIT_MIGRATION_FAILED

    def __init__(
        self,
        *,
        file: str,
        statement_number: int,
        statement_count: int,
        line: int,
        sqlstate: Optional[str],
        server_message: str,
        detail: Optional[str] = None,
        hint: Optional[str] = None,
        context: Optional[str] = None,
        statement: str = "",
        rolled_back: bool = True,
    ):
        self.file = file
        self.statement_number = statement_number
        self.statement_count = statement_count
        self.line = line
        self.sqlstate = sqlstate
        self.server_message = server_message
        self.detail = detail
        self.server_hint = hint
        self.context = context
        self.statement = statement
        self.rolled_back = rolled_back
        super().__init__(self._render())

    def locate_unknown(self) -> None:
        """The file ran as one batch and the server named no position."""
        self.statement_number = 0
        self.statement = ""
        self.message = self._render()

    def _render(self) -> str:
        where = f"{self.file}:{self.line}"
        at = (
            f"at statement {self.statement_number} of {self.statement_count} ({where})"
            if self.statement_number
            else "(it ran as one batch, and PostgreSQL does not say which statement failed)"
        )
        lines = [
            f"migration {self.file} failed {at}",
            f"  SQLSTATE {self.sqlstate or '?'}: {self.server_message}",
        ]
        if self.detail:
            lines.append(f"  DETAIL: {self.detail}")
        if self.server_hint:
            lines.append(f"  HINT: {self.server_hint}")
        if self.context:
            lines.append(f"  CONTEXT: {self.context.strip().splitlines()[0]}")
        excerpt = statement_excerpt(self.statement)
        if excerpt:
            lines.append("  statement:")
            lines.extend(f"    {text}" for text in excerpt)
        lines.append(
            "  the migration was rolled back; the database is as it was before it"
            if self.rolled_back
            else "  this no-transaction migration stopped part-way; see `python -m runner status`"
        )
        return "\n".join(lines)


def statement_excerpt(statement: str, max_lines: int = 5) -> list[str]:
    lines = statement.strip().splitlines()
    if len(lines) > max_lines:
        return lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return lines
