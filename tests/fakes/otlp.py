"""An OpenTelemetry collector's OTLP/HTTP trace intake on 127.0.0.1: `POST /v1/traces` with a protobuf
ExportTraceServiceRequest, decoded with `opentelemetry-proto` into plain span records tests can read."""
from __future__ import annotations

import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (ExportTraceServiceRequest,
                                                                       ExportTraceServiceResponse)

from tests.fakes.base import FakeUpstream, Recorded, Reply


@dataclass
class Span:
    name: str
    trace_id: str
    span_id: str
    parent_id: str
    kind: int
    attributes: dict
    status_code: int
    resource: dict
    start_ns: int
    end_ns: int


def _value(any_value):
    field = any_value.WhichOneof("value")
    if field == "array_value":
        return [_value(item) for item in any_value.array_value.values]
    return getattr(any_value, field) if field else None


def _attributes(items) -> dict:
    return {item.key: _value(item.value) for item in items}


class FakeOTLP(FakeUpstream):
    def __init__(self) -> None:
        super().__init__()
        self.spans: list[Span] = []

    def reset(self) -> None:
        super().reset()
        self.spans.clear()

    def model_of(self, request: Recorded) -> str:
        return ""

    def respond(self, request: Recorded) -> Reply:
        if request.path != "/v1/traces" or request.headers.get("content-type") != "application/x-protobuf":
            return Reply(status=404, body={"error": "not an OTLP/HTTP protobuf trace export"})
        export = ExportTraceServiceRequest()
        export.ParseFromString(request.body)
        for resource_spans in export.resource_spans:
            resource = _attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    self.spans.append(Span(
                        name=span.name, trace_id=span.trace_id.hex(), span_id=span.span_id.hex(),
                        parent_id=span.parent_span_id.hex(), kind=span.kind, attributes=_attributes(span.attributes),
                        status_code=span.status.code, resource=resource, start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano))
        return Reply(body=ExportTraceServiceResponse().SerializeToString(), content_type="application/x-protobuf")

    def wait_for(self, predicate, timeout: float = 10.0) -> list[Span]:
        """The spans matching `predicate`, once at least one arrived (bounded wait)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [span for span in self.spans if predicate(span)]
            if found:
                return found
            time.sleep(0.05)
        raise AssertionError(f"no matching span within {timeout}s; received: {[s.name for s in self.spans]}")

    def trace(self, trace_id: str) -> list[Span]:
        return [span for span in self.spans if span.trace_id == trace_id]
