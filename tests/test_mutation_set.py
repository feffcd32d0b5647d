"""`make mutation` breaks each named behaviour by replacing a piece of code: that piece must be in
its file exactly once, or the run stops at it (five had gone stale as the runner changed)."""

from __future__ import annotations

import pytest

from tests.mutation import MUTATIONS, ROOT


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_finds_the_code_it_breaks_exactly_once(mutation):
    assert (ROOT / mutation.file).read_text().count(mutation.original) == 1, (
        f"{mutation.name}: update its code in tests/mutation.py to what {mutation.file} holds now")


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name)
def test_each_mutation_names_tests_that_exist(mutation):
    for test in mutation.tests:
        assert (ROOT / test.split("::", 1)[0]).is_file(), test
