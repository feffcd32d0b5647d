"""Mutation testing of a named set of behaviours: break each once, and see a test go red.

    make mutation                       # all, a few minutes
    .venv/bin/python -m tests.mutation scanner-nesting executor-same-transaction

Each mutation is one small edit of the code that a user relies on, with the tests that
should notice it. A mutation that no test notices is a gap in the suite. The score and
the survivors are printed; README ("Mutation testing") records the last score.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]


MUTATIONS = (
    Mutation("executor-same-transaction", "runner/executor.py",
             'suffix = f"\\n;\\n{record}; COMMIT; {history.RESET_SESSION}"',
             'suffix = f"\\n;\\nCOMMIT; {record}; {history.RESET_SESSION}"',
             ("tests/test_runner_apply.py",)),
    Mutation("executor-retries-lock-timeouts", "runner/executor.py",
             "RETRIED = {codes.LOCK_NOT_AVAILABLE, codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}",
             "RETRIED = {codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}",
             ("tests/test_runner_concurrency.py",)),
    Mutation("executor-error-position", "runner/executor.py",
             "body = position - 1 - failed.shift if position", "body = position - 1 if position",
             ("tests/test_runner_apply.py", "tests/test_runner_statements.py")),
    Mutation("executor-no-transaction-retry", "runner/executor.py",
             "                if exc.pgcode not in RETRIED:\n                    raise failure from None",
             "                if True:\n                    raise failure from None",
             ("tests/test_runner_no_transaction.py",)),
    Mutation("lock-taken", "runner/lock.py",
             "            if cursor.fetchone()[0]:\n                return",
             "            if cursor.fetchone()[0] or True:\n                return",
             ("tests/test_runner_concurrency.py",)),
    Mutation("scanner-nesting", "runner/scanner.py",
             '        if m.group() == "/*":\n            depth += 1', '        if m.group() == "/*":\n            pass',
             ("tests/test_runner_statements.py",)),
    Mutation("scanner-escape-continuation", "runner/scanner.py",
             "        more = _QUOTE_CONTINUE.match(text, pos)", "        more = None",
             ("tests/test_runner_statements.py",)),
    Mutation("scanner-dollar-tag", "runner/scanner.py",
             "        found = text.find(tag, pos)", '        found = text.find("$", pos)',
             ("tests/test_runner_statements.py",)),
    Mutation("scanner-begin-atomic", "runner/scanner.py",
             '            if upper == "BEGIN":\n                self.begin_depth += 1',
             '            if upper == "BEGIN":\n                pass',
             ("tests/test_runner_statements.py",)),
    Mutation("statements-copy-stdin", "runner/statements.py",
             "        if span.copy_stdio:", "        if False:",
             ("tests/test_runner_statements.py",)),
    Mutation("statements-transaction-control", "runner/statements.py",
             "        if refused:\n            raise MigrationFileError(", "        if False:\n            raise MigrationFileError(",
             ("tests/test_runner_statements.py",)),
    Mutation("statements-segments-verified", "runner/statements.py",
             "            if hashlib.sha256(raw).digest() != span.digest:", "            if False:",
             ("tests/test_runner_reading.py",)),
    Mutation("statements-reading-settings", "runner/statements.py",
             "                if value.strip(\"'\").lower() not in _UNCHANGED[setting]:", "                if False:",
             ("tests/test_runner_reading.py",)),
    Mutation("executor-reading-settings", "runner/executor.py",
             "            if before != after:", "            if False:",
             ("tests/test_runner_reading.py",)),
    Mutation("statements-checksum-of-what-ran", "runner/executor.py",
             "record = self.tracking.record_sql(cursor, migration.name, script.checksum, script.count)",
             "record = self.tracking.record_sql(cursor, migration.name, migration.checksum, script.count)",
             ("tests/test_runner_reading.py",)),
    Mutation("connection-refusals-fail-at-once", "runner/connection.py",
             "            if _REFUSED.search(reason):", "            if False:",
             ("tests/test_runner_connection.py",)),
    Mutation("connection-malformed-url", "runner/connection.py",
             '        if "@" in tail or authority.count("@") > 1 or _PERCENT.search(userinfo):',
             "        if False:",
             ("tests/test_runner_connection.py",)),
    Mutation("connection-idle-timeout", "runner/connection.py",
             '        f"-c idle_in_transaction_session_timeout={idle_in_transaction_timeout}"', '        ""',
             ("tests/test_runner_faults.py::test_a_frozen_runner_loses_its_session_and_locks_after_the_idle_timeout",)),
    Mutation("history-old-table-read-only", "runner/history.py",
             'select = [sql.Identifier(c) if c in present else sql.SQL("NULL") for c in wanted]',
             "select = [sql.Identifier(c) for c in wanted]",
             ("tests/test_runner_history.py",)),
    Mutation("history-login-role", "runner/history.py",
             'RESET_SESSION = "SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; RESET ALL"',
             'RESET_SESSION = "RESET ALL"',
             ("tests/test_runner_apply.py",)),
    Mutation("status-renames", "runner/status.py",
             "    gone = {row.checksum: row for row in result.missing if row.checksum}", "    gone = {}",
             ("tests/test_runner_history.py",)),
    Mutation("discovery-dangling-links", "runner/discovery.py",
             "        if entry.is_symlink():", "        if False:",
             ("tests/test_runner_discovery.py",)),
    Mutation("discovery-numeric-order", "runner/discovery.py",
             "    return sorted(migrations, key=lambda m: m.order)", "    return sorted(migrations, key=lambda m: m.name)",
             ("tests/test_runner_discovery.py",)),
    Mutation("run-every-problem-named", "runner/run.py",
             "            problems.append(str(exc).replace(\"\\n\", \"\\n    \"))", "            raise",
             ("tests/test_runner_statements.py",)),
    Mutation("waiting-blockers", "runner/waiting.py",
             "            if found:\n                self.blockers = found", "            if False:\n                pass",
             ("tests/test_runner_concurrency.py",)),
    Mutation("output-json-warnings", "runner/cli.py",
             "        reporter.capture_warnings()", "        pass",
             ("tests/test_runner_cli.py",)),
    Mutation("web-app-replicas-left-to-hpa", "components/web_app.py",
             "replicas=None if w.autoscaling.enabled else w.replicas", "replicas=w.replicas",
             ("tests/test_program_workloads.py",)),
    Mutation("migrations-backend-image-trigger", "components/migrations.py",
             '"ideaforge.ai/backend-image": settings.images.backend}', "}",
             ("tests/test_program_migration_job.py",)),
    Mutation("migrations-runner-trigger", "components/migrations.py",
             '            trigger["ideaforge.ai/runner-sha256"] = args.runner.checksum', "            pass",
             ("tests/test_program_migration_job.py",)),
    Mutation("credentials-from-configmap", "components/credentials.py",
             "            if value is not None:\n                env.append(EnvVarArgs(name=variable, value=str(value)))",
             '            if True:\n                env.append(EnvVarArgs(name=variable, value=str(value or "postgres")))',
             ("tests/test_program_migration_job.py",)),
    Mutation("jobs-replaced-not-updated", "components/jobs.py",
             "        delete_before_replace=True,", "        delete_before_replace=False,",
             ("tests/test_program_migration_job.py", "tests/test_program_chain.py")),
    Mutation("prerequisites-configmap-keys", "components/prerequisites.py",
             "    if missing:\n        raise MissingKeys(", "    if False:\n        raise MissingKeys(",
             ("tests/test_program_chain.py",)),
    Mutation("settings-typos", "components/settings.py",
             "            if name not in default:", "            if False:",
             ("tests/test_program_settings.py",)),
    Mutation("settings-moved-keys", "components/settings.py",
             "        if value is None:\n            continue\n        commands",
             "        if True:\n            continue\n        commands",
             ("tests/test_program_settings.py",)),
    Mutation("readiness-never-restarts", "components/readiness.py",
             '                        restart_policy="Never",', '                        restart_policy="OnFailure",',
             ("tests/test_program_chain.py",)),
    Mutation("security-frontend-capabilities", "components/security.py",
             "add=list(security.add) or None", "add=None",
             ("tests/test_program_workloads.py",)),
    Mutation("deploy-reads-are-not-changes", "deploytool/cli.py",
             'if op not in ("same", "read")', 'if op != "same"',
             ("tests/test_deploy_script.py",)),
)


def run(mutation: Mutation) -> tuple[bool, float]:
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.original) != 1:
        raise SystemExit(f"{mutation.name}: the code to mutate is not in {mutation.file} exactly once; update tests/mutation.py")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutation.original, mutation.mutated))
        result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-m", "not e2e",
                                 *mutation.tests], cwd=ROOT, capture_output=True, text=True, timeout=900)
    finally:
        path.write_text(original)
    return result.returncode != 0, time.monotonic() - started


def main(names: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not names or m.name in names]
    killed = 0
    for mutation in chosen:
        caught, seconds = run(mutation)
        killed += caught
        print(f"{'killed  ' if caught else 'SURVIVED'}  {mutation.name:40} {seconds:5.0f} s", flush=True)
    print(f"\nmutation score: {killed}/{len(chosen)} = {100 * killed / len(chosen):.0f}% of the named set")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
