"""Schema-driven fuzzing of the proxy (schemathesis over its own OpenAPI schema): valid
and invalid requests with a valid key must never produce a server error.

FakeProvider stands in for the model so this exercises the HTTP and governance layers,
not the LLM; examples are few and derandomized to keep it quick and repeatable.

schemathesis' pytest integration (``@schema.parametrize``) breaks on pytest 9 (it sets
``node._nodeid``), so each operation's hypothesis strategy is driven directly.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from tests.fakes import FakeProvider
from workbench.models.server import create_app

FUZZ_MODELS = [{"name": "fake-model", "provider": "fake"},
               {"name": "fake-embed", "provider": "fake", "kind": "embedding"}]
EXAMPLES = 25


@pytest.fixture
def fuzz_target(make_gateway: Any) -> tuple[Any, str]:
    gw = make_gateway(providers={"fake": FakeProvider()}, models=FUZZ_MODELS,
                      chat_model="fake-model", embed_model="fake-embed",
                      max_request_bytes=200_000)
    # The allowlist keeps every generated request off the real embedded models.
    _, key = gw.policy.create_key(team="fuzz", models="fake-model,fake-embed")
    return create_app(gw), key


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_server_errors(fuzz_target: tuple[Any, str], mode: GenerationMode) -> None:
    app, key = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/chat/completions", "/v1/embeddings",
                                              "/v1/models", "/healthz", "/readyz"}
    if mode is GenerationMode.NEGATIVE:  # nothing to break in a parameterless GET
        operations = [op for op in operations if len(op.body) or len(op.path_parameters)]
    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case: Any) -> None:
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"},
                                   checks=[not_a_server_error])

        no_server_error()
