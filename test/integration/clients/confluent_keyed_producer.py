"""Produces records whose idempotency key is "PREFIX-i" for i in [FIRST, LAST), with python
confluent-kafka (librdkafka). The key is also the record key, and the partitioner is murmur2
(Java's and KafkaJS's default), so every client sends one key to the same partition. The value
is VALUE_TAG:PREFIX-i, so a reader can tell which producer's copy was stored.

Usage: confluent_keyed_producer.py BOOTSTRAP TOPIC PREFIX FIRST LAST VALUE_TAG [OPTIONS_JSON [STEP [PACE]]]
OPTIONS_JSON: extra librdkafka settings, e.g. {"enable.idempotence": true, "compression.type": "lz4"}.
STEP: send every STEP-th i (default 1). PACE: at most this many records a second (default: unpaced),
so a test can crash the broker mid-stream.
Prints one JSON line: {"delivered": n, "errors": [...], "reports": {"PREFIX-i": [partition, offset]}}.
"""
import json
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
    first, last, tag = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
    options = json.loads(sys.argv[7]) if len(sys.argv) > 7 else {}
    step = int(sys.argv[8]) if len(sys.argv) > 8 else 1
    pace = float(sys.argv[9]) if len(sys.argv) > 9 else 0
    settings = {
        "bootstrap.servers": bootstrap,
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "message.timeout.ms": 120000,
        "reconnect.backoff.ms": 20,
        "reconnect.backoff.max.ms": 200,
    }
    settings.update(options)
    producer = Producer(settings)
    reports = {}
    errors = []

    def report(err, message):
        if err is not None:
            errors.append(str(err))
        else:
            reports[message.key().decode()] = [message.partition(), message.offset()]

    started = time.time()
    for n, i in enumerate(range(first, last, step)):
        if pace > 0 and n % 20 == 0:
            ahead = n / pace - (time.time() - started)
            if ahead > 0:
                time.sleep(ahead)
        key = ("%s-%d" % (prefix, i)).encode()
        while True:
            try:
                producer.produce(topic, key=key, value=b"%s:%s" % (tag.encode(), key), headers=[("idempotency-key", key)], on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    print(json.dumps({"delivered": len(reports), "errors": errors[:5], "reports": reports}))


if __name__ == "__main__":
    main()
