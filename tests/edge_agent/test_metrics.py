"""EdgeMetrics: own registry per instance, every series rendered under its agreed name."""

from __future__ import annotations

from prometheus_client import REGISTRY

from edge_agent.metrics import METRICS_CONTENT_TYPE, EdgeMetrics


def test_instances_do_not_share_or_touch_the_global_registry() -> None:
    a, b = EdgeMetrics(), EdgeMetrics()  # a shared registry would raise "Duplicated timeseries"
    a.requests.labels("/v1/models", "none", "200").inc()
    assert (
        a.registry.get_sample_value(
            "tandem_edge_requests_total",
            {"endpoint": "/v1/models", "served_by": "none", "status": "200"},
        )
        == 1.0
    )
    assert (
        b.registry.get_sample_value(
            "tandem_edge_requests_total",
            {"endpoint": "/v1/models", "served_by": "none", "status": "200"},
        )
        is None
    )
    assert REGISTRY.get_sample_value("tandem_edge_requests_total", {}) is None


def test_render_has_every_series() -> None:
    metrics = EdgeMetrics()
    metrics.requests.labels("/v1/chat", "local", "200").inc()
    metrics.route_decisions.labels("local", "simple").inc()
    metrics.tokens.labels("local", "prompt").inc(12)
    metrics.tokens.labels("local", "completion").inc(5)
    metrics.time_to_first_token.labels("local").observe(0.08)
    metrics.cloud_channels.labels("relay").set(2)
    metrics.cloud_connects.labels("ok").inc()
    text = metrics.render().decode()
    for line in (
        'tandem_edge_requests_total{endpoint="/v1/chat",served_by="local",status="200"} 1.0',
        'tandem_edge_route_decisions_total{reason="simple",route="local"} 1.0',
        'tandem_edge_tokens_total{kind="prompt",served_by="local"} 12.0',
        'tandem_edge_tokens_total{kind="completion",served_by="local"} 5.0',
        'tandem_edge_time_to_first_token_seconds_bucket{le="0.1",served_by="local"} 1.0',
        'tandem_edge_cloud_channels{path="relay"} 2.0',
        'tandem_edge_cloud_connects_total{result="ok"} 1.0',
    ):
        assert line in text
    assert METRICS_CONTENT_TYPE.startswith("text/plain; version=0.0.4")
