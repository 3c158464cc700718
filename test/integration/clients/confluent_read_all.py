"""Reads every partition of TOPIC from the beginning to its end with a python confluent-kafka
(librdkafka) consumer, assigned directly, and prints one JSON line:
{"records": [[partition, offset, key, value], ...], "positions": {partition: next offset}, "ends": {partition: high watermark}}.
The positions show the consumer moved past holes and control markers up to the end.

Usage: confluent_read_all.py BOOTSTRAP TOPIC PARTITIONS
"""
import json
import sys
import time

from confluent_kafka import Consumer, KafkaError, TopicPartition, OFFSET_BEGINNING


def main():
    bootstrap, topic, partitions = sys.argv[1], sys.argv[2], int(sys.argv[3])
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": "read-all-%s" % topic,
        "enable.auto.commit": False,
        "enable.partition.eof": True,
        "auto.offset.reset": "earliest",
    })
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    records = []
    at_end = set()
    deadline = time.time() + 90
    while len(at_end) < partitions and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            if message.error().code() == KafkaError._PARTITION_EOF:
                at_end.add(message.partition())
            continue
        at_end.discard(message.partition())
        key = message.key().decode() if message.key() is not None else None
        value = message.value().decode() if message.value() is not None else None
        records.append([message.partition(), message.offset(), key, value])
    positions = {str(tp.partition): tp.offset for tp in consumer.position([TopicPartition(topic, p) for p in range(partitions)])}
    ends = {str(p): consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in range(partitions)}
    consumer.close()
    print(json.dumps({"records": records, "positions": positions, "ends": ends, "complete": len(at_end) == partitions}))


if __name__ == "__main__":
    main()
