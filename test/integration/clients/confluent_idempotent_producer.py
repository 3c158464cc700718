"""Produces COUNT records "PREFIX-i" to partition i % PARTITIONS with an idempotent librdkafka
producer, then prints one JSON line: {"delivered": n, "errors": [...first few...]}.

Usage: confluent_idempotent_producer.py BOOTSTRAP TOPIC PREFIX COUNT PARTITIONS [--slow]
(--slow: about 4,000 records a second, so a test can crash the broker mid-stream)
"""
import json
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, prefix, count, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    slow = "--slow" in sys.argv[6:]
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "enable.idempotence": True,
        "linger.ms": 2,
        # Small requests, so the proxy has many answers to lose (up to 5 in flight at once).
        "batch.num.messages": 50,
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
    })
    delivered = []
    errors = []

    def report(err, message):
        if err is not None:
            errors.append(str(err))
        else:
            delivered.append(message.offset())

    for i in range(count):
        while True:
            try:
                producer.produce(topic, value=("%s-%d" % (prefix, i)).encode(), partition=i % partitions, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if slow and i % 40 == 39:
            time.sleep(0.01)
    producer.flush(120)
    print(json.dumps({"delivered": len(delivered), "errors": errors[:5]}))


if __name__ == "__main__":
    main()
