"""The Socket.IO client of the event-delivery benchmark (api-gateway/benches/event_delivery.rs).

Connects with python-socketio (websocket transport only: the steady state, not the
polling upgrade), collects events of one type whose envelope carries its send time in
data.progress.context.sent_ns (UNIX ns, CLOCK_REALTIME, written by the sender on the
same machine), and takes receive_ns - sent_ns on arrival with time.time_ns(). The same
script reads the hostbridge gateway and the python-socketio server, so the client side
of both rows is identical.

Prints on stdout, one JSON object per line:
  {"connected": true}                                   once connected
  {"count": N, "p50_ms": .., "p95_ms": .., "p99_ms": .., "max_ms": .., "latencies_ms": [..]}
The first --warmup events are not counted. Exit 0 after --count events, 2 on --timeout.
Usage: sio_latency_client.py --url http://HOST:PORT [--type operation.progress]
                             [--count 1000] [--warmup 50] [--timeout 120]
"""

import argparse
import json
import sys
import threading
import time

import socketio


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def percentile(sorted_values, p):
    if not sorted_values:
        return None
    rank = round(p / 100.0 * (len(sorted_values) - 1))
    return sorted_values[rank]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--type", default="operation.progress")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()

    lock = threading.Lock()
    done = threading.Event()
    seen = [0]
    latencies = []
    client = socketio.Client(reconnection=False)

    @client.on(args.type)
    def on_event(envelope):
        received = time.time_ns()
        try:
            sent = int(envelope["data"]["progress"]["context"]["sent_ns"])
        except (KeyError, TypeError, ValueError):
            return
        with lock:
            seen[0] += 1
            if seen[0] <= args.warmup or len(latencies) >= args.count:
                return
            latencies.append((received - sent) / 1e6)
            if len(latencies) >= args.count:
                done.set()

    client.connect(args.url, transports=["websocket"], wait_timeout=10)
    out({"connected": True})
    finished = done.wait(args.timeout)
    client.disconnect()
    with lock:
        values = sorted(latencies)
        out(
            {
                "count": len(values),
                "p50_ms": percentile(values, 50),
                "p95_ms": percentile(values, 95),
                "p99_ms": percentile(values, 99),
                "max_ms": values[-1] if values else None,
                "latencies_ms": latencies,
            }
        )
    return 0 if finished else 2


if __name__ == "__main__":
    sys.exit(main())
