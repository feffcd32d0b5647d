"""Run the real Pulumi program (__main__.py and its components) under Pulumi's mocks.

Every Kubernetes object the program registers is validated against the real schema
(kubernetes-validate, strict) as it is registered; the resource options the engine
would receive (dependencies, deleteBeforeReplace, customTimeouts, replaceOnChanges)
are recorded from the RegisterResource request.
"""

from __future__ import annotations

import asyncio
import json
import runpy
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import kubernetes_validate
import yaml
import pulumi
from google.protobuf import json_format
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor, Mocks
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "ideaforge-ai"
KUBERNETES_VERSION = "1.33.0"



def stack_config(stack: str) -> dict[str, Any]:
    """The plain config of a checked-in stack file, keys without the project prefix."""
    data = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return {key.split(":", 1)[1]: value for key, value in data["config"].items() if key.startswith(f"{PROJECT}:")}


DEV_CONFIG = stack_config("dev")


@dataclass
class Registered:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict
    raw_inputs: dict  # the wire form, secrets still wrapped
    dependencies: list[str]
    delete_before_replace: bool
    replace_on_changes: list[str]
    custom_timeouts: dict
    retain_on_delete: bool = False

    @property
    def kind(self) -> str:
        return self.inputs.get("kind", "")

    @property
    def object_name(self) -> str:
        return self.inputs.get("metadata", {}).get("name", self.name)


@dataclass
class Deployment:
    resources: list[Registered] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    secret_outputs: set = field(default_factory=set)
    error: Optional[BaseException] = None
    invalid: list[str] = field(default_factory=list)
    reads: list[tuple[str, str]] = field(default_factory=list)
    missing: set = field(default_factory=set)  # namespace/name of objects the cluster lacks
    existing: dict = field(default_factory=dict)  # namespace/name -> state of objects read from the cluster

    def find(self, kind: str, name: str) -> Registered:
        matches = [r for r in self.resources if r.kind == kind and r.object_name == name]
        assert len(matches) == 1, f"expected one {kind} {name}, found {[(r.kind, r.object_name) for r in self.resources]}"
        return matches[0]

    def of_kind(self, kind: str) -> list[Registered]:
        return [r for r in self.resources if r.kind == kind]

    def by_urn(self, urn: str) -> Registered:
        return next(r for r in self.resources if r.urn == urn)

    def depends_on(self, later: Registered, earlier: Registered) -> bool:
        """True if `later` waits for `earlier`, directly or through other resources."""
        seen, todo = set(), list(later.dependencies)
        while todo:
            urn = todo.pop()
            if urn == earlier.urn:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            registered = next((r for r in self.resources if r.urn == urn), None)
            if registered is not None:  # reads of existing objects depend on nothing
                todo.extend(registered.dependencies)
        return False

    def manifests(self) -> list[dict]:
        return [r.inputs for r in self.resources if r.custom and r.type.startswith("kubernetes:")]


def unwrap_secrets(value: Any) -> Any:
    """The plain value the engine would send to Kubernetes, secret markers removed."""
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return unwrap_secrets(value.get("value"))
        return {k: unwrap_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_secrets(v) for v in value]
    return value


class _Mocks(Mocks):
    def __init__(self, deployment: Deployment):
        self.deployment = deployment

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        if args.resource_id:  # a read of an existing object (`.get`): nothing is sent to create
            self.deployment.reads.append((args.typ, args.resource_id))
            if args.resource_id in self.deployment.missing:
                raise Exception(f"resource '{args.resource_id}' does not exist")
            return args.resource_id, dict(self.deployment.existing.get(args.resource_id, {}))
        if args.typ.startswith("kubernetes:") and args.custom:
            try:
                kubernetes_validate.validate(unwrap_secrets(args.inputs), KUBERNETES_VERSION, strict=True)
            except kubernetes_validate.ValidationError as exc:
                self.deployment.invalid.append(f"{args.typ} {args.name}: {exc.message} at {list(exc.path)}")
        return f"{args.name}-id", dict(args.inputs)

    def call(self, args: pulumi.runtime.MockCallArgs):
        return {}


class _Recorder(MockMonitor):
    def __init__(self, mocks: _Mocks, deployment: Deployment):
        super().__init__(mocks)
        self.deployment = deployment

    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            timeouts = json_format.MessageToDict(request.customTimeouts) if request.HasField("customTimeouts") else {}
            self.deployment.resources.append(Registered(
                type=request.type,
                name=request.name,
                urn=response.urn,
                parent=request.parent,
                custom=request.custom,
                inputs=unwrap_secrets(rpc.deserialize_properties(request.object)),
                raw_inputs=json_format.MessageToDict(request.object),
                dependencies=list(request.dependencies),
                delete_before_replace=request.deleteBeforeReplace,
                replace_on_changes=list(request.replaceOnChanges),
                custom_timeouts=timeouts,
                retain_on_delete=request.retainOnDelete,
            ))
        return response



