#!/usr/bin/env python3
"""The Python side of event-stream's Kafka interop tests (confluent-kafka).

consume BOOTSTRAP TOPIC GROUP COUNT TIMEOUT_S
    Reads COUNT messages as a member of GROUP and prints one JSON object per line:
    {"key", "value" (the payload parsed as JSON), "headers" {name: value}, "partition",
    "offset"}. Exits 2 if COUNT messages did not arrive within TIMEOUT_S seconds.

produce BOOTSTRAP TOPIC KEY [NAME=VALUE ...] < payload
    Produces stdin as one message with KEY and the given headers, then waits for the
    delivery report. Exits 1 if it was not delivered.
"""

import json
import sys
import time

from confluent_kafka import Consumer, Producer


def consume(bootstrap, topic, group, count, timeout_s):
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": group,
            "auto.offset.reset": "earliest",
            # The tansu test broker completes a join only after a session timeout.
            "session.timeout.ms": 6000,
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    deadline = time.monotonic() + timeout_s
    seen = 0
    try:
        while seen < count and time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error():
                print(f"consumer error: {msg.error()}", file=sys.stderr)
                continue
            headers = {k: (v.decode() if v is not None else None) for k, v in (msg.headers() or [])}
            print(
                json.dumps(
                    {
                        "key": msg.key().decode() if msg.key() is not None else None,
                        "value": json.loads(msg.value()),
                        "headers": headers,
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                    }
                ),
                flush=True,
            )
            seen += 1
    finally:
        consumer.close()
    if seen < count:
        print(f"timed out after {timeout_s}s with {seen}/{count} messages", file=sys.stderr)
        sys.exit(2)


def produce(bootstrap, topic, key, header_args):
    headers = [tuple(arg.split("=", 1)) for arg in header_args]
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    outcome = {}

    def report(err, _msg):
        outcome["error"] = err

    producer.produce(topic, key=key, value=sys.stdin.buffer.read(), headers=headers, on_delivery=report)
    remaining = producer.flush(30)
    if remaining or outcome.get("error") is not None:
        print(f"not delivered: {outcome.get('error')} ({remaining} queued)", file=sys.stderr)
        sys.exit(1)


def main(argv):
    if len(argv) >= 6 and argv[1] == "consume":
        consume(argv[2], argv[3], argv[4], int(argv[5]), float(argv[6]) if len(argv) > 6 else 60.0)
    elif len(argv) >= 5 and argv[1] == "produce":
        produce(argv[2], argv[3], argv[4], argv[5:])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(64)


if __name__ == "__main__":
    main(sys.argv)
