#!/usr/bin/env python3
"""A faithful re-creation of the seed's xdp_otel_exporter_simple.py, for
`cargo xtask bench`: every interval it runs bpftool on the pinned
xdp_stats_map, computes rates, and exports xdp.packets.total and
xdp.bytes.total (counters) and xdp.packets.rate (gauge) with the Python
OpenTelemetry SDK over OTLP/gRPC.

Bench addition: one line per sample on stdout (the bench counts them).
"""

import argparse
import json
import signal
import subprocess
import sys
import time

from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource


def read_stats(pin):
    out = subprocess.run(
        ["bpftool", "-j", "map", "lookup", "pinned", pin, "key", "0", "0", "0", "0"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    value = json.loads(out)["formatted"]["value"]
    return int(value["rx_packets"]), int(value["rx_bytes"])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pin", default="/sys/fs/bpf/xdp_stats_map")
    ap.add_argument("--endpoint", default="localhost:4317")
    ap.add_argument("--interval", type=float, default=5.0, help="seconds")
    args = ap.parse_args()

    exporter = OTLPMetricExporter(endpoint=args.endpoint, insecure=True)
    reader = PeriodicExportingMetricReader(
        exporter, export_interval_millis=args.interval * 1000
    )
    provider = MeterProvider(
        resource=Resource.create({"service.name": "xdp-exporter"}),
        metric_readers=[reader],
    )
    metrics.set_meter_provider(provider)
    meter = metrics.get_meter("xdp.exporter")
    packets = meter.create_counter("xdp.packets.total", unit="packets")
    octets = meter.create_counter("xdp.bytes.total", unit="bytes")
    state = {"rate": 0.0}

    def observe_rate(_options: CallbackOptions):
        yield Observation(state["rate"])

    meter.create_observable_gauge(
        "xdp.packets.rate", callbacks=[observe_rate], unit="packets/sec"
    )

    running = {"on": True}
    signal.signal(signal.SIGTERM, lambda *_: running.update(on=False))
    last = None
    while running["on"]:
        now = time.monotonic()
        try:
            p, b = read_stats(args.pin)
        except (subprocess.CalledProcessError, KeyError, ValueError) as e:
            print(f"read failed: {e}", file=sys.stderr)
            time.sleep(args.interval)
            continue
        if last is None:
            # The counters carry the kernel totals, as the seed's did.
            packets.add(p)
            octets.add(b)
        else:
            lp, lb, lt = last
            dp, db = max(p - lp, 0), max(b - lb, 0)
            packets.add(dp)
            octets.add(db)
            state["rate"] = dp / (now - lt) if now > lt else 0.0
        last = (p, b, now)
        print(f"sample {p} {b} {state['rate']:.1f}", flush=True)
        time.sleep(max(0.0, args.interval - (time.monotonic() - now)))

    provider.shutdown()


if __name__ == "__main__":
    main()
