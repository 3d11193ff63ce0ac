"""Shared fixtures: the database the suite runs on (FHIR_GATEWAY_DATABASE_URL, else a fresh SQLite
file), migrated once per run and emptied between tests, and the real app over it."""

from __future__ import annotations

import gc
import os
import sys

# ruff: noqa: E402 (the bytecode setting below must precede the gateway's imports)
# Compiled modules are cached even where the environment sets PYTHONDONTWRITEBYTECODE: every
# worker would otherwise compile the gateway and assertion-rewrite ~300 test modules again on
# each run (about 5 s of a worker's start). The caches sit in __pycache__, which git ignores.
sys.dont_write_bytecode = False
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher, profiles
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import URL, create_engine, make_url, select, text

from fhir_gateway import careplans, clock
from fhir_gateway.app import build_rules, create_app
from fhir_gateway.hooks import Rules
from fhir_gateway.search.registry import get_registry
from fhir_gateway.security import install_row_policy
from fhir_gateway.settings import Settings
from fhir_gateway.store.db import Database
from fhir_gateway.store.migrate import upgrade
from fhir_gateway.store.tables import search_parameter_state
from fhir_gateway.web import _users

DATA = Path(__file__).parent / "data"

# The helper modules (on sys.path through pyproject's `pythonpath`): their asserts get pytest's
# messages, and the fixtures of the first three (intake, mllp_factory, recorded_discharges; gateway,
# auto_gateway; monitored, reviewed) are available to every test without importing them.
HELPERS = (
    "careplan_helpers",
    "contacts_helpers",
    "held_helpers",
    "hl7v2_helpers",
    "intake_helpers",
    "monitor_helpers",
    "observability_helpers",
    "security_data",
    "security_helpers",
    "seeds",
    "web_helpers",
    "workflow_helpers",
)
pytest.register_assert_rewrite(*HELPERS)
from emptied import empty_tables  # noqa: E402 (after the assert rewrite above)

pytest_plugins = ["intake_helpers", "careplan_helpers", "monitor_helpers", "contacts_helpers"]

# Property tests draw the same examples on every CI run (a failure there replays here with CI=1);
# locally they keep exploring new ones.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


# Passwords are hashed at argon2-cffi's CHEAPEST profile (its own "only for testing"
# parameters), as Django's test settings switch to a fast hasher: a sign-in checks the same and
# unknown names still cost what known ones do, in microseconds instead of 0.2 s of CPU a hash
# (a few hundred sign-ins a run). The gateway itself keeps argon2id's defaults (web/_users.py).
_users._HASHER = PasswordHasher.from_parameters(profiles.CHEAPEST)
_users._DUMMY = _users._HASHER.hash("not a password of anyone")


def pytest_collection_finish(session: pytest.Session) -> None:
    # The tests allocate a lot and keep little: what is alive once they are collected (modules,
    # FHIR models, the tests) leaves the collector's view, and a young-generation pass runs per
    # 7,000 net allocations rather than 700. About 8% less CPU; no test relies on when it runs.
    gc.collect()
    gc.freeze()
    gc.set_threshold(7000, 10, 10)


# Tests that build their own Settings (helpers of other suites) get the same insecure-dev defaults
# as the `settings` fixture; security tests pass auth_enabled=True / audit_enabled=True themselves.
os.environ.setdefault("FHIR_GATEWAY_AUTH_ENABLED", "false")
os.environ.setdefault("FHIR_GATEWAY_AUDIT_ENABLED", "false")
# One pytest process starts hundreds of apps: freezing each one's heap would keep every earlier
# test's cycles for the rest of the run (tests/unit/test_heap.py turns it on).
os.environ.setdefault("FHIR_GATEWAY_GC_FREEZE_AT_START", "false")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("FHIR_GATEWAY_DATABASE_URL")
    worker = os.environ.get("PYTEST_XDIST_WORKER")  # `pytest -n 2`: each worker its own database
    if not url:
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'gateway.db'}"
    elif worker is None or not url.startswith("postgresql"):
        yield url
    else:
        yield from _worker_database(make_url(url), worker)


def _worker_database(url: URL, worker: str) -> Iterator[str]:
    """A fresh PostgreSQL database next to the configured one, dropped after the run."""
    name = f"{url.database}_{worker}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield url.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def _migrated(database_url: str) -> Iterator[Database]:
    database = Database(database_url, pool_size=20)
    upgrade(database.engine)
    yield database
    database.dispose()


def _empty(database: Database) -> None:
    with database.engine.begin() as conn:
        stored = conn.execute(select(search_parameter_state.c.id)).first() is not None
        empty_tables(conn, postgres=database.is_postgres)
    _builtin_search_parameters(database, stored)


