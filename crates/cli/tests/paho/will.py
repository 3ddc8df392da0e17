"""Wills: one client disconnects normally (its will must be discarded), then another closes
its socket without DISCONNECT (its will must be published). Reports the first will seen;
with MQTT 5.0 the will carries properties that must be forwarded.
"""

from peer import Peer, PacketTypes, properties, run


def main(port, v5):
    watcher = Peer(port, v5, "paho-will-watcher")
    watcher.connect()
    watcher.subscribe("paho/will/#", 1)

    clean_will = {"topic": "paho/will/clean", "payload": "wrong", "qos": 1}
    clean = Peer(port, v5, "paho-will-clean", will=clean_will)
    clean.connect()
    clean.disconnect()

    abrupt_will = {"topic": "paho/will/abrupt", "payload": "gone", "qos": 1}
    if v5:
        abrupt_will["properties"] = properties(
            PacketTypes.WILLMESSAGE,
            UserProperty=[("first", "1"), ("second", "2")],
            ContentType="text/plain",
        )
    abrupt = Peer(port, v5, "paho-will-abrupt", will=abrupt_will)
    abrupt.connect()
    abrupt.drop()

    first = watcher.message()
    watcher.disconnect()
    return {"first_will": first}


run(main)
