"""Schemathesis over Carnet's own OpenAPI document: no generated request gets a 5xx.

https://schemathesis.readthedocs.io — every operation of ``/openapi.json`` is called with
requests generated from its schema (valid and invalid), authenticated with a real token where
the operation takes one, and only the ``not_a_server_error`` check is asserted: the schema does
not describe FHIR's bodies, so conformance checks would test the schema, not the server.

Bounded to ``EXAMPLES`` per operation so that both databases run in well under a minute on a busy
two-core machine.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from robustness.conftest import PUBLISH_SCOPE, Target

EXAMPLES = 12


def test_no_operation_answers_a_server_error(target: Target) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", target.served.client.app)
    # /health answers 503 when the database is unavailable: that is its purpose. Here its own
    # connection waits behind the test's open transaction (SQLite's single writer).
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if isinstance(result, Ok) and result.ok().path != "/health"
    ]
    assert len(operations) >= 20
    professional = target.headers(target.professional, "user/*.cruds openid fhirUser")
    tokens = {
        ("POST", "/fhir"): target.headers(target.lab, PUBLISH_SCOPE),
        ("POST", "/fhir/Consent"): target.headers(target.patient, "patient/*.cruds"),
    }
    for operation in operations:
        _exercise(operation, tokens.get((operation.method.upper(), operation.path), professional))


def _exercise(
    operation: schemathesis.APIOperation[Any, Any, Any, Any], headers: dict[str, str]
) -> None:
    """Call ``operation`` with ``EXAMPLES`` generated requests; fail on any 5xx."""

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        # One served Carnet (and one rolled-back transaction) for all examples.
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy())
    def call(case: schemathesis.Case[Any]) -> None:
        case.call_and_validate(headers=headers, checks=[not_a_server_error])

    call()