def _finish_outstanding_rpcs() -> None:
    """A failed program leaves RPCs running on its event loop (the engine would end the
    process). Let them finish, their errors read, so none is reported as never retrieved
    when a later test's run clears the runtime's state."""
    loop = asyncio.get_event_loop()
    pending = asyncio.all_tasks(loop)
    if pending:
        done, still = loop.run_until_complete(asyncio.wait(pending, timeout=10))
        for task in still:
            task.cancel()
        if still:
            loop.run_until_complete(asyncio.gather(*still, return_exceptions=True))
        for task in done:
            if not task.cancelled():
                task.exception()
    # Outputs derived from a failed one (an apply on a missing object's fields) hold its error
    # in futures nothing awaits any more; that error is the program's, reported to the test.
    loop.set_exception_handler(_ignore_unretrieved)
    _close(loop)


def _close(loop) -> None:
    """Close the run's event loop and its executor's threads (each has an event loop of its
    own): left open, every run kept about 18 descriptors, and a few hundred runs took the test
    process past the 1024 that select() accepts."""
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()


def _ignore_unretrieved(loop, context) -> None:
    if not context.get("message", "").endswith("exception was never retrieved"):
        loop.default_exception_handler(context)


def live_app_secret(config: dict[str, Any], resource_version: str = "1") -> dict[str, dict]:
    """The app Secret as the live namespace has it (its keys from the app's files, made-up
    values), keyed by namespace/name as `.get` reads it."""
    from tests import app_files

    name = (config.get("app") or {}).get("secret", "ideaforge-ai-secrets")
    data = {key: "bWFkZS11cA==" for key in app_files.secret_keys()}
    return {f"{config.get('namespace')}/{name}": {"metadata": {"name": name, "resourceVersion": resource_version},
                                                   "type": "Opaque", "data": data}}


def run_program(config: dict[str, Any], secrets: Optional[dict[str, str]] = None, stack: str = "dev",
                preview: bool = False, missing: frozenset = frozenset(),
                existing: Optional[dict[str, dict]] = None) -> Deployment:
    """Run __main__.py with this stack config; returns what it registered (or the error).
    `missing`: namespace/name of existing objects the cluster does not have; `existing`: the
    state of those it has (by default the app Secret as the live namespace has it)."""
    deployment = Deployment(missing=set(missing), existing={**live_app_secret(config), **(existing or {})})

    def run() -> None:
        asyncio.set_event_loop(asyncio.new_event_loop())
        # As pulumi.runtime.test does: forget RPCs and outputs a previous (failed) run left.
        pulumi.runtime.settings.SETTINGS.rpc_manager.clear()
        pulumi.runtime.settings.SETTINGS.outputs.clear()
        mocks = _Mocks(deployment)
        pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=preview,
                                 monitor=_Recorder(mocks, deployment))
        values = {f"{PROJECT}:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in config.items()}
        secret_values = {f"{PROJECT}:{k}": v for k, v in (secrets or {}).items()}
        pulumi.runtime.set_all_config({**values, **secret_values}, list(secret_values))
        try:
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")))
        except BaseException as exc:  # the program's own error, reported to the test
            deployment.error = exc
            _finish_outstanding_rpcs()
            return
        # Under mocks the root stack is finished before the program runs, so exports are
        # read from it directly rather than from a RegisterResourceOutputs call.
        for key, value in pulumi.runtime.settings.get_root_resource().outputs.items():
            output = pulumi.Output.from_input(value)
            deployment.outputs[key] = _sync_await(output.future())
            if _sync_await(output.is_secret()):
                deployment.secret_outputs.add(key)
        _close(asyncio.get_event_loop())

    # A fresh thread gives the program fresh context variables (root stack, config).
    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=120)
    assert not thread.is_alive(), "the program did not finish"
    return deployment


def with_settings(config: dict, **overrides: Any) -> dict:
    """The config with these keys set, as `pulumi config set` would set them: a dotted key is
    `--path` (one field of an object key), None removes a key."""
    config = json.loads(json.dumps(config))
    for key, value in overrides.items():
        *parents, leaf = key.split(".")
        target = config
        for part in parents:
            target = target.setdefault(part, {})
        if value is None:
            target.pop(leaf, None)
        else:
            target[leaf] = value
    return config


def dev(**overrides: Any) -> dict:
    return with_settings(DEV_CONFIG, **overrides)


LOCAL_CONFIG = stack_config("local")
