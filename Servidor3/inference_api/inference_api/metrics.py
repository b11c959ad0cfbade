"""The service's Prometheus metrics, beyond the per-handler HTTP metrics of the instrumentator.

Names are a contract with node 3's Prometheus rules and Grafana dashboards (Servidor3/prometheus,
Servidor3/grafana): rename one there too. Metrics live in the registry given, so each app (and
each test) can have its own.
"""

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Requests take milliseconds: the instrumentator's default 0.1 / 0.5 / 1 s buckets would put them all
# in the first one.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000)
PRICE_BUCKETS = (
    50_000, 75_000, 100_000, 150_000, 200_000, 250_000, 300_000, 400_000, 500_000,
    750_000, 1_000_000, 1_500_000, 2_000_000, 3_000_000, 5_000_000,
)  # fmt: skip
ERROR_KINDS = ("validation", "batch_too_large", "no_model", "model_error")


@dataclass(frozen=True)
class ServingMetrics:
    predictions: Counter
    model_latency: Histogram
    batch_size: Histogram
    prediction_errors: Counter
    model_info: Gauge
    model_loaded: Gauge
    reloads: Counter
    reload_failures: Counter
    log_rows_written: Counter
    log_rows_dropped: Counter
    log_queue_depth: Gauge
    predicted_price: Histogram

    @classmethod
    def create(cls, registry: CollectorRegistry) -> "ServingMetrics":
        metrics = cls(
            predictions=Counter(
                "realtor_predictions", "Listings priced", ["model_version", "endpoint"], registry=registry
            ),
            model_latency=Histogram(
                "realtor_model_latency_seconds",
                "Time in the model's predict alone",
                ["endpoint"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            ),
            batch_size=Histogram(
                "realtor_batch_size",
                "Listings per batch request",
                buckets=BATCH_SIZE_BUCKETS,
                registry=registry,
            ),
            prediction_errors=Counter(
                "realtor_prediction_errors",
                "Requests that got no prediction, by cause",
                ["kind"],
                registry=registry,
            ),
            model_info=Gauge(
                "realtor_model_info",
                "1 for the model version being served",
                ["model_name", "model_version", "alias", "run_id"],
                registry=registry,
            ),
            model_loaded=Gauge("realtor_model_loaded", "1 once a model is loaded", registry=registry),
            reloads=Counter(
                "realtor_model_reloads", "Model versions loaded and swapped in", registry=registry
            ),
            reload_failures=Counter(
                "realtor_model_reload_failures",
                "Failed attempts to check or load the model",
                registry=registry,
            ),
            log_rows_written=Counter(
                "realtor_inference_log_rows_written",
                "Prediction rows stored in inference_log",
                registry=registry,
            ),
            log_rows_dropped=Counter(
                "realtor_inference_log_rows_dropped",
                "Prediction rows never stored (queue full or database failing)",
                registry=registry,
            ),
            log_queue_depth=Gauge(
                "realtor_inference_log_queue_depth", "Prediction rows waiting to be stored", registry=registry
            ),
            predicted_price=Histogram(
                "realtor_predicted_price_dollars",
                "Predicted prices",
                buckets=PRICE_BUCKETS,
                registry=registry,
            ),
        )
        for kind in ERROR_KINDS:  # every kind exported from the start, so rate() sees the first error
            metrics.prediction_errors.labels(kind)
        return metrics
