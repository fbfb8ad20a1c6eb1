"""Sends logs to logvault through the OpenTelemetry Python SDK's normal logging path: the
standard `logging` module, the SDK's LoggingHandler, a BatchLogRecordProcessor and the
OTLP/HTTP protobuf exporter. Used by the `otlp` tests of the logvault binary.

usage: otlp_logs.py ENDPOINT API_KEY [gzip]
Prints one JSON line: {"exported": N} once the provider has flushed and shut down.
"""

import json
import logging
import sys
import warnings

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor, LogRecordExportResult
from opentelemetry.sdk.resources import Resource


class CountingExporter(OTLPLogExporter):
    """The real exporter, counting what the server acknowledged."""

    exported = 0
    failed = 0

    def export(self, batch):
        result = super().export(batch)
        if result == LogRecordExportResult.SUCCESS:
            CountingExporter.exported += len(batch)
        else:
            CountingExporter.failed += len(batch)
        return result


def main():
    endpoint, key = sys.argv[1], sys.argv[2]
    compression = Compression.Gzip if "gzip" in sys.argv[3:] else Compression.NoCompression
    resource = Resource.create(
        {
            "service.name": "checkout",
            "service.version": "2.3.1",
            "deployment.environment.name": "staging",
        }
    )
    provider = LoggerProvider(resource=resource)
    exporter = CountingExporter(
        endpoint=endpoint, headers={"Authorization": f"Bearer {key}"}, compression=compression
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.INFO, logger_provider=provider)
    log = logging.getLogger("payments")
    log.setLevel(logging.INFO)
    log.addHandler(handler)

    for attempt in range(3):
        try:
            raise TimeoutError(f"upstream timed out after 30s (attempt {attempt})")
        except TimeoutError:
            # The card number must be scrubbed before it is stored.
            log.exception(
                "charge failed for card 4111 1111 1111 1111",
                extra={"http.route": "/v1/payments", "http.request.method": "POST"},
            )
    log.info(
        "sign-in",
        extra={
            "event.name": "user.login",
            "event.outcome": "failure",
            "event.reason": "bad_password",
            "user.id": "usr_otel",
            "client.address": "198.51.100.23",
        },
    )
    # Neither kind: the server rejects it through partial success, the rest is stored.
    log.info("cache warmed")
    provider.shutdown()
    print(json.dumps({"exported": CountingExporter.exported, "failed": CountingExporter.failed}))


if __name__ == "__main__":
    main()
