"""Mutation testing of a named set of behaviours: break each once, and see a test go red.

    make mutation                       # all, a few minutes
    .venv/bin/python -m tests.mutation scanner-nesting executor-same-transaction
    .venv/bin/python -m tests.mutation --e2e            # and the end-to-end ones (as root, e2e lock)

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
    # Noticed only by the end-to-end tier (a real kubelet, the real CLI): run under the e2e lock
    # in e2e/isolate.sh, several minutes each, and only when named or with --e2e.
    e2e: bool = False


MUTATIONS = (
    Mutation("executor-same-transaction", "runner/executor.py",
             'return (f"\\n;\\n{record};\\n"',
             'return (f"\\n;\\nCOMMIT; BEGIN; {record};\\n"',
             ("tests/test_runner_tracking_writes.py",)),
    Mutation("executor-retries-lock-timeouts", "runner/executor.py",
             "RETRIED = {codes.LOCK_NOT_AVAILABLE, codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}",
             "RETRIED = {codes.DEADLOCK_DETECTED, codes.SERIALIZATION_FAILURE}",
             ("tests/test_runner_concurrency.py",)),
    Mutation("executor-error-position", "runner/executor.py",
             "relative = position - 1 - shift if position else None",
             "relative = position - 1 if position else None",
             ("tests/test_runner_apply.py", "tests/test_runner_statements.py")),
    Mutation("executor-statement-markers", "runner/executor.py",
             'yield False, (b"" if raw[end - 1:end] == b";" else b"\\n;") + _marker(number, held).encode()',
             'yield False, (b"" if raw[end - 1:end] == b";" else b"\\n;")',
             ("tests/test_runner_failure_location.py",)),
    Mutation("executor-earlier-queries-completed", "runner/executor.py",
             "        completed = max(completed or 0, segment.first_number - 1)",
             "        completed = completed or 0",
             ("tests/test_runner_failure_location.py",)),
    Mutation("executor-lock-session-apart", "runner/run.py",
             "executor = Executor(session.migrations(), session.connection, tracking, stop,",
             "executor = Executor(session.connection, session.connection, tracking, stop,",
             ("tests/test_runner_lock_holding.py",)),
    Mutation("executor-lock-checked-before-commit", "runner/executor.py",
             "f\"SELECT CAST(CASE WHEN NOT {self.lock_held} THEN",
             "f\"SELECT CAST(CASE WHEN false THEN",
             ("tests/test_runner_lock_holding.py::test_a_lost_lock_session_stops_the_run_before_the_running_migration_commits",)),
    Mutation("executor-row-read-back", "runner/executor.py",
             "WHEN NOT ({landed}) \"",
             "WHEN false AND ({landed}) \"",
             ("tests/test_runner_tracking_writes.py",)),
    Mutation("history-writes-read-back", "runner/history.py",
             "        if not landed:\n            raise tracking_not_landed(self, what)",
             "        if False:\n            raise tracking_not_landed(self, what)",
             ("tests/test_runner_tracking_writes.py",)),
    Mutation("executor-transaction-blocks", "runner/executor.py",
             "                        if self._in_block():\n                            block = block or",
             "                        if False:\n                            block = block or",
             ("tests/test_runner_transaction_blocks.py",)),
    Mutation("executor-invalid-leftovers-dropped", "runner/executor.py",
             "                if before is not None:\n                    self._drop_leftovers(cursor, before, undone)",
             "                if False:\n                    self._drop_leftovers(cursor, before, undone)",
             ("tests/test_runner_concurrent_index.py",)),
    Mutation("executor-skipped-invalid-index", "runner/executor.py",
             "        if found is None or found[1]:\n            return",
             "        if True:\n            return",
             ("tests/test_runner_concurrent_index.py",)),
    Mutation("executor-session-reset", "runner/history.py",
             '"CLOSE ALL; SET SESSION AUTHORIZATION DEFAULT; RESET ALL; DEALLOCATE ALL; UNLISTEN *; "',
             '"SET SESSION AUTHORIZATION DEFAULT; RESET ALL; "',
             ("tests/test_runner_session_reset.py",)),
    Mutation("executor-no-transaction-retry", "runner/executor.py",
             "                if exc.pgcode not in RETRIED or not undone.all_dropped:\n                    raise failure from None",
             "                if True:\n                    raise failure from None",
             ("tests/test_runner_no_transaction.py",)),
    Mutation("lock-taken", "runner/lock.py",
             "            if cursor.fetchone()[0]:\n                token = secrets.randbits(31)",
             "            if cursor.fetchone()[0] or True:\n                token = secrets.randbits(31)",
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
    Mutation("connection-refusals-fail-at-once", "runner/connection.py",
             "            if refused is not None:\n                raise refused from None",
             "            if False:\n                raise refused from None",
             ("tests/test_runner_connection.py",)),
    Mutation("connection-malformed-url", "runner/connection.py",
             '        if "@" in tail or authority.count("@") > 1 or _PERCENT.search(userinfo):',
             "        if False:",
             ("tests/test_runner_connection.py",)),
    Mutation("connection-idle-timeout", "runner/connection.py",
             'RUNNER_SETTINGS = ("lock_timeout", "statement_timeout", "idle_in_transaction_session_timeout")',
             'RUNNER_SETTINGS = ("lock_timeout", "statement_timeout")',
             ("tests/test_runner_faults.py::test_a_frozen_runner_loses_its_session_and_locks_after_the_idle_timeout",)),
    Mutation("history-old-table-read-only", "runner/history.py",
             'select = [sql.Identifier(c) if c in present else sql.SQL("NULL") for c in wanted]',
             "select = [sql.Identifier(c) for c in wanted]",
             ("tests/test_runner_history.py",)),
    Mutation("history-login-role", "runner/history.py",
             '"SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; SELECT pg_catalog.set_config(\'search_path\', "',
             '"SELECT pg_catalog.set_config(\'search_path\', "',
             ("tests/test_runner_apply.py",)),
    Mutation("history-search-path-ignored", "runner/history.py",
             "'pg_catalog, pg_temp', true){also}", "pg_catalog.current_setting('search_path'), true){also}",
             ("tests/test_runner_history_schema.py",)),
    Mutation("history-two-tables-refused", "runner/history.py",
             "        if len(schemas) > 1:\n            tables", "        if False:\n            tables",
             ("tests/test_runner_history_schema.py",)),
    Mutation("history-lock-session-search-path", "runner/connection.py",
             'return f"{options} -c search_path=pg_catalog,pg_temp"', "return options",
             ("tests/test_runner_history_schema.py",)),
    Mutation("connection-lock-session-search-path-last", "runner/connection.py",
             'return f"{options} -c search_path=pg_catalog,pg_temp"',
             'return f"-c search_path=pg_catalog,pg_temp {options}"',
             ("tests/test_runner_connection.py::test_the_users_search_path_decides_the_migrations_names_but_never_the_runners",)),
    Mutation("connection-two-sessions-one-server", "runner/connection.py",
             "    if not same:\n        raise UsageError(", "    if False:\n        raise UsageError(",
             ("tests/test_runner_reports.py::test_the_two_sessions_must_reach_the_same_server",)),
    Mutation("executor-lock-session-ended-by-migration", "runner/executor.py",
             '            if _ends_sessions(script):\n                return _lock_session_ended_by(migration, "it was',
             '            if False:\n                return _lock_session_ended_by(migration, "it was',
             ("tests/test_runner_reports.py::test_a_migration_that_terminates_the_lock_session_is_not_retried_forever",)),
    Mutation("executor-encoding-locator-with-markers", "runner/executor.py",
             "            offset = characters.offset_in(str(exc.diag.message_primary), segment.text)",
             "            offset = None",
             ("tests/test_runner_encodings.py",)),
    Mutation("status-out-of-order-counts-missing-files", "runner/status.py",
             "for row in rows.values() if row.status != history.INCOMPLETE",
             "for row in rows.values() if row.name in matched and row.status != history.INCOMPLETE",
             ("tests/test_runner_out_of_order.py",)),
    Mutation("run-out-of-order-refused", "runner/run.py",
             "    if comparison.out_of_order and allow_out_of_order is False:",
             "    if False:",
             ("tests/test_runner_out_of_order.py",)),
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
             '"ideaforge.ai/backend-image": settings.images.backend,', "",
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
    Mutation("prerequisites-secret-keys", "components/prerequisites.py",
             "    if missing:\n", "    if False:\n",
             ("tests/test_program_app_env.py",)),
    Mutation("app-env-optional-flags", "components/app_env.py",
             "key=var.name, optional=True if var.optional else None))))\n            config_keys",
             "key=var.name))))\n            config_keys",
             ("tests/test_program_app_env.py",)),
    Mutation("credentials-password-key", "components/credentials.py",
             "SecretKeySelectorArgs(name=db.password_secret, key=db.password_key)",
             'SecretKeySelectorArgs(name=db.password_secret, key="POSTGRES_PASSWORD")',
             ("tests/test_program_app_env.py",)),
    Mutation("app-env-secret-version-rolls", "components/app_env.py",
             "    if found.reads_secret and secret_version is not None:", "    if False:",
             ("tests/test_program_app_env.py",)),
    Mutation("app-config-rolls-only-readers", "components/app_env.py",
             "config_checksum(settings.app.config_data, found.config_keys)",
             "config_checksum(settings.app.config_data, settings.app.config_data)",
             ("tests/test_program_app_config.py",)),
    Mutation("app-config-new-database-runs-jobs", "__main__.py",
             "    triggers=jobs_config, snapshot=", "    triggers={}, snapshot=",
             ("tests/test_program_app_config.py",)),
    Mutation("app-env-each-workload-its-own-list", "__main__.py",
             "frontend_env = environment(settings.frontend,", "frontend_env = environment(settings.backend,",
             ("tests/test_program_app_env.py",)),
    Mutation("app-config-written-from-stack", "components/app_config.py",
             "            data=dict(app.config_data),", "            data={},",
             ("tests/test_program_app_config.py",)),
    Mutation("app-config-required-keys-at-preview", "components/settings.py",
             "        if key not in app.config_data:", "        if False:",
             ("tests/test_program_app_config.py",)),
    Mutation("ingress-after-services", "__main__.py",
             "IngressArgs(namespace, settings, depends_on=[backend.service, frontend.service])",
             "IngressArgs(namespace, settings, depends_on=[])",
             ("tests/test_program_ingress.py",)),
    Mutation("ingress-skip-await", "components/ingress.py",
             "**({} if waits else SKIP_AWAIT)}", "}",
             ("tests/test_program_ingress.py",)),
    Mutation("readiness-ttl-from-stack", "__main__.py",
             "jobs_ttl = settings.migrations.ttl_seconds_after_finished", "jobs_ttl = 3600",
             ("tests/test_program_workloads.py",)),
    Mutation("init-wait-gives-up", "components/readiness.py",
             'if [ "${ON_TIMEOUT:-fail}" = start ]; then', 'if [ "${ON_TIMEOUT:-fail}" = never ]; then',
             ("tests/test_program_workloads.py",)),
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
    Mutation("runner-launch-checksum", "components/runner_launch.py",
             "if actual != expected:", "if False:",
             ("tests/test_job_contract.py",)),
    Mutation("retention-live-app", "components/retention.py",
             "    if not retains_live_app(settings):\n        return", "    return",
             ("tests/test_program_retention.py",)),
    Mutation("one-off-jobs-read-only", "deploytool/runner_job.py",
             '    wanted = {**env, "PGOPTIONS": READ_ONLY}', "    wanted = dict(env)",
             ("tests/test_job_contract.py",)),
    Mutation("preview-writes-the-stack-file", "deploytool/cli.py",
             "    with stack_file.changed_copy(run.path, {**run.tags(), **run.new_context}) as copy:\n"
             "        outcome = pulumi_stack.run(run.stack, \"preview\"",
             "    _write(run, {**run.tags(), **run.new_context})\n"
             "    with stack_file.changed_copy(run.path, {}) as copy:\n"
             "        outcome = pulumi_stack.run(run.stack, \"preview\"",
             ("tests/test_deploy_script.py",)),
    Mutation("context-mismatch-accepted", "deploytool/cli.py",
             "    if given and named and given != named:", "    if False:",
             ("tests/test_deploy_script.py",)),
    Mutation("take-over-not-re-entrant", "deploytool/cli.py",
             "        if not outside:\n            run.say(f\"nothing left", "        if True:\n            run.say(f\"nothing left",
             ("tests/test_deploy_take_over.py",)),
    Mutation("pre-flight-ignored", "deploytool/cli.py",
             "    if preflight.failed(findings):", "    if False:",
             ("tests/test_deploy_take_over.py",)),
    Mutation("hand-back-without-retain-check", "deploytool/cli.py",
             "    if unsafe:\n        raise UsageError(\"these would be deleted", "    if False:\n        raise UsageError(\"these would be deleted",
             ("tests/test_deploy_take_over.py",)),
    Mutation("kubectl-fields-kept", "deploytool/cluster.py",
             "    if not handed:\n        return None", "    if True:\n        return None",
             ("tests/test_deploy_take_over.py",)),
    Mutation("tag-deploy-runs-another-commit", ".github/workflows/deploy.yml",
             "ref: ${{ needs.pin.outputs.sha || github.sha }}", "ref: ${{ github.sha }}",
             ("tests/test_workflows.py",)),
    Mutation("dev-stack-older-tag", "Pulumi.dev.yaml",
             "ideaforge-ai:backendImageTag: 24f45fd", "ideaforge-ai:backendImageTag: 672425b",
             ("tests/test_stack_files.py",)),
    Mutation("preview-credential-writes", ".github/access/preview.yaml",
             "- expression: request.dryRun == true", "- expression: \"true\"",
             ("tests/test_access.py",)),
    Mutation("migrate-writes-the-stack-file", "deploytool/cli.py",
             "    with stack_file.changed_copy(run.path, {**run.tags(), **run.new_context}) as copy:\n"
             "        with run.watch_job_pods():\n"
             "            outcome = pulumi_stack.run(run.stack, \"up\", False",
             "    _write(run, {**run.tags(), **run.new_context})\n"
             "    with stack_file.changed_copy(run.path, {}) as copy:\n"
             "        with run.watch_job_pods():\n"
             "            outcome = pulumi_stack.run(run.stack, \"up\", False",
             ("tests/test_deploy_take_over.py",)),
    Mutation("migrate-updates-the-backend", "deploytool/cli.py",
             "config_file=copy, targets=targets,", "config_file=copy, targets=None,",
             ("tests/test_deploy_take_over.py",)),
    Mutation("pre-flight-skips-the-object-check", "deploytool/preflight.py",
             "CHECKS: list[Check] = [database_history, recorded_objects,", "CHECKS: list[Check] = [database_history,",
             ("tests/test_deploy_take_over.py",)),
    Mutation("migrations-wait-for-readiness", "__main__.py",
             "wait_for=[postgres_ready.job, redis_ready.job],", "wait_for=[],",
             ("tests/e2e/test_deploy.py::test_1_preview_then_up_on_an_empty_namespace_runs_the_chain_in_order",),
             e2e=True),
    Mutation("job-report-pod-log", "deploytool/job_report.py",
             '    lines.extend(f"  {line}" for line in (log or "").rstrip().splitlines())\n    return lines',
             "    return lines",
             ("tests/e2e/test_deploy.py::test_5_a_failing_migration_stops_the_deploy_with_the_runners_message_and_leaves"
              "_the_backend",), e2e=True),
    Mutation("migration-job-restart-never", "components/migrations.py",
             'restart_policy="Never",', 'restart_policy="OnFailure",',
             ("tests/e2e/test_deploy.py::test_5_a_failing_migration_stops_the_deploy_with_the_runners_message_and_leaves"
              "_the_backend",), e2e=True),
)


def run(mutation: Mutation) -> tuple[bool, float]:
    path = ROOT / mutation.file
    original = path.read_text()
    if original.count(mutation.original) != 1:
        raise SystemExit(f"{mutation.name}: the code to mutate is not in {mutation.file} exactly once; update tests/mutation.py")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutation.original, mutation.mutated))
        pytest = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
        if mutation.e2e:
            command = ["flock", "/tmp/e2e.lock", str(ROOT / "e2e" / "isolate.sh"), *pytest, "-m", "e2e", *mutation.tests]
        else:
            command = [*pytest, "-m", "not e2e", *mutation.tests]
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                                timeout=3600 if mutation.e2e else 900)
    finally:
        path.write_text(original)
    return result.returncode != 0, time.monotonic() - started


def main(names: list[str]) -> int:
    with_e2e = "--e2e" in names
    names = [n for n in names if n != "--e2e"]
    known = {m.name for m in MUTATIONS}
    unknown = [n for n in names if n not in known]
    if unknown:
        print(__doc__.strip() + "\n\nmutations:\n" + "\n".join(f"  {m.name}" for m in MUTATIONS), file=sys.stderr)
        if unknown != ["--help"] and unknown != ["-h"]:
            print(f"\nno such mutation: {', '.join(unknown)}", file=sys.stderr)
            return 2
        return 0
    chosen = [m for m in MUTATIONS if m.name in names or (not names and (with_e2e or not m.e2e))]
    killed = 0
    for mutation in chosen:
        caught, seconds = run(mutation)
        killed += caught
        print(f"{'killed  ' if caught else 'SURVIVED'}  {mutation.name:40} {seconds:5.0f} s", flush=True)
    print(f"\nmutation score: {killed}/{len(chosen)} = {100 * killed / len(chosen):.0f}% of the named set")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
