"""Property-based requests against the OpenAPI spec (schemathesis): no request, however
malformed, gets a 500.  Bounded (a few examples per operation) so the suite stays fast.

The operations that reach out to mail servers (discover, check, connect, re-check, report)
are left out here — random host names would only measure DNS timeouts; their malformed
inputs are covered by the validation they share with every other body (tests/api)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from .live import LiveServer


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    server = LiveServer(Path(tmp_path_factory.mktemp("live"))).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def api_schema(live_server: LiveServer) -> schemathesis.BaseSchema:
    # The fuzzing and explicit-example phases only: the coverage phase sends every boundary
    # value (strings of each field's maximum length) and would take minutes.
    config = schemathesis.config.SchemathesisConfig.from_dict(
        {"phases": {"coverage": {"enabled": False}, "stateful": {"enabled": False}}}
    )
    schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json", config=config)
    return (
        schema.exclude(path_regex=r"/mailboxes(/discover|/check)?$", method="POST")
        .exclude(path_regex=r"/mailboxes/\{mailbox_id\}/(check|report)$")
        .exclude(path_regex=r"/auth/tokens/\{token_id\}$", method="DELETE")
    )


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=5,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_no_request_gets_a_server_error(case: Any, live_server: LiveServer) -> None:
    # Half the requests as the admin (deep into the handlers), half without a token.
    headers = {"Authorization": f"Bearer {live_server.admin_token}"}
    case.call_and_validate(
        base_url=live_server.url, headers=headers, checks=[not_a_server_error], timeout=20
    )
