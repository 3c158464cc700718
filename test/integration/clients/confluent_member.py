"""One member of a confluent-kafka (librdkafka) consumer group, as its own process, for the
multi-process group tests. At-least-once: it handles each record, then commits it
(synchronously, enable.auto.commit off), and reports what happens as JSON lines on stdout:

  {"event":"owned","partitions":[...],"added":[...],"removed":[...],"t":ms}  after every
        assignment change (with cooperative-sticky the callbacks carry only the increment; this
        is the whole set the member owns afterwards)
  {"event":"record","partition":P,"offset":O,"value":V,"t":ms}
  {"event":"committed","partitions":[[P,next],...],"t":ms}
  {"event":"closed","t":ms}                  after close() on SIGTERM

It exits by itself after --lifetime-ms so a forgotten process cannot linger.

Usage: confluent_member.py BOOTSTRAP TOPIC GROUP [--strategy range|roundrobin|cooperative-sticky]
       [--session-timeout-ms N] [--sleep-every N] [--lifetime-ms N] [--instance-id ID]
"""
import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("bootstrap")
    parser.add_argument("topic")
    parser.add_argument("group")
    parser.add_argument("--strategy", default="range")
    parser.add_argument("--session-timeout-ms", type=int, default=10000)
    parser.add_argument("--sleep-every", type=int, default=0)
    parser.add_argument("--lifetime-ms", type=int, default=240000)
    parser.add_argument("--instance-id", default=None, help="group.instance.id: static membership")
    parser.add_argument("--debug", default=None, help="librdkafka debug contexts, logged to stderr")
    args = parser.parse_args()

    def emit(event, **fields):
        fields.update(event=event, t=int(time.time() * 1000))
        sys.stdout.write(json.dumps(fields) + "\n")
        sys.stdout.flush()

    owned = set()

    def on_assign(consumer, partitions):
        added = sorted(p.partition for p in partitions)
        owned.update(added)
        emit("owned", partitions=sorted(owned), added=added, removed=[])

    def on_revoke(consumer, partitions):
        removed = sorted(p.partition for p in partitions)
        owned.difference_update(removed)
        emit("owned", partitions=sorted(owned), added=[], removed=removed)

    def on_lost(consumer, partitions):
        # librdkafka decided the assignment was lost (a fatal group error), not asked to give it up.
        emit("lost", partitions=sorted(p.partition for p in partitions))
        on_revoke(consumer, partitions)

    config = {
        "bootstrap.servers": args.bootstrap,
        "group.id": args.group,
        "client.id": "confluent-member",
        "partition.assignment.strategy": args.strategy,
        "session.timeout.ms": args.session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "topic.metadata.refresh.interval.ms": 2000,
    }
    if args.instance_id:
        config["group.instance.id"] = args.instance_id
    if args.debug:
        config["debug"] = args.debug
    consumer = Consumer(config)
    consumer.subscribe([args.topic], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)

    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    deadline = time.time() + args.lifetime_ms / 1000
    processed = 0
    while not stopping and time.time() < deadline:
        message = consumer.poll(0.1)
        if message is None:
            continue
        if message.error():
            emit("error", error=str(message.error()))
            continue
        emit("record", partition=message.partition(), offset=message.offset(), value=message.value().decode())
        processed += 1
        if args.sleep_every and processed % args.sleep_every == 0:
            time.sleep(0.001)
        try:
            committed = consumer.commit(message=message, asynchronous=False)
            emit("committed", partitions=[[tp.partition, tp.offset] for tp in committed if tp.error is None])
        except KafkaException as err:
            # A commit refused during a rebalance: the record will be read again by its next owner.
            emit("commit-failed", partition=message.partition(), offset=message.offset(), error=str(err))
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()
