import pytest

from tests.pg import Server


@pytest.fixture(scope="session")
def pg_server():
    server = Server()
    yield server
    server.close()


@pytest.fixture
def db(pg_server):
    database = pg_server.create_database()
    yield database
    pg_server.drop_database(database.name)


@pytest.fixture
def controllable_server(pg_server):
    if not pg_server.controllable:
        pytest.skip("needs a server the tests own (stop/kill/reconfigure); TEST_DATABASE_URL is set")
    return pg_server


@pytest.fixture(scope="session")
def old_flow_db(tmp_path_factory):
    """A database as `make eks-deploy` built it, from the app's own Jobs (tests/old_flow.py)."""
    import os

    from tests import old_flow

    if os.geteuid() != 0:
        pytest.skip("the old flow's Jobs run in private mount namespaces, which needs root (CI runs as root)")
    database = old_flow.build(tmp_path_factory.mktemp("old-flow"))
    yield database
    database.server.cleanup()
