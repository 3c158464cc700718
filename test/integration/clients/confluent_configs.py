"""Alters and describes a topic's configs with python confluent-kafka's AdminClient (librdkafka),
and prints one JSON line per action.

Usage: confluent_configs.py BOOTSTRAP TOPIC alter KEY=VALUE [KEY=VALUE ...]
       confluent_configs.py BOOTSTRAP TOPIC describe
alter prints {"ok": true} or {"ok": false, "error": "...", "code": N};
describe prints {"configs": {name: [value, source, is_default, synonyms]}} with each synonym as
[name, value, source].
"""
import json
import sys

from confluent_kafka.admin import AdminClient, ConfigResource


def main():
    bootstrap, topic, action = sys.argv[1], sys.argv[2], sys.argv[3]
    admin = AdminClient({"bootstrap.servers": bootstrap})
    resource = ConfigResource(ConfigResource.Type.TOPIC, topic)
    if action == "alter":
        for pair in sys.argv[4:]:
            key, value = pair.split("=", 1)
            resource.set_config(key, value)
        future = admin.alter_configs([resource], request_timeout=20)[resource]
        try:
            future.result(timeout=30)
            print(json.dumps({"ok": True}))
        except Exception as exc:  # KafkaException carrying the broker's error
            error = exc.args[0] if exc.args else exc
            code = error.code() if hasattr(error, "code") else -1
            text = error.str() if hasattr(error, "str") else str(error)
            print(json.dumps({"ok": False, "error": text, "code": code}))
    elif action == "describe":
        described = admin.describe_configs([resource], request_timeout=20)[resource].result(timeout=30)
        print(json.dumps({"configs": {
            name: [entry.value, entry.source, entry.is_default,
                   [[s.name, s.value, s.source] for s in entry.synonyms.values()]]
            for name, entry in described.items()
        }}))
    else:
        raise SystemExit("unknown action %s" % action)


if __name__ == "__main__":
    main()
