"""Produce records with python confluent-kafka (librdkafka), then consume them back.

Usage: confluent_roundtrip.py BOOTSTRAP TOPIC COUNT COMPRESSION
Prints one JSON object: what was delivered (per delivery reports) and whether every record came
back byte-identical, in order per partition. Run with Debian's /usr/bin/python3.
"""
import hashlib
import json
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition, OFFSET_BEGINNING

bootstrap, topic, count, compression = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


def value_of(i):
    # Compressible but not constant: a repeated phrase plus the index and a digest.
    digest = hashlib.sha256(str(i).encode()).hexdigest()
    return (f"record {i} " + digest + " the quick brown fox " * 8).encode()


delivered = {}
errors = []


def on_delivery(err, msg):
    if err is not None:
        errors.append(str(err))
    else:
        delivered[int(msg.key())] = (msg.partition(), msg.offset())


producer = Producer({
    "bootstrap.servers": bootstrap,
    "acks": "all",
    "compression.type": compression,
    "linger.ms": 5,
    "message.timeout.ms": 60000,
})
for i in range(count):
    while True:
        try:
            producer.produce(topic, key=str(i).encode(), value=value_of(i), on_delivery=on_delivery)
            break
        except BufferError:
            producer.poll(0.1)
    producer.poll(0)
remaining = producer.flush(60)

partitions = sorted({p for p, _ in delivered.values()})
consumer = Consumer({
    "bootstrap.servers": bootstrap,
    "group.id": f"roundtrip-{topic}",
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
})
consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
seen = {}
mismatches = 0
order_violations = 0
last_offset = {}
deadline = time.time() + 60
while len(seen) < len(delivered) and time.time() < deadline:
    msg = consumer.poll(0.5)
    if msg is None or msg.error():
        continue
    i = int(msg.key())
    if msg.value() != value_of(i):
        mismatches += 1
    if last_offset.get(msg.partition(), -1) >= msg.offset():
        order_violations += 1
    last_offset[msg.partition()] = msg.offset()
    if delivered.get(i) != (msg.partition(), msg.offset()):
        mismatches += 1
    seen[i] = True
consumer.close()

print(json.dumps({
    "produced": count,
    "delivered": len(delivered),
    "undelivered_after_flush": remaining,
    "delivery_errors": errors[:5],
    "consumed": len(seen),
    "mismatches": mismatches,
    "order_violations": order_violations,
}))
