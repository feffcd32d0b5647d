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
    """Base class: a message for people, an exit code and a stable `error` name for machines
    (the `error` field of the JSON `failed` event; README lists them)."""

    exit_code = EXIT_MIGRATION_FAILED
    error = "failed"

    def __init__(self, message: str, hint: Optional[str] = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\nhint: {self.hint}"


class UsageError(RunnerError):
    exit_code = EXIT_BAD_INPUT
    error = "bad_input"


class MigrationFileError(RunnerError):
    """A migration file cannot be used as it is (name, encoding, content)."""

    exit_code = EXIT_BAD_INPUT
    error = "bad_migration_file"


class DriftError(RunnerError):
    exit_code = EXIT_DRIFT
    error = "drift"


class DatabaseRefused(UsageError):
    """The server answered and said no: wrong password, unknown role or database, pg_hba.
    Retrying cannot help, so the Job must not spend its retries and deadline on it."""

    error = "database_refused"


class DatabaseReadOnly(UsageError):
    """The session cannot write: a standby, or default_transaction_read_only. Pointing the
    runner at a replica is configuration to fix, not an outage to wait out."""

    error = "database_read_only"


class TrackingFailed(UsageError):
    """The migration ran, but its schema_migrations row could not be written (rolled back)."""

    error = "tracking_failed"


class RenamedMigration(DriftError):
    """A pending file has the checksum of an applied file that is gone: a rename."""

    error = "renamed_migration"


class OutOfOrderMigration(DriftError):
    """A pending file is older than a migration already applied (refused unless allowed)."""

    error = "out_of_order"


class HistoryConflict(UsageError):
    """More than one schema_migrations table of the runner's shape: which one is this app's
    history is not for the runner to guess."""

    error = "history_conflict"


class TransientError(RunnerError):
    """Retrying later may succeed: the Job should count this attempt and try again."""

    exit_code = EXIT_TRANSIENT
    error = "transient"


class FileChanged(TransientError):
    """A large file's bytes changed between its checks and its run (rewritten in place): what
    was checked, and would be recorded, is not what would run."""

    error = "file_changed"

    def __init__(self, file: str, line: int, outcome: str = "nothing of it ran"):
        self.file = file
        self.line = line
        what = "its bytes are" if line == 1 else f"its bytes from line {line} on are"
        super().__init__(
            f"{file} changed while the runner was applying it: {what} not the ones it read and checked; {outcome}",
            hint="change a migration before it is deployed, not while it runs; running again applies the file "
            "as it is then",
        )


class DatabaseUnavailable(TransientError):
    error = "database_unreachable"


class LockNotAcquired(TransientError):
    error = "lock_busy"


class LockTimeoutsExhausted(TransientError):
    error = "lock_timeouts_exhausted"


class ConnectionLost(TransientError):
    """The server went away mid-migration; it rolled the open transaction back."""

    error = "connection_lost"


class LockLost(TransientError):
    """The session holding the migration lock ended (terminated by someone, or its network
    went away): the runner stops before committing anything more."""

    error = "lock_lost"


class SessionEndedByMigration(RunnerError):
    """The connection was ended by pg_terminate_backend while a migration that calls it ran:
    retrying would end the same way, so this is not the transient ConnectionLost."""

    exit_code = EXIT_MIGRATION_FAILED
    error = "session_ended_by_migration"


class IncompleteMigration(RunnerError):
    """A no-transaction migration stopped part-way; re-running it blindly is unsafe."""

    exit_code = EXIT_MIGRATION_FAILED
    error = "incomplete_migration"


class InvalidIndex(RunnerError):
    """A concurrent index build left, or skipped, an INVALID index: never recorded as applied."""

    exit_code = EXIT_MIGRATION_FAILED
    error = "invalid_index"


class Interrupted(RunnerError):
    error = "interrupted"

    def __init__(self, signum: int, message: str, hint: Optional[str] = None):
        super().__init__(message, hint)
        self.signum = signum

    @property
    def exit_code(self) -> int:  # type: ignore[override]
        return 128 + self.signum


class MigrationFailed(RunnerError):
    """A statement of a migration failed on the server; the migration was rolled back."""

    exit_code = EXIT_MIGRATION_FAILED
    error = "migration_failed"

    def __init__(
        self,
        *,
        file: str,
        statement_number: int,
        statement_count: int,
        line: Optional[int],
        sqlstate: Optional[str],
        server_message: str,
        detail: Optional[str] = None,
        hint: Optional[str] = None,
        context: Optional[str] = None,
        statement: str = "",
        rolled_back: bool = True,
        outcome: Optional[str] = None,
        at_commit: bool = False,
        left_behind: tuple[str, ...] = (),
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
        self.at_commit = at_commit
        self.left_behind = left_behind
        self.outcome = outcome or (
            "the migration was rolled back; the database is as it was before it"
            if rolled_back
            else "this no-transaction migration stopped part-way; see `python -m runner status`"
        )
        super().__init__(self._render())

    def _render(self) -> str:
        if self.statement_number:
            at = f"at statement {self.statement_number} of {self.statement_count} ({self.file}:{self.line})"
        elif self.at_commit:
            at = (f"at COMMIT, after its {self.statement_count} statement{'' if self.statement_count == 1 else 's'} "
                  "ran (a deferred constraint or trigger, or a serialization check)")
        else:
            at = "before its first statement ran (while opening its transaction)"
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
        lines.extend(f"  it left {what}" for what in self.left_behind)
        lines.append(f"  {self.outcome}")
        return "\n".join(lines)


def statement_excerpt(statement: str, max_lines: int = 5) -> list[str]:
    lines = statement.strip().splitlines()
    if len(lines) > max_lines:
        return lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"]
    return lines
