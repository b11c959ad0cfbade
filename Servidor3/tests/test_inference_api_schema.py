"""Property-based requests generated from the API's own OpenAPI document (schemathesis): whatever a
client sends, the answer is never a 5xx, and every answer matches the documented response shape.

Driven by hypothesis directly: schemathesis's `from_fixture` pytest integration does not run on
pytest 9 (it reaches into pytest internals that are gone).
"""

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

EXAMPLES_PER_OPERATION = 40


def test_no_request_gets_a_server_error(inference_api):
    schema = schemathesis.openapi.from_url(f"{inference_api.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {operation.path for operation in operations}
    assert paths >= {"/predict", "/predict/batch", "/explain", "/model", "/admin/reload"}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case):
            case.call_and_validate(checks=[not_a_server_error, response_schema_conformance], timeout=30)

        call()
