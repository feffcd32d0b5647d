"""The Pulumi engine's own record of an update (`pulumi up --event-log FILE`): for each resource,
when its operation started (resourcePreEvent) and when it ended (resOutputsEvent), as
positions in the engine's event sequence. Order is read from there, not from timestamps."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Step:
    type: str  # e.g. kubernetes:batch/v1:Job
    name: str  # the resource's name in the program
    op: str
    started: int
    ended: int


def read(path: Path) -> dict[tuple[str, str], Step]:
    starts: dict[str, tuple[int, dict]] = {}
    steps: dict[tuple[str, str], Step] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        sequence = event["sequence"]
        for kind in ("resourcePreEvent", "resOutputsEvent"):
            if kind not in event:
                continue
            metadata = event[kind]["metadata"]
            urn = metadata["urn"]
            if kind == "resourcePreEvent":
                starts[urn] = (sequence, metadata)
            elif urn in starts:
                started, pre = starts.pop(urn)
                key = (metadata["type"], urn.rsplit("::", 1)[1])
                steps[key] = Step(metadata["type"], key[1], pre["op"], started, sequence)
    return steps


JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def ended_before_started(steps: dict, first: tuple[str, str], then: tuple[str, str]) -> bool:
    return steps[first].ended < steps[then].started
