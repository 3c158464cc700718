"""Produces COUNT records "PREFIX-i" to partition i % PARTITIONS with an idempotent librdkafka
producer, then prints one JSON line: {"delivered": n, "errors": [...first few...]}.

Usage: confluent_idempotent_producer.py BOOTSTRAP TOPIC PREFIX COUNT PARTITIONS [--slow] [--history] [--short-timeouts]
(--slow: about 4,000 records a second, so a test can crash the broker mid-stream;
--history: before the summary, one JSON line per record for the history checker:
{"value", "partition", "sent": ms, "acked": ms, "offset"} or {..., "error"};
--short-timeouts: give up on an unanswered request after 3 s instead of 30-60 s, which is how
librdkafka notices a half-open connection)
"""
import json
import sys
import time

from confluent_kafka import Producer


def main():
    bootstrap, topic, prefix, count, partitions = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    slow = "--slow" in sys.argv[6:]
    history = "--history" in sys.argv[6:]
    timeouts = {"socket.timeout.ms": 3000, "request.timeout.ms": 3000} if "--short-timeouts" in sys.argv[6:] else {}
    producer = Producer({
        **timeouts,
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
    sent_at = {}
    outcomes = []

    def report(err, message):
        value = message.value().decode()
        outcome = {"value": value, "partition": message.partition(), "sent": sent_at.pop(value), "acked": time.time() * 1000}
        if err is not None:
            errors.append(str(err))
            outcome["error"] = str(err)
        else:
            delivered.append(message.offset())
            outcome["offset"] = message.offset()
        if history:
            outcomes.append(outcome)

    for i in range(count):
        value = "%s-%d" % (prefix, i)
        while True:
            try:
                sent_at[value] = time.time() * 1000
                producer.produce(topic, value=value.encode(), partition=i % partitions, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)
        if slow and i % 40 == 39:
            time.sleep(0.01)
    producer.flush(120)
    for outcome in outcomes:
        print(json.dumps(outcome))
    print(json.dumps({"delivered": len(delivered), "errors": errors[:5]}))


if __name__ == "__main__":
    main()
