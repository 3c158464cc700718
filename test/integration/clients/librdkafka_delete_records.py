"""Deletes records with librdkafka's own DeleteRecords admin call (rd_kafka_DeleteRecords), through
ctypes on Debian's librdkafka.so.1: the python confluent-kafka binding in Debian 12 (1.7.0) has no
delete_records, but the librdkafka 2.0.2 under it does. Prints one JSON line:
{"ok": true, "low_watermarks": {partition: offset}} or {"ok": false, "error": "...", "partition_errors": {...}}.

Usage: librdkafka_delete_records.py BOOTSTRAP TOPIC PARTITION:OFFSET [PARTITION:OFFSET ...]
"""
import ctypes
import json
import sys

lib = ctypes.CDLL("librdkafka.so.1")


class TopicPartition(ctypes.Structure):
    # rd_kafka_topic_partition_t, as rdkafka.h declares it.
    _fields_ = [
        ("topic", ctypes.c_char_p),
        ("partition", ctypes.c_int32),
        ("offset", ctypes.c_int64),
        ("metadata", ctypes.c_void_p),
        ("metadata_size", ctypes.c_size_t),
        ("opaque", ctypes.c_void_p),
        ("err", ctypes.c_int),
        ("_private", ctypes.c_void_p),
    ]


class TopicPartitionList(ctypes.Structure):
    _fields_ = [("cnt", ctypes.c_int), ("size", ctypes.c_int), ("elems", ctypes.POINTER(TopicPartition))]


P = ctypes.c_void_p
lib.rd_kafka_conf_new.restype = P
lib.rd_kafka_conf_set.argtypes = [P, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_size_t]
lib.rd_kafka_new.restype = P
lib.rd_kafka_new.argtypes = [ctypes.c_int, P, ctypes.c_char_p, ctypes.c_size_t]
lib.rd_kafka_topic_partition_list_new.restype = ctypes.POINTER(TopicPartitionList)
lib.rd_kafka_topic_partition_list_add.restype = ctypes.POINTER(TopicPartition)
lib.rd_kafka_topic_partition_list_add.argtypes = [ctypes.POINTER(TopicPartitionList), ctypes.c_char_p, ctypes.c_int32]
lib.rd_kafka_DeleteRecords_new.restype = P
lib.rd_kafka_DeleteRecords_new.argtypes = [ctypes.POINTER(TopicPartitionList)]
lib.rd_kafka_queue_new.restype = P
lib.rd_kafka_queue_new.argtypes = [P]
lib.rd_kafka_AdminOptions_new.restype = P
lib.rd_kafka_AdminOptions_new.argtypes = [P, ctypes.c_int]
lib.rd_kafka_AdminOptions_set_operation_timeout.argtypes = [P, ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t]
lib.rd_kafka_DeleteRecords.argtypes = [P, ctypes.POINTER(P), ctypes.c_size_t, P, P]
lib.rd_kafka_queue_poll.restype = P
lib.rd_kafka_queue_poll.argtypes = [P, ctypes.c_int]
lib.rd_kafka_event_error.argtypes = [P]
lib.rd_kafka_event_error_string.restype = ctypes.c_char_p
lib.rd_kafka_event_error_string.argtypes = [P]
lib.rd_kafka_event_DeleteRecords_result.restype = P
lib.rd_kafka_event_DeleteRecords_result.argtypes = [P]
lib.rd_kafka_DeleteRecords_result_offsets.restype = ctypes.POINTER(TopicPartitionList)
lib.rd_kafka_DeleteRecords_result_offsets.argtypes = [P]
lib.rd_kafka_err2name.restype = ctypes.c_char_p
lib.rd_kafka_event_destroy.argtypes = [P]
lib.rd_kafka_destroy.argtypes = [P]
lib.rd_kafka_queue_destroy.argtypes = [P]
lib.rd_kafka_AdminOptions_destroy.argtypes = [P]
lib.rd_kafka_DeleteRecords_destroy.argtypes = [P]

RD_KAFKA_PRODUCER = 0
RD_KAFKA_ADMIN_OP_DELETERECORDS = 6


def main():
    bootstrap, topic = sys.argv[1], sys.argv[2].encode()
    errstr = ctypes.create_string_buffer(512)
    conf = lib.rd_kafka_conf_new()
    if lib.rd_kafka_conf_set(conf, b"bootstrap.servers", bootstrap.encode(), errstr, 512) != 0:
        raise SystemExit(errstr.value.decode())
    rk = lib.rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, 512)
    if not rk:
        raise SystemExit(errstr.value.decode())
    offsets = lib.rd_kafka_topic_partition_list_new(len(sys.argv) - 3)
    for pair in sys.argv[3:]:
        partition, offset = pair.split(":")
        lib.rd_kafka_topic_partition_list_add(offsets, topic, int(partition)).contents.offset = int(offset)
    request = lib.rd_kafka_DeleteRecords_new(offsets)
    lib.rd_kafka_topic_partition_list_destroy(offsets)
    options = lib.rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_DELETERECORDS)
    lib.rd_kafka_AdminOptions_set_operation_timeout(options, 20000, errstr, 512)
    queue = lib.rd_kafka_queue_new(rk)
    lib.rd_kafka_DeleteRecords(rk, (P * 1)(request), 1, options, queue)
    event = lib.rd_kafka_queue_poll(queue, 30000)
    if not event:
        print(json.dumps({"ok": False, "error": "no DeleteRecords result within 30 s"}))
        return
    if lib.rd_kafka_event_error(event) != 0:
        print(json.dumps({"ok": False, "error": lib.rd_kafka_event_error_string(event).decode()}))
        return
    result = lib.rd_kafka_DeleteRecords_result_offsets(lib.rd_kafka_event_DeleteRecords_result(event)).contents
    low, errors = {}, {}
    for i in range(result.cnt):
        element = result.elems[i]
        if element.err != 0:
            errors[element.partition] = lib.rd_kafka_err2name(element.err).decode()
        else:
            low[element.partition] = element.offset
    print(json.dumps({"ok": not errors, "low_watermarks": low, "partition_errors": errors}))
    lib.rd_kafka_event_destroy(event)
    lib.rd_kafka_queue_destroy(queue)
    lib.rd_kafka_AdminOptions_destroy(options)
    lib.rd_kafka_DeleteRecords_destroy(request)
    lib.rd_kafka_destroy(rk)


if __name__ == "__main__":
    main()
