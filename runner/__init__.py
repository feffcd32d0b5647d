"""Apply PostgreSQL migrations exactly once, atomically, with errors a person can act on.

Plain Python: depends on psycopg2 only (2.8+, Python 3.9+), never on Pulumi. The deploy
program talks to it through its command line, environment variables and exit codes.
"""

__version__ = "0.1.0"
