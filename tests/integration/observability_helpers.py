"""Reading what the gateway exposes to operators: one sample of the /metrics text."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def sample(text: str, name: str, **labels: str) -> float:
    """The value of sample ``name`` whose labels include ``labels`` (0 when absent)."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


_EXPORTER = None


def memory_spans():  # type: ignore[no-untyped-def]
    """The SDK's in-memory exporter behind the process's tracer provider (installed once: the
    OpenTelemetry API allows one provider per process), emptied for the caller."""
    global _EXPORTER
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    if _EXPORTER is None:
        provider = TracerProvider()
        _EXPORTER = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(_EXPORTER))
        trace.set_tracer_provider(provider)
    _EXPORTER.clear()
    return _EXPORTER


def span_texts(spans) -> list[str]:  # type: ignore[no-untyped-def]
    """Each span as one text: its name, attributes, events and status (what an exporter sends)."""
    texts = []
    for s in spans:
        events = [f"{e.name} {dict(e.attributes or {})}" for e in s.events]
        texts.append(f"{s.name} {dict(s.attributes or {})} {events} {s.status.description or ''}")
    return texts
