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
