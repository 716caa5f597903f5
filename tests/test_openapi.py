"""The OpenAPI description, and the API fuzzed against it with schemathesis."""

from __future__ import annotations

import re
from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from tests.support.service_config import ADMIN_TOKEN

CASES_PER_OPERATION = 300
SITE = re.compile(r"[a-z0-9-]{1,40}")
# Refusals a negative case may get: malformed, unauthorised, refused, unknown, too large,
# wrong type, invalid, rate limited and so on; never a 2xx and never a 5xx.
REFUSALS = [400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429]
# Positive cases (that fit the description) and negative ones (that break it), for every operation.
CONFIG = SchemathesisConfig.from_dict(
    {"generation": {"mode": "all"}, "checks": {"negative_data_rejection": {"expected-statuses": REFUSALS}}}
)
# Cases sent per database kind, operation and generation mode.
seen: dict[str, Counter[tuple[str, str]]] = {}
current = {"database": ""}


@pytest.fixture
def api_schema(make_app, database_url):
    # Limits off: the fuzzer posts far faster than any visitor.
    app = make_app(RATELIMIT_ENABLED=False)
    current["database"] = database_url.split(":", 1)[0]
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app, config=CONFIG)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=CASES_PER_OPERATION,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
)
def test_every_response_conforms_and_no_server_error(case):
    counts = seen.setdefault(current["database"], Counter())
    key = f"{case.operation.method.upper()} {case.operation.path}"
    counts[key, case.meta.generation.mode.value] += 1
    calls = counts[key, "positive"] + counts[key, "negative"]
    positive = case.meta.generation.mode.value == "positive"
    # Pointing a case at the real site or adding the admin token must not mend a negative
    # case: only a site that already fits the pattern is replaced, and only positive cases
    # get the token (a negative one may be negative precisely for lacking it).
    site = (case.path_parameters or {}).get("site")
    if isinstance(site, str) and SITE.fullmatch(site) and calls % 2:
        case.path_parameters["site"] = "demo"
    headers = {"Origin": "http://localhost:8000"}
    if positive and calls % 3 == 0:
        headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    # Schema-valid bodies can still be refused on meaning (a revision never served, a
    # reject_all that grants a category): 422 is right there, so positive data may be
    # refused. Negative data must be refused, with one of REFUSALS.
    case.call_and_validate(headers=headers, excluded_checks=[schemathesis.checks.positive_data_acceptance])


def test_fuzzing_covered_every_operation_with_enough_cases(api_schema):
    # Runs after the fuzzing test on the same database (file order). Any operation
    # the description lists counts, whoever adds it.
    operations = [r.ok() for r in api_schema.get_all_operations()]
    counts = seen[current["database"]]
    positive = {f"{op.method.upper()} {op.path}" for op in operations}
    # An operation without parameters or body has nothing to break.
    negative = {f"{op.method.upper()} {op.path}" for op in operations if list(op.iter_parameters()) or op.body}
    assert {key for (key, mode), n in counts.items() if mode == "positive" and n} >= positive, counts
    assert {key for (key, mode), n in counts.items() if mode == "negative" and n} >= negative, counts
    assert sum(counts.values()) >= 1000, counts


def test_spec_documents_the_consent_schema(client):
    document = client.get("/api/v1/openapi.json").json
    assert document["openapi"].startswith("3.")
    request = document["components"]["schemas"]["ConsentRequest"]
    assert set(request["required"]) >= {"event_id", "action", "choices", "revision", "page_url"}
    assert request["properties"]["action"]["enum"] == ["accept_all", "reject_all", "custom", "withdraw", "opt_out"]
    # What both databases store in an INTEGER column, and necessary only ever granted.
    revision = request["properties"]["revision"]
    assert (revision["minimum"], revision["maximum"]) == (1, 2**31 - 1)
    assert request["properties"]["choices"]["properties"]["necessary"] == {"type": "boolean", "const": True}


def test_reference_page_lists_the_operations(client):
    page = client.get("/api/v1/docs").get_data(as_text=True)
    assert "POST /api/v1/sites/{site}/consents" in page
