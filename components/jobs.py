"""How Pulumi manages a Job that must run to completion (readiness checks, migrations).

Every change replaces the Job (`replace_on_changes=["*"]`) instead of updating it in
place: once ttlSecondsAfterFinished has deleted a finished Job, an in-place update fails
("unable to get cluster state"), and a Job's pod template is immutable anyway. A fixed
metadata.name needs `delete_before_replace`. `pulumi.com/replaceUnready` makes the next
`up` replace a Job that failed, instead of waiting on it again. Pulumi waits a margin
beyond the Job's own activeDeadlineSeconds, so the Job's DeadlineExceeded, with its
logs, is what the user sees rather than Pulumi's await timeout.
"""

from __future__ import annotations

from typing import Sequence

import pulumi

REPLACE_UNREADY = {"pulumi.com/replaceUnready": "true"}
AWAIT_MARGIN_SECONDS = 120


def run_to_completion(parent: pulumi.Resource, depends_on: Sequence[pulumi.Resource],
                      deadline_seconds: int) -> pulumi.ResourceOptions:
    timeout = f"{deadline_seconds + AWAIT_MARGIN_SECONDS}s"
    return pulumi.ResourceOptions(
        parent=parent,
        depends_on=list(depends_on),
        delete_before_replace=True,
        replace_on_changes=["*"],
        custom_timeouts=pulumi.CustomTimeouts(create=timeout, update=timeout),
    )
