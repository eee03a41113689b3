"""workbench.http: the gateway proxy and the service answer errors from one table, with
one trace-id header, and that header's name is written in exactly one place."""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from workbench.errors import BudgetExceeded, PermissionDenied, WorkbenchError
from workbench.http.headers import TRACE_HEADER
from workbench.models.gateway import Gateway

PACKAGE = Path(__file__).resolve().parents[2] / "workbench"


def test_the_trace_header_name_is_written_once() -> None:
    places = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and node.value == TRACE_HEADER:
                places.append(str(path.relative_to(PACKAGE)))
    assert places == ["http/headers.py"]


def _apps(gw: Gateway) -> dict[str, FastAPI]:
    from workbench.models.server import create_app
    from workbench.service import ServiceSettings, create_service_app

    return {"gateway": create_app(gw),
            "service": create_service_app(gw, ServiceSettings(warmup=False))}


def _raising(app: FastAPI, exc: BaseException) -> TestClient:
    async def boom() -> None:
        raise exc

    app.add_api_route("/boom", boom)
    return TestClient(app, raise_server_exceptions=False)


@pytest.mark.parametrize("exc", [
    BudgetExceeded("team t has spent its budget"),
    PermissionDenied("key k may not use model m"),
    WorkbenchError("alice@example.com is not a model", code="odd", status=418),
])
def test_both_apps_answer_a_workbench_error_alike(make_gateway: Callable[..., Gateway],
                                                  exc: WorkbenchError) -> None:
    answers: dict[str, Any] = {}
    for name, app in _apps(make_gateway()).items():
        resp = _raising(app, exc).get("/boom")
        body = resp.json()
        trace_id = body["error"].pop("trace_id", None)
        assert (trace_id is not None) == (name == "service")  # the service adds the id
        if trace_id is not None:
            assert trace_id == resp.headers[TRACE_HEADER]
        answers[name] = (resp.status_code, body, resp.headers.get("x-should-retry"),
                         resp.headers.get("www-authenticate"))
    assert answers["gateway"] == answers["service"]
    assert answers["gateway"][0] == exc.status
    assert "alice@example.com" not in str(answers)  # masked when the error was made


def test_a_bug_is_a_500_with_the_trace_id_and_no_details(
        make_gateway: Callable[..., Gateway]) -> None:
    for name, app in _apps(make_gateway()).items():
        resp = _raising(app, RuntimeError("secret wb-abc123 detail")).get("/boom")
        assert resp.status_code == 500, name
        trace_id = resp.headers[TRACE_HEADER]
        assert resp.json()["error"]["code"] == "internal_error"
        assert trace_id in resp.json()["error"]["message"]
        assert "wb-abc123" not in resp.text and "Traceback" not in resp.text


def test_a_bad_content_length_is_a_400_in_each_apps_shape(
        make_gateway: Callable[..., Gateway]) -> None:
    for name, app in _apps(make_gateway()).items():
        resp = TestClient(app).post("/v1/embeddings" if name == "gateway" else "/ask",
                                    content=b"{}", headers={"content-length": "ten"})
        assert resp.status_code == 400
        error = resp.json()["error"]
        assert error["code"] == "invalid_content_length"
        assert error.get("trace_id") == (resp.headers[TRACE_HEADER] if name == "service"
                                         else None)
