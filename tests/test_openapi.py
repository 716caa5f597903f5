"""The OpenAPI description, and the API fuzzed against it with schemathesis."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.conftest import ADMIN_TOKEN

CASES_PER_OPERATION = 300
# Cases sent per database kind and operation.
seen: dict[str, dict[str, int]] = {}
current = {"database": ""}


@pytest.fixture
def api_schema(make_app, database_url):
    # Limits off: the fuzzer posts far faster than any visitor.
    app = make_app(RATELIMIT_ENABLED=False)
    current["database"] = database_url.split(":", 1)[0]
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_conforms_and_no_server_error(case):
    counts = seen.setdefault(current["database"], {})
    key = f"{case.operation.method.upper()} {case.operation.path}"
    counts[key] = counts.get(key, 0) + 1
    if case.path_parameters and case.path_parameters.get("site") and counts[key] % 2:
        case.path_parameters["site"] = "demo"
    headers = {"Origin": "http://localhost:8000"}
    if counts[key] % 3 == 0:
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    # Schema-valid bodies can still be refused on meaning (a revision never served, a
    # reject_all that grants a category): 422 is right there. Schema-violating
    # bodies over 16 KB are refused with 413 before they are read, which the
    # rejection check does not count as a refusal. Both checks are left out;
    # server errors and the conformance of every response are checked.
    case.call_and_validate(
        headers=headers,
        excluded_checks=[schemathesis.checks.positive_data_acceptance, schemathesis.checks.negative_data_rejection],
    )


def test_fuzzing_covered_every_operation_with_enough_cases(api_schema):
    # Runs after the fuzzing test on the same database (file order).
    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in api_schema.get_all_operations())}
    counts = seen[current["database"]]
    assert operations <= set(counts), operations - set(counts)
    assert sum(counts.values()) >= 1000, counts


def test_spec_documents_the_consent_schema(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    request = document["components"]["schemas"]["ConsentRequest"]
    assert set(request["required"]) >= {"event_id", "action", "choices", "revision", "page_url"}
    assert request["properties"]["action"]["enum"] == ["accept_all", "reject_all", "custom", "withdraw"]


def test_reference_page_lists_the_operations(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "POST /api/v1/sites/{site}/consents" in page
