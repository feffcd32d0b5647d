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
    ops: tuple[str, ...]  # every step the engine took on it (a replacement takes several)
    started: int  # the first step's start
    ended: int  # the last step's end
    seconds: float = 0.0  # wall time from the first step's start to the last one's end (1 s resolution)


def read(path: Path) -> dict[tuple[str, str], Step]:
    first: dict[str, int] = {}
    last: dict[str, int] = {}
    ops: dict[str, list[str]] = {}
    types: dict[str, str] = {}
    began: dict[str, int] = {}
    finished: dict[str, int] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        event = json.loads(line)
        sequence = event["sequence"]
        if "resourcePreEvent" in event:
            metadata = event["resourcePreEvent"]["metadata"]
            first.setdefault(metadata["urn"], sequence)
            began.setdefault(metadata["urn"], event.get("timestamp", 0))
            ops.setdefault(metadata["urn"], []).append(metadata["op"])
            types[metadata["urn"]] = metadata["type"]
        elif "resOutputsEvent" in event:
            last[event["resOutputsEvent"]["metadata"]["urn"]] = sequence
            finished[event["resOutputsEvent"]["metadata"]["urn"]] = event.get("timestamp", 0)
    return {(types[urn], urn.rsplit("::", 1)[1]): Step(types[urn], urn.rsplit("::", 1)[1], tuple(ops[urn]),
                                                       first[urn], last[urn], finished[urn] - began[urn])
            for urn in first if urn in last}


JOB = "kubernetes:batch/v1:Job"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SERVICE = "kubernetes:core/v1:Service"
INGRESS = "kubernetes:networking.k8s.io/v1:Ingress"


def ended_before_started(steps: dict, first: tuple[str, str], then: tuple[str, str]) -> bool:
    return steps[first].ended < steps[then].started
