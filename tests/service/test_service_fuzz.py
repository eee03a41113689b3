"""Schemathesis over the service's own OpenAPI schema: valid and invalid requests, with
a valid key, never produce a server error (5xx other than the documented 502/503/504).

The model is the FakeProvider seam (this exercises HTTP, validation, governance and
feedback, not the LLM); retrieval is real. Examples are few and derandomized.
schemathesis' pytest integration breaks on pytest 9, so each operation's hypothesis
strategy is driven directly (as in tests/models/test_server_fuzz.py).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

EXAMPLES = 20


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(make_service: Any, mode: GenerationMode) -> None:
    served = make_service(feedback_read=True)
    schema = schemathesis.openapi.from_asgi("/openapi.json", served.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    paths = {op.path for op in operations}
    assert {"/ask", "/ask/stream", "/feedback", "/healthz", "/readyz", "/metrics"} <= paths
    if mode is GenerationMode.NEGATIVE:  # nothing to break in a parameterless GET
        operations = [op for op in operations
                      if len(op.body) or len(op.path_parameters) or len(op.query)]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case: Any) -> None:
            case.call_and_validate(headers=served.headers, checks=[not_a_server_error])

        no_server_error()
