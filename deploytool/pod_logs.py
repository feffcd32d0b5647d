"""The chain's Job pods' logs, read while a deploy runs.

A Job past its activeDeadlineSeconds has its running pod deleted by the Job controller, and
the Failed condition is set only once that pod is gone: by the time the deploy fails, the
pod and its log are no longer in the cluster. So while `up` runs, the last lines of each Job
pod's log are read every few seconds and kept; the failure report shows them for pods that
are gone (job_report.py)."""

from __future__ import annotations

import threading
from typing import Iterable, Optional

from deploytool.job_report import JOBS, LOG_LINES, READ_ERRORS


# What the kubelet answers, as the log itself, while it cannot read a container's log file (a
# container being started or removed; seen on a loaded node as the Job's deadline ended it):
# it must not replace the lines read before.
_NO_LOG = "unable to retrieve container logs for "


class PodLogs:
    """Keeps {job name: {pod: (the Job's uid, last log read)}} while it runs (a `with` block
    around the deploy)."""

    def __init__(self, core, namespace: str, jobs: Iterable[str] = JOBS, every: float = 2.0):
        self.core, self.namespace, self.jobs, self.every = core, namespace, tuple(jobs), every
        self.kept: dict[str, dict[str, tuple[Optional[str], str]]] = {job: {} for job in self.jobs}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-logs", daemon=True)

    def __enter__(self) -> "PodLogs":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            for job in self.jobs:
                try:
                    self.read(job)
                except READ_ERRORS:  # a missed read only makes the report shorter
                    pass

    def read(self, job: str) -> None:
        pods = self.core.list_namespaced_pod(self.namespace, label_selector=f"job-name={job}").items
        for pod in pods:
            if pod.status.phase == "Pending":
                continue
            try:
                log = self.core.read_namespaced_pod_log(pod.metadata.name, self.namespace,
                                                        container=pod.spec.containers[0].name, tail_lines=LOG_LINES)
            except READ_ERRORS:
                continue
            if log and not log.startswith(_NO_LOG):
                # The Job it belongs to: the deploy may replace the Job, and the earlier Job's
                # pods (deleted with it) are no attempt of the one that failed.
                owner = next((o.uid for o in pod.metadata.owner_references or [] if o.kind == "Job"), None)
                self.kept[job][pod.metadata.name] = (owner, log)
