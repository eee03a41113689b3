"""Fixtures for the agent tests: the priced mock upstream (a real OpenAI-compatible HTTP
server on loopback) scripted to answer with tool calls, and a Gateway whose profile
points at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.priced_upstream import PricedUpstream
from workbench.models.gateway import Gateway


@pytest.fixture
def upstream() -> Iterator[PricedUpstream]:
    """Answers a request with tools with ``up.tool_calls`` once, then text after the tool
    result (``tool_calls_always = True``: calls every time)."""
    with PricedUpstream(price_in_mtok=1000.0, price_out_mtok=2000.0) as up:
        up.tool_calls_always = False
        yield up


def mock_profile(upstream: PricedUpstream) -> dict[str, Any]:
    return {"base_url": upstream.base_url, "chat_model": "paid", "models": [
        {"name": "paid", "provider": "mock", "max_output_tokens": 100,
         "input_usd_per_mtok": 1000.0, "output_usd_per_mtok": 2000.0}]}


@pytest.fixture
def gw(make_gateway: Any, upstream: PricedUpstream) -> Gateway:
    made: Gateway = make_gateway(profile="mock", max_retries=0,
                                 profiles={"mock": mock_profile(upstream)})
    return made
