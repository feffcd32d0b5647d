"""deploytool/stack_file.py: values set line by line (comments and secrets kept), copies for
previews, and what it refuses to edit."""

import pytest
import yaml

from deploytool import stack_file
from deploytool.errors import UsageError

TEXT = """\
# the dev stack
encryptionsalt: v1:abc
config:
  # the tags the namespace runs
  ideaforge-ai:backendImageTag: 24f45fd
  ideaforge-ai:postgresPassword:
    secure: v1:xyz
  ideaforge-ai:ingress:
    frontendHost: app.example.com
"""


@pytest.fixture
def path(tmp_path):
    p = tmp_path / "Pulumi.dev.yaml"
    p.write_text(TEXT)
    return p


def test_a_value_is_set_on_its_own_line_and_everything_else_stays(path):
    stack_file.set_values(path, {"ideaforge-ai:backendImageTag": "1234567", "kubernetes:context": "eks-dev"})
    text = path.read_text()
    assert "  ideaforge-ai:backendImageTag: '1234567'\n" in text  # quoted: it would read as a number
    assert text.replace("  ideaforge-ai:backendImageTag: '1234567'\n", "  ideaforge-ai:backendImageTag: 24f45fd\n") \
        .replace("  kubernetes:context: eks-dev\n", "") == TEXT
    assert stack_file.context(path) == "eks-dev"


def test_a_value_is_removed(path):
    stack_file.set_values(path, {"ideaforge-ai:takeOver": "true"})
    stack_file.set_values(path, {"ideaforge-ai:takeOver": None})
    assert path.read_text() == TEXT


def test_a_secret_or_an_object_is_not_edited(path):
    for key in ("ideaforge-ai:postgresPassword", "ideaforge-ai:ingress"):
        with pytest.raises(UsageError, match="not a plain value"):
            stack_file.set_values(path, {key: "x"})
    assert path.read_text() == TEXT


def test_a_copy_carries_the_changes_and_goes_away(path):
    with stack_file.changed_copy(path, {"ideaforge-ai:backendImageTag": "25a0b1c"}) as copy:
        assert yaml.safe_load(copy.read_text())["config"]["ideaforge-ai:backendImageTag"] == "25a0b1c"
        assert yaml.safe_load(copy.read_text())["encryptionsalt"] == "v1:abc"
    assert not copy.exists() and path.read_text() == TEXT


def test_no_changes_no_copy(path):
    with stack_file.changed_copy(path, {}) as copy:
        assert copy is None
