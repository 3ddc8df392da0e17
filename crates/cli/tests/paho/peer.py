"""Helpers for the paho-mqtt peers that crates/cli/tests/interop_paho.rs runs against tern.

Each script takes PORT and VERSION ("3.1.1" or "5"), drives paho-mqtt 2.x clients against
the broker on 127.0.0.1:PORT, prints what they observed as one JSON object and exits 0. On a
timeout or any error it prints the reason to stderr and exits 1. The Rust test makes the
assertions; the scripts only report. Every wait is bounded by TIMEOUT.
"""

import json
import queue
import sys

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

TIMEOUT = 5.0


class Failure(Exception):
    """The broker did not answer as the peer expected, or not in time."""


def run(main):
    """Calls main(port, v5) and prints its result as JSON; exits 1 with a message on error."""
    if len(sys.argv) != 3 or sys.argv[2] not in ("3.1.1", "5"):
        print(f"usage: {sys.argv[0]} PORT 3.1.1|5", file=sys.stderr)
        sys.exit(2)
    try:
        result = main(int(sys.argv[1]), sys.argv[2] == "5")
    except Exception as error:  # noqa: BLE001 - every failure is reported the same way
        print(f"{sys.argv[0]}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


def properties(packet_type, **values):
    """A Properties object of packet_type with the given MQTT 5.0 properties set."""
    props = Properties(packet_type)
    for name, value in values.items():
        setattr(props, name, value)
    return props


def take(events, what):
    """The next event from a queue, or Failure after TIMEOUT."""
    try:
        return events.get(timeout=TIMEOUT)
    except queue.Empty:
        raise Failure(f"no {what} within {TIMEOUT} s") from None


class Peer:
    """One paho-mqtt client whose callbacks feed queues that the script waits on."""

    def __init__(self, port, v5, client_id, clean=True, expiry=None, will=None):
        self.port = port
        self.v5 = v5
        self.clean = clean
        self.expiry = expiry
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=client_id,
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else clean,
            reconnect_on_failure=False,
        )
        self.connacks = queue.Queue()
        self.subacks = queue.Queue()
        self.messages = queue.Queue()
        self.disconnects = queue.Queue()
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags, rc))
        self.client.on_subscribe = lambda c, u, mid, codes, p: self.subacks.put(codes)
        self.client.on_message = lambda c, u, message: self.messages.put(message)
        self.client.on_disconnect = lambda c, u, flags, rc, p: self.disconnects.put(rc)
        if will is not None:
            self.client.will_set(**will)

    def connect(self):
        """Connects and returns the CONNACK's Session Present flag."""
        kwargs = {}
        if self.v5:
            kwargs["clean_start"] = self.clean
            if self.expiry is not None:
                kwargs["properties"] = properties(
                    PacketTypes.CONNECT, SessionExpiryInterval=self.expiry
                )
        self.client.connect("127.0.0.1", self.port, keepalive=30, **kwargs)
        self.client.loop_start()
        flags, reason = take(self.connacks, "CONNACK")
        if reason.is_failure:
            raise Failure(f"CONNACK refused the connection: {reason}")
        return bool(flags.session_present)

    def subscribe(self, topic, qos, **options):
        """Subscribes and returns the SUBACK's codes (granted QoS or failure codes)."""
        if self.v5:
            result, _ = self.client.subscribe(topic, options=SubscribeOptions(qos, **options))
        else:
            result, _ = self.client.subscribe(topic, qos)
        if result != mqtt.MQTT_ERR_SUCCESS:
            raise Failure(f"SUBSCRIBE not sent: {result}")
        return [code.value for code in take(self.subacks, "SUBACK")]

    def publish(self, topic, payload, qos, retain=False, props=None):
        """Publishes and waits until the QoS exchange with the broker is complete."""
        info = self.client.publish(topic, payload, qos, retain, props)
        info.wait_for_publish(TIMEOUT)
        if not info.is_published():
            raise Failure(f"PUBLISH to {topic} at QoS {qos} not acknowledged in time")

    def message(self):
        """The next message received, as a dict."""
        message = take(self.messages, "PUBLISH")
        received = {
            "topic": message.topic,
            "payload": message.payload.decode(),
            "qos": message.qos,
            "retain": bool(message.retain),
        }
        props = getattr(message, "properties", None)
        if self.v5 and props is not None:
            received["user_properties"] = [list(p) for p in getattr(props, "UserProperty", [])]
            received["content_type"] = getattr(props, "ContentType", None)
        return received

    def disconnect(self):
        """Sends DISCONNECT (reason 0x00) and waits for the connection to close."""
        self.client.disconnect()
        take(self.disconnects, "disconnection")
        self.client.loop_stop()

    def drop(self):
        """Closes the socket without a DISCONNECT, as a crashed client would."""
        self.client.loop_stop()
        self.client.socket().close()
