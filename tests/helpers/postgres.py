"""A real PostgreSQL for the `postgres` tests: the server named by STORYBOT_TEST_POSTGRES_URL.

`.ci/run` starts a throwaway cluster with `.ci/postgres start` and sets the variable; without
it every test that asks for ``postgres_url`` is skipped, saying how to run it.
"""

from __future__ import annotations

import os

import pytest

POSTGRES_URL_ENV = "STORYBOT_TEST_POSTGRES_URL"

NO_POSTGRES = (
    f"no PostgreSQL configured: run `export {POSTGRES_URL_ENV}=$(.ci/postgres start)` "
    "and then `pytest -m postgres`"
)


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """The test server's URL (its `postgres` database; tests make their own inside it)."""
    url = os.environ.get(POSTGRES_URL_ENV, "")
    if not url:
        pytest.skip(NO_POSTGRES)
    return url
