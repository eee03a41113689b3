"""OTLP export to real receivers on loopback, and an unreachable / stuck collector.

No OpenTelemetry Collector binary can be installed here (no registry ships it), so the
receivers are the closest honest thing: a real HTTP server that accepts
``POST /v1/traces`` (OTLP/HTTP protobuf) and a real gRPC server implementing the OTLP
``TraceService``, both decoding the payload with ``opentelemetry-proto``, the same
message definitions a collector uses. The exporter under test is the real OTLP exporter.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from tests.servers import free_port
from workbench.models.gateway import Gateway
from workbench.observability import tracing
from workbench.observability.traces import get_trace


def _decode(req: trace_service_pb2.ExportTraceServiceRequest) -> list[dict[str, Any]]:
    out = []
    for rs in req.resource_spans:
        resource = {a.key: a.value.string_value for a in rs.resource.attributes}
        for ss in rs.scope_spans:
            for s in ss.spans:
                attrs = {}
                for a in s.attributes:
                    v = a.value
                    attrs[a.key] = getattr(v, v.WhichOneof("value")) if v.WhichOneof("value") \
                        else None
                out.append({"trace_id": s.trace_id.hex(), "span_id": s.span_id.hex(),
                            "parent_id": s.parent_span_id.hex() or None, "name": s.name,
                            "attributes": attrs, "resource": resource})
    return out


class HttpReceiver:
    """OTLP/HTTP: POST /v1/traces with an ExportTraceServiceRequest (protobuf)."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        self.content_types: list[str] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                req = trace_service_pb2.ExportTraceServiceRequest()
                req.ParseFromString(body)
                receiver.content_types.append(self.headers["Content-Type"])
                receiver.spans.extend(_decode(req))
                payload = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class GrpcReceiver(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self) -> None:
        import grpc

        self.spans: list[dict[str, Any]] = []
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(self, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.url = f"http://127.0.0.1:{port}"
        self.server.start()

    def Export(self, request: Any, context: Any) -> Any:  # noqa: N802 - gRPC's naming
        self.spans.extend(_decode(request))
        return trace_service_pb2.ExportTraceServiceResponse()

    def close(self) -> None:
        self.server.stop(grace=None)


@pytest.fixture
def http_receiver() -> Iterator[HttpReceiver]:
    r = HttpReceiver()
    yield r
    r.close()


def _wait_for(cond: Callable[[], bool], timeout: float = 20.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


@pytest.mark.embedded
def test_gateway_spans_reach_an_otlp_http_receiver(
        make_gateway: Callable[..., Gateway], http_receiver: HttpReceiver) -> None:
    gw = make_gateway(otlp_endpoint=http_receiver.url)
    tracer = tracing.tracer_for(gw.store, gw.settings)
    assert sorted(tracer.processors) == ["otlp", "store"]
    with tracing.span("ask", input="capital of France?", gateway=gw) as root:
        res = gw.chat("What is the capital of France? One word.", max_tokens=6, temperature=0)
    assert tracer.flush(20)
    assert _wait_for(lambda: len(http_receiver.spans) >= 2)
    by_name = {s["name"]: s for s in http_receiver.spans}
    llm = by_name["chat smollm2-135m"]
    assert llm["trace_id"] == root.trace_id == res.trace_id
    assert llm["parent_id"] == by_name["ask"]["span_id"]
    assert llm["attributes"]["openinference.span.kind"] == "LLM"
    assert llm["attributes"]["llm.model_name"] == "smollm2-135m"
    assert llm["attributes"]["llm.token_count.completion"] <= 6
    assert llm["resource"]["service.name"] == "workbench"
    assert http_receiver.content_types[0] == "application/x-protobuf"
    # The local store got the same spans.
    assert {s.name for s in get_trace(gw.store, root.trace_id).spans} == set(by_name)
    assert tracer.stats()["otlp"]["exported"] == 2


def test_spans_reach_an_otlp_grpc_receiver(make_gateway: Callable[..., Gateway]) -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.grpc")
    receiver = GrpcReceiver()
    try:
        gw = make_gateway()
        tracer = tracing.Tracer(gw.store, otlp_endpoint=receiver.url, otlp_protocol="grpc")
        with tracer.span("ask", kind="CHAIN") as root, \
                tracer.span("retrieve", kind="RETRIEVER") as ret:
            ret.set_documents([{"id": "doc-7", "score": 0.5}])
        assert tracer.flush(20)
        assert _wait_for(lambda: len(receiver.spans) == 2)
        spans = {s["name"]: s for s in receiver.spans}
        assert spans["retrieve"]["trace_id"] == root.trace_id
        assert spans["retrieve"]["attributes"]["retrieval.documents.0.document.id"] == "doc-7"
        assert spans["retrieve"]["attributes"]["openinference.span.kind"] == "RETRIEVER"
    finally:
        receiver.close()


def test_unreachable_endpoint_never_fails_the_request_path(
        make_gateway: Callable[..., Gateway]) -> None:
    gw = make_gateway()
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    tracer = tracing.Tracer(gw.store, otlp_endpoint=closed, otlp_timeout_s=0.5)
    for i in range(50):
        with tracer.span(f"s{i}"):
            pass
    assert tracer.flush(15)
    stats = tracer.stats()
    assert stats["store"]["exported"] == 50  # the local store is unaffected
    otlp = stats["otlp"]
    assert otlp["exported"] == 0 and otlp["failed"] + otlp["dropped"] == 50


def test_a_stuck_collector_drops_with_a_counter_instead_of_blocking(
        make_gateway: Callable[..., Gateway]) -> None:
    """The collector accepts the connection and never answers: the exporter thread is
    stuck, the bounded queue fills, further spans are dropped and counted - and span
    creation on the request path keeps returning."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    conns: list[socket.socket] = []
    accepted = threading.Event()

    def accept() -> None:
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            conns.append(c)
            accepted.set()

    threading.Thread(target=accept, daemon=True).start()
    gw = make_gateway()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    tracer = tracing.Tracer(gw.store, otlp_endpoint=url, otlp_timeout_s=30)
    otlp = tracer.processors["otlp"]
    otlp.max_queue, otlp.batch_size = 20, 5
    try:
        for i in range(5):
            with tracer.span(f"first{i}"):
                pass
        assert accepted.wait(10)  # the exporter is now blocked inside its HTTP request
        for i in range(200):
            with tracer.span(f"more{i}"):
                pass
        stats = tracer.stats()
        assert stats["otlp"]["dropped"] >= 200 - 20 - 5
        assert tracer.processors["store"].force_flush(10_000)
        assert tracer.stats()["store"]["exported"] == 205  # the local store lost nothing
    finally:
        listener.close()
        for c in conns:
            c.close()
