"""A confluent-kafka (librdkafka) consumer-group member that commits the way most applications
do: enable.auto.commit with enable.auto.offset.store off, storing each record's offset only
after handling it (at-least-once). librdkafka then commits the stored offsets every
--commit-interval-ms, when partitions are revoked and in close(). The sibling
confluent_member.py commits synchronously after every record instead.

It speaks the events test/helpers/group-member-process.ts parses, one JSON line each, flushed:
  {"event":"owned","partitions":[...],"added":[...],"removed":[...],"t":ms}
        after each assign/revoke/lost callback: `partitions` is everything owned afterwards
        (eager callbacks carry the whole set, cooperative-sticky ones only the change)
  {"event":"record","partition":P,"offset":O,"value":V,"t":ms}   after handling, before storing
  {"event":"committed","partitions":[[P,next],...],"t":ms}       a commit the broker acknowledged
        (librdkafka's offset-commit callback; it runs inside consume(), so `t` is no earlier
        than the acknowledgement)
  {"event":"commit-failed","error":E,"t":ms}
  {"event":"closed","t":ms}                                      after close() returned
SIGTERM makes it close() (committing what it stored, leaving the group) and exit 0. It exits by
itself after --lifetime-ms, so a forgotten process cannot linger.

Usage: confluent_group_member.py BOOTSTRAP TOPIC GROUP [--strategy range|roundrobin|cooperative-sticky]
       [--session-timeout-ms N] [--commit-interval-ms N] [--sleep-every N] [--lifetime-ms N]
"""
import argparse
import json
import signal
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException


def emit(event, **fields):
    fields["event"] = event
    fields["t"] = int(time.time() * 1000)
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


class Ownership:
    """What the member owns, reported after every rebalance callback."""

    def __init__(self):
        self.partitions = set()

    def gained(self, consumer, tps):
        added = sorted(tp.partition for tp in tps)
        self.partitions.update(added)
        emit("owned", partitions=sorted(self.partitions), added=added, removed=[])

    def lost(self, consumer, tps):
        removed = sorted(tp.partition for tp in tps)
        self.partitions.difference_update(removed)
        emit("owned", partitions=sorted(self.partitions), added=[], removed=removed)


def on_commit(err, tps):
    if err is not None:
        # _NO_OFFSET: nothing was stored since the last commit, so nothing was sent.
        if err.code() != KafkaError._NO_OFFSET:
            emit("commit-failed", error=str(err))
        return
    done = [[tp.partition, tp.offset] for tp in tps if tp.error is None and tp.offset >= 0]
    if done:
        emit("committed", partitions=done)


def handle(consumer, msg):
    emit("record", partition=msg.partition(), offset=msg.offset(), value=msg.value().decode())
    try:
        consumer.store_offsets(message=msg)
    except KafkaException as err:
        # Only if the partition was taken away meanwhile; its next owner reads the record again.
        emit("store-failed", partition=msg.partition(), offset=msg.offset(), error=str(err))


def main():
    cli = argparse.ArgumentParser()
    cli.add_argument("bootstrap")
    cli.add_argument("topic")
    cli.add_argument("group")
    cli.add_argument("--strategy", default="range")
    cli.add_argument("--session-timeout-ms", type=int, default=10000)
    cli.add_argument("--commit-interval-ms", type=int, default=1000)
    cli.add_argument("--sleep-every", type=int, default=0, help="sleep 1 ms after every N records")
    cli.add_argument("--lifetime-ms", type=int, default=240000)
    opts = cli.parse_args()

    consumer = Consumer({
        "bootstrap.servers": opts.bootstrap,
        "group.id": opts.group,
        "client.id": "confluent-group-member",
        "partition.assignment.strategy": opts.strategy,
        "session.timeout.ms": opts.session_timeout_ms,
        "heartbeat.interval.ms": 500,
        "enable.auto.commit": True,
        "enable.auto.offset.store": False,
        "auto.commit.interval.ms": opts.commit_interval_ms,
        "auto.offset.reset": "earliest",
        "fetch.wait.max.ms": 100,
        "on_commit": on_commit,
    })
    ownership = Ownership()
    consumer.subscribe([opts.topic], on_assign=ownership.gained, on_revoke=ownership.lost, on_lost=ownership.lost)

    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append("SIGTERM"))
    give_up_at = time.monotonic() + opts.lifetime_ms / 1000
    handled = 0
    # consume() hands over what the fetcher has, up to 100 records, and serves the callbacks.
    while not stop and time.monotonic() < give_up_at:
        for msg in consumer.consume(num_messages=100, timeout=0.1):
            if msg.error():
                emit("error", error=str(msg.error()))
            else:
                handle(consumer, msg)
                handled += 1
                if opts.sleep_every and handled % opts.sleep_every == 0:
                    time.sleep(0.001)
    consumer.close()
    emit("closed")


if __name__ == "__main__":
    main()
