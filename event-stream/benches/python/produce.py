"""Produce N copies of one message with confluent-kafka, batched, and print the rate.

The Python side of the event-stream writer benchmark: the same librdkafka settings as
KafkaWriter (idempotent, acks=all, snappy, linger 10 ms, batch 16384), flushing once
at the end. Prints one JSON line: {"messages": N, "seconds": s, "rate": N/s}.
Usage: produce.py BOOTSTRAP TOPIC N PAYLOAD_FILE
"""

import json
import sys
import time

from confluent_kafka import Producer


def main() -> None:
    bootstrap, topic, n, payload_file = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    with open(payload_file, "rb") as f:
        payload = f.read()
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": "snappy",
            "linger.ms": 10,
            "batch.size": 16384,
        }
    )
    failed = 0

    def on_delivery(err, _msg):
        nonlocal failed
        if err is not None:
            failed += 1

    start = time.perf_counter()
    for _ in range(n):
        while True:
            try:
                producer.produce(topic, payload, key=b"AAPL", on_delivery=on_delivery)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    remaining = producer.flush(60)
    seconds = time.perf_counter() - start
    print(json.dumps({"messages": n, "seconds": seconds, "rate": n / seconds,
                      "failed": failed, "undelivered": remaining}))


if __name__ == "__main__":
    main()