# The process-wide search-parameter registry as this fixture last left it: the built-in
# definitions only (the map of one type stands for the whole: every reload replaces all maps).
_BUILTIN_ONLY: dict[str, object] = {}


def _builtin_search_parameters(database: Database, stored: bool) -> None:
    """Bring the registry back to the built-in definitions when the emptied tables held stored
    SearchParameters, or when anything reloaded it since; rebuilding it costs more than most
    tests, so a test that stored none leaves it as it is."""
    registry = get_registry()
    if not stored and registry.for_type("Patient") is _BUILTIN_ONLY.get("Patient"):
        return
    database.search_parameters.forget()  # the stored SearchParameters went with the tables
    with database.session(readonly=True):
        pass  # reloads now, from the empty tables
    _BUILTIN_ONLY["Patient"] = registry.for_type("Patient")


# The write rules of the suite's settings, built once per distinct settings: every test starts
# with them on the database, as a process that writes has them (an app a test creates replaces
# them with its own until the next test).
_RULES: dict[str, Rules] = {}


def _rules_for(settings: Settings) -> Rules:
    key = settings.model_dump_json()
    if key not in _RULES:
        _RULES[key] = build_rules(settings)
    return _RULES[key]


@pytest.fixture
def database(_migrated: Database, settings: Settings) -> Iterator[Database]:
    """The migrated database, empty at the start of each test, with the suite's write rules."""
    install_row_policy()
    _migrated.use_rules(_rules_for(settings))
    _empty(_migrated)
    # the caches built from stored templates, partners and instruments know a change by a
    # fingerprint that an emptied database can repeat (tests under a frozen clock): start afresh
    careplans.forget_stored_data()
    yield _migrated
    clock.reset_clock()


@pytest.fixture
def session_factory(database: Database):  # type: ignore[no-untyped-def]
    return database.session


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The suite's tests predate authentication: they run as with `serve --insecure-dev` (no
    # tokens, no audit trail). tests/integration/test_security*.py build apps with both on.
    return Settings(
        database_url=database_url, base_url=None, auth_enabled=False, audit_enabled=False
    )


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database=database)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app, base_url="http://testserver") as test_client:
        yield test_client


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def serve_app():  # type: ignore[no-untyped-def]
    """Run apps under uvicorn on loopback ports: ``serve_app(app) -> base URL``; every
    server started is stopped when the test ends."""
    import threading
    import time

    import uvicorn

    running: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app=None, *, factory=None) -> str:  # type: ignore[no-untyped-def]
        """``factory(base_url)`` builds an app that must know its own URL (a token audience)."""
        port = free_port()
        if factory is not None:
            app = factory(f"http://127.0.0.1:{port}")
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        running.append((server, thread))
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        return f"http://127.0.0.1:{port}"

    yield start
    for server, thread in running:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def live_server(app, serve_app):  # type: ignore[no-untyped-def]
    """The real app under uvicorn on a loopback port, for clients no one here wrote."""
    return serve_app(app)


# --- conformance: every FHIR resource the app emits is valid ---------------------------------------
# Each test that uses the app gets an ASGI middleware that checks every application/fhir+json body
# against the official R4 JSON schema and the profile rules (conformance/profiles/rules.json) of
# resources that claim a known profile or that the gateway wrote itself; a test whose responses
# break them fails at teardown, naming the request. Opt out: @pytest.mark.no_fhir_validation, or
# FHIR_GATEWAY_VALIDATE_EMITTED=0 for a whole run.


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "no_fhir_validation: do not check the FHIR this test's app emits (schema, profile rules)",
    )


@pytest.fixture(autouse=True)
def _validate_emitted_fhir(request: pytest.FixtureRequest) -> Iterator[None]:
    wanted = (
        "app" in request.fixturenames
        and request.node.get_closest_marker("no_fhir_validation") is None
        and os.environ.get("FHIR_GATEWAY_VALIDATE_EMITTED", "1") != "0"
    )
    if not wanted:
        yield
        return
    from conformance.middleware import EmittedViolations, ValidatingMiddleware

    violations = EmittedViolations()
    app = request.getfixturevalue("app")
    app.add_middleware(ValidatingMiddleware, violations=violations)
    app.state.emitted_violations = (
        violations  # tests may look (tests/integration/test_emitted_fhir.py)
    )
    yield
    if violations.items:
        shown = "\n  ".join(violations.items[:25])
        more = f"\n  … and {len(violations.items) - 25} more" if len(violations.items) > 25 else ""
        pytest.fail(
            f"the app emitted FHIR that breaks the R4 schema or profile rules:\n  {shown}{more}",
            pytrace=False,
        )
