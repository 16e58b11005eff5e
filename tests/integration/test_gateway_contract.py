"""The published contract, tested against the running gateway: schemathesis reads the served
OpenAPI document (and the event schemas it references by relative ``$ref``), generates valid
and invalid requests for every operation, and checks each answer: never a 5xx, a documented
status, the documented media type and a body matching its schema, and invalid input refused.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

import tests.support.schemathesis_transport  # noqa: F401 - see its docstring
from ioc.storage.migrations import migrate
from tests.support.gateway import GatewayThread, create_integration
from tests.support.services import Stack, start_stack

pytestmark = pytest.mark.integration

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]
SCHEMAS = Path(__file__).resolve().parents[2] / "schemas"


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> bytes:
    items = value if isinstance(value, list) else [value]  # negative cases may not be arrays
    return "".join(json.dumps(item) + "\n" for item in items).encode()


@pytest.fixture(scope="module")
def contract_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    stack: Stack = start_stack(Path(tmp_path_factory.mktemp("contract")))
    migrate(stack.database_url)
    token = create_integration(
        stack.database_url, "soc-tinh", streams=["dossier", "uptime", "security"], rate=1e6
    )
    stack.extra_env.update(IOC_GATEWAY_PORT="0", IOC_SYSLOG_UDP_PORT="0", IOC_SYSLOG_TCP_PORT="0")
    try:
        with GatewayThread(stack.settings) as gw:
            gw.wait_ready()
            yield gw.url, token
    finally:
        stack.close()


@pytest.fixture(scope="module")
def served_contract(contract_gateway: tuple[str, str]) -> Any:
    url, token = contract_gateway
    schema = schemathesis.openapi.from_url(f"{url}/schemas/gateway.openapi.json")
    schema.config.update(base_url=url, headers={"Authorization": f"Bearer {token}"})
    # A batch over the item limit is refused as too large (413), which is a refusal too.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = [*rejection.expected_statuses, "413"]
    return schema


contract = schemathesis.pytest.from_fixture("served_contract")


@contract.parametrize()
@settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
def test_gateway_honours_its_published_contract(case: Any) -> None:
    case.call_and_validate(checks=CHECKS)


def test_the_served_document_is_the_committed_one(contract_gateway: tuple[str, str]) -> None:
    import urllib.request

    url, _ = contract_gateway
    with urllib.request.urlopen(f"{url}/openapi.json") as r:
        served = json.loads(r.read())
        assert r.url.endswith("/schemas/gateway.openapi.json")
    assert served == json.loads((SCHEMAS / "gateway.openapi.json").read_text())
    with urllib.request.urlopen(f"{url}/schemas/security.v1.json") as r:
        assert json.loads(r.read())["title"].startswith("Security event")
