"""How `E2E_WORKERS=N make e2e` shares the tier's scenarios among its side-by-side nodes
(tests/e2e/conftest.py): every scenario runs on exactly one worker, scenarios that share a stack
stay on one worker, and scenarios that each build their own state spread out."""

from __future__ import annotations

from types import SimpleNamespace

from tests.e2e import conftest as e2e_conftest
from tests.e2e import test_cluster_failures, test_operations


def scenario(module, name: str):
    return SimpleNamespace(module=module, originalname=name)


def scenarios_of(module) -> list:
    return [scenario(module, name) for name in dir(module) if name.startswith("test_")]


def workers_of(items: list, workers: int) -> list[int]:
    given = e2e_conftest.shares(sorted({e2e_conftest.part_of(item) for item in items}), workers)
    return [given[e2e_conftest.part_of(item)] for item in items]


def test_scenarios_sharing_a_stack_run_on_one_worker():
    failures = scenarios_of(test_cluster_failures)
    items = failures + scenarios_of(test_operations)

    given = workers_of(items, 2)

    assert len(set(given[:len(failures)])) == 1


def test_scenarios_that_build_their_own_state_spread_over_the_workers():
    operations = scenarios_of(test_operations)

    given = workers_of(operations, 2)

    assert sorted(set(given)) == [1, 2]
    assert abs(given.count(1) - given.count(2)) <= 1

