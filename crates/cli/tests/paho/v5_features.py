"""MQTT 5.0 features through paho-mqtt's v5 client, one function per feature.

Usage: v5_features.py PORT FEATURE. Runs FEATURE against the broker on 127.0.0.1:PORT and
prints what the clients observed as one JSON object; crates/cli/tests/interop_paho_v5.rs makes
the assertions. Exits 1 with the reason on stderr on a timeout or any error. Every wait is
bounded (peer.TIMEOUT, or the short quiet periods below).
"""

import json
import queue
import sys
import time

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.subscribeoptions import SubscribeOptions

from peer import Failure, Peer, properties, take

# How long "nothing more arrives" is watched for.
QUIET = 0.5

FEATURES = {}


def feature(function):
    """Registers a feature under its function's name."""
    FEATURES[function.__name__] = function
    return function


def describe(message):
    """A received PUBLISH as a dict, with every MQTT 5.0 property paho exposes."""
    received = {
        "topic": message.topic,
        "payload": message.payload.decode(errors="replace"),
        "qos": message.qos,
        "retain": bool(message.retain),
    }
    props = getattr(message, "properties", None)
    for name in (
        "MessageExpiryInterval",
        "SubscriptionIdentifier",
        "TopicAlias",
        "ResponseTopic",
        "ContentType",
        "PayloadFormatIndicator",
    ):
        value = getattr(props, name, None)
        if value is not None:
            received[name] = value
    correlation = getattr(props, "CorrelationData", None)
    if correlation is not None:
        received["CorrelationData"] = correlation.decode()
    users = getattr(props, "UserProperty", None)
    if users:
        received["UserProperty"] = [list(pair) for pair in users]
    return received


class V5(Peer):
    """A paho-mqtt MQTT 5.0 client with CONNECT properties, PUBACK and UNSUBACK codes."""

    def __init__(self, port, client_id, clean=True, expiry=None, will=None,
                 connect_props=None, manual_ack=False):
        super().__init__(port, True, client_id, clean=clean, expiry=expiry, will=will)
        self.connect_props = dict(connect_props or {})
        self.pubacks = queue.Queue()
        self.unsubacks = queue.Queue()
        self.logs = []
        self.connack_properties = {}
        self.client.on_connect = lambda c, u, flags, rc, p: self.connacks.put((flags, rc, p))
        self.client.on_publish = lambda c, u, mid, rc, p: self.pubacks.put(rc.value)
        self.client.on_unsubscribe = lambda c, u, mid, codes, p: self.unsubacks.put(
            [code.value for code in codes])
        self.client.on_log = lambda c, u, level, text: self.logs.append(text)
        if manual_ack:
            self.client.manual_ack_set(True)

    def try_connect(self):
        """Sends CONNECT; returns the CONNACK's reason code and session present flag."""
        props = dict(self.connect_props)
        if self.expiry is not None:
            props["SessionExpiryInterval"] = self.expiry
        kwargs = {"clean_start": self.clean}
        if props:
            kwargs["properties"] = properties(PacketTypes.CONNECT, **props)
        self.client.connect("127.0.0.1", self.port, keepalive=30, **kwargs)
        self.client.loop_start()
        flags, reason, props = take(self.connacks, "CONNACK")
        self.connack_properties = props.json() if props is not None else {}
        return reason.value, bool(flags.session_present)

    def connect(self):
        """Connects and returns Session Present; Failure if refused."""
        reason, present = self.try_connect()
        if reason >= 0x80:
            raise Failure(f"CONNACK refused the connection: {reason:#x}")
        return present

    def subscribe_with(self, topic, qos, props=None, **options):
        """Subscribes with options and SUBSCRIBE properties; returns the SUBACK codes."""
        self.client.subscribe(topic, options=SubscribeOptions(qos, **options), properties=props)
        return [code.value for code in take(self.subacks, "SUBACK")]

    def publish_v5(self, topic, payload, qos, retain=False, **props):
        """Publishes with PUBLISH properties; for QoS 1 returns the PUBACK reason code."""
        packet_props = properties(PacketTypes.PUBLISH, **props) if props else None
        info = self.client.publish(topic, payload, qos, retain, packet_props)
        if qos == 0:
            info.wait_for_publish(5)
            return None
        return take(self.pubacks, "PUBACK")

    def raw_message(self):
        """The next message as paho's object."""
        return take(self.messages, "PUBLISH")

    def message(self):
        """The next message, described."""
        return describe(self.raw_message())

    def quiet(self, wait=QUIET):
        """Messages that arrive within `wait` seconds (the caller expects none)."""
        deadline = time.monotonic() + wait
        extra = []
        while (left := deadline - time.monotonic()) > 0:
            try:
                extra.append(describe(self.messages.get(timeout=left)))
            except queue.Empty:
                break
        return extra


@feature
def session_expiry(port):
    """A session resumed within its expiry keeps its subscription and queued QoS 1 message;
    once a 1 s expiry has passed, it is gone."""
    first = V5(port, "v5-session", clean=False, expiry=60)
    result = {"first_present": first.connect()}
    first.subscribe_with("v5/session/#", 1)
    first.disconnect()
    pub = V5(port, "v5-session-pub")
    pub.connect()
    pub.publish_v5("v5/session/x", "while away", 1)
    pub.disconnect()
    again = V5(port, "v5-session", clean=False, expiry=1)
    result["resumed_present"] = again.connect()
    result["queued"] = again.message()
    again.disconnect()
    time.sleep(2.5)
    late = V5(port, "v5-session", clean=False, expiry=60)
    result["after_expiry_present"] = late.connect()
    late.disconnect()
    return result


@feature
def message_expiry(port):
    """Queued messages whose expiry passed are not delivered; the others carry the
    remaining interval."""
    sub = V5(port, "v5-expiry", clean=False, expiry=60)
    sub.connect()
    sub.subscribe_with("v5/expiry/#", 1)
    sub.disconnect()
    pub = V5(port, "v5-expiry-pub")
    pub.connect()
    pub.publish_v5("v5/expiry/short", "soon gone", 1, MessageExpiryInterval=1)
    pub.publish_v5("v5/expiry/long", "still here", 1, MessageExpiryInterval=60)
    pub.disconnect()
    time.sleep(2.2)
    again = V5(port, "v5-expiry", clean=False, expiry=60)
    again.connect()
    result = {"delivered": again.message(), "more": again.quiet()}
    again.disconnect()
    return result


@feature
def topic_alias(port):
    """The broker resolves a publisher's Topic Alias, and uses its own towards a client that
    allows them (paho hands such messages over with an empty topic and the alias)."""
    aliased = V5(port, "v5-alias-sub", connect_props={"TopicAliasMaximum": 5})
    aliased.connect()
    aliased.subscribe_with("v5/alias/#", 0)
    plain = V5(port, "v5-alias-plain")
    plain.connect()
    plain.subscribe_with("v5/alias/#", 0)
    pub = V5(port, "v5-alias-pub")
    pub.connect()
    result = {"broker_topic_alias_maximum": pub.connack_properties.get("TopicAliasMaximum")}
    pub.publish_v5("v5/alias/topic", "one", 0, TopicAlias=1)
    pub.publish_v5("", "two", 0, TopicAlias=1)
    result["plain"] = [plain.message(), plain.message()]
    result["aliased"] = [aliased.message(), aliased.message()]
    for peer in (pub, plain, aliased):
        peer.disconnect()
    return result


@feature
def subscription_identifiers(port):
    """A message matching two subscriptions arrives once with both identifiers."""
    sub = V5(port, "v5-ids")
    sub.connect()
    sub.subscribe_with("v5/ids/+", 1, properties(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=7))
    sub.subscribe_with("v5/ids/#", 1, properties(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=9))
    sub.publish_v5("v5/ids/a", "both", 1)
    result = {"message": sub.message(), "more": sub.quiet()}
    sub.disconnect()
    return result


@feature
def no_local(port):
    """With No Local a client does not get its own messages, only others'."""
    sub = V5(port, "v5-nolocal")
    sub.connect()
    sub.subscribe_with("v5/nolocal", 1, noLocal=True)
    other = V5(port, "v5-nolocal-other")
    other.connect()
    sub.publish_v5("v5/nolocal", "mine", 1)
    other.publish_v5("v5/nolocal", "theirs", 1)
    result = {"first": sub.message(), "more": sub.quiet()}
    sub.disconnect()
    other.disconnect()
    return result


@feature
def retain_as_published(port):
    """A live retained message keeps RETAIN 1 only for Retain As Published subscriptions."""
    kept = V5(port, "v5-rap-kept")
    kept.connect()
    kept.subscribe_with("v5/rap", 1, retainAsPublished=True)
    cleared = V5(port, "v5-rap-cleared")
    cleared.connect()
    cleared.subscribe_with("v5/rap", 1)
    pub = V5(port, "v5-rap-pub")
    pub.connect()
    pub.publish_v5("v5/rap", "retained", 1, retain=True)
    result = {"as_published": kept.message(), "default": cleared.message()}
    pub.publish_v5("v5/rap", "", 1, retain=True)
    for peer in (kept, cleared, pub):
        peer.disconnect()
    return result


@feature
def retain_handling(port):
    """Retain Handling 0 sends retained messages on every subscribe, 1 only when the
    subscription is new, 2 never."""
    pub = V5(port, "v5-rh-pub")
    pub.connect()
    pub.publish_v5("v5/rh", "kept", 1, retain=True)
    result = {}
    for handling in (0, 1, 2):
        sub = V5(port, f"v5-rh-{handling}")
        sub.connect()
        counts = []
        for _ in range(2):
            sub.subscribe_with("v5/rh", 1, retainHandling=handling)
            counts.append(len(sub.quiet()))
        result[f"handling_{handling}"] = counts
        sub.disconnect()
    pub.publish_v5("v5/rh", "", 1, retain=True)
    pub.disconnect()
    return result


@feature
def shared_subscriptions(port):
    """Each message to a shared group goes to one member; a plain subscriber gets all."""
    members = [V5(port, f"v5-shared-{n}") for n in range(2)]
    for member in members:
        member.connect()
        member.subscribe_with("$share/group/v5/shared/#", 1)
    everyone = V5(port, "v5-shared-all")
    everyone.connect()
    everyone.subscribe_with("v5/shared/#", 1)
    pub = V5(port, "v5-shared-pub")
    pub.connect()
    for n in range(10):
        pub.publish_v5(f"v5/shared/{n}", str(n), 1)
    result = {"all": sorted(everyone.message()["payload"] for _ in range(10))}
    per_member = [[m["payload"] for m in member.quiet(1.0)] for member in members]
    result["members"] = [sorted(p) for p in per_member]
    for peer in members + [everyone, pub]:
        peer.disconnect()
    return result


@feature
def request_response(port):
    """Response Topic, Correlation Data, Content Type and Payload Format Indicator reach the
    responder unchanged; its answer reaches the requester."""
    requester = V5(port, "v5-requester")
    requester.connect()
    requester.subscribe_with("v5/reply/requester", 1)
    responder = V5(port, "v5-responder")
    responder.connect()
    responder.subscribe_with("v5/request", 1)
    requester.publish_v5(
        "v5/request", '{"q":1}', 1,
        ResponseTopic="v5/reply/requester", CorrelationData=b"corr-42",
        ContentType="application/json", PayloadFormatIndicator=1,
    )
    request = responder.raw_message()
    props = request.properties
    responder.publish_v5(props.ResponseTopic, '{"a":2}', 1, CorrelationData=props.CorrelationData)
    result = {"request": describe(request), "response": requester.message()}
    requester.disconnect()
    responder.disconnect()
    return result


@feature
def user_properties_order(port):
    """User Properties arrive in the order sent, repeated names included."""
    sub = V5(port, "v5-users")
    sub.connect()
    sub.subscribe_with("v5/users", 1)
    pairs = [("b", "1"), ("a", "2"), ("b", "3")]
    sub.publish_v5("v5/users", "props", 1, UserProperty=pairs)
    result = {"message": sub.message()}
    sub.disconnect()
    return result


def will_peer(port, delay):
    """A client with a session of 60 s and a will delayed by `delay` seconds."""
    will = {
        "topic": "v5/will/delayed",
        "payload": "late",
        "qos": 1,
        "properties": properties(PacketTypes.WILLMESSAGE, WillDelayInterval=delay),
    }
    return V5(port, "v5-will", clean=False, expiry=60, will=will)


@feature
def will_delay(port):
    """A delayed will is published once its interval has passed, not before."""
    watcher = V5(port, "v5-will-watcher")
    watcher.connect()
    watcher.subscribe_with("v5/will/#", 1)
    client = will_peer(port, 2)
    client.connect()
    client.drop()
    dropped = time.monotonic()
    result = {"early": watcher.quiet(1.0)}
    result["will"] = watcher.message()
    result["after_seconds"] = round(time.monotonic() - dropped, 1)
    watcher.disconnect()
    return result


@feature
def will_delay_cancelled(port):
    """Resuming the session before the Will Delay Interval ends cancels the will."""
    watcher = V5(port, "v5-will-watcher")
    watcher.connect()
    watcher.subscribe_with("v5/will/#", 1)
    client = will_peer(port, 2)
    client.connect()
    client.drop()
    back = V5(port, "v5-will", clean=False, expiry=60)
    result = {"resumed_present": back.connect()}
    result["wills"] = watcher.quiet(3.0)
    back.disconnect()
    watcher.disconnect()
    return result


@feature
def receive_maximum(port):
    """The broker sends at most Receive Maximum unacknowledged QoS 1 messages; an
    acknowledgement lets the next one go. The CONNACK tells the broker's own."""
    sub = V5(port, "v5-rm", connect_props={"ReceiveMaximum": 2}, manual_ack=True)
    sub.connect()
    result = {"broker_receive_maximum": sub.connack_properties.get("ReceiveMaximum")}
    sub.subscribe_with("v5/rm", 1)
    pub = V5(port, "v5-rm-pub")
    pub.connect()
    for n in range(5):
        pub.publish_v5("v5/rm", str(n), 1)
    first = [sub.raw_message(), sub.raw_message()]
    result["first"] = [m.payload.decode() for m in first]
    result["before_ack"] = sub.quiet()
    sub.client.ack(first[0].mid, 1)
    result["after_ack"] = sub.message()["payload"]
    result["still_held"] = sub.quiet()
    pub.disconnect()
    sub.client.loop_stop()
    return result


@feature
def payload_format(port):
    """A QoS 1 PUBLISH marked UTF-8 whose payload is not gets PUBACK 0x99 and is not
    delivered; a valid one gets 0x00."""
    sub = V5(port, "v5-pf")
    sub.connect()
    sub.subscribe_with("v5/pf", 1)
    result = {
        "invalid": sub.publish_v5("v5/pf", b"\xff\xfe", 1, PayloadFormatIndicator=1),
        "valid": sub.publish_v5("v5/pf", "text", 1, PayloadFormatIndicator=1),
    }
    result["delivered"] = sub.message()
    result["more"] = sub.quiet()
    sub.disconnect()
    return result


@feature
def suback_unsuback_codes(port):
    """SUBACK and UNSUBACK reason codes, against a broker configured with Maximum QoS 1, no
    wildcards, no shared subscriptions, no subscription identifiers and 4 topic levels."""
    sub = V5(port, "v5-codes")
    sub.connect()
    result = {
        "maximum_qos": sub.connack_properties.get("MaximumQoS"),
        "granted": sub.subscribe_with("v5/codes/a", 2),
        "wildcard": sub.subscribe_with("v5/codes/+", 0),
        "shared": sub.subscribe_with("$share/g/v5/codes", 0),
        "too_deep": sub.subscribe_with("a/b/c/d/e", 0),
        "identifier": sub.subscribe_with(
            "v5/codes/b", 0, properties(PacketTypes.SUBSCRIBE, SubscriptionIdentifier=3)),
    }
    sub.client.unsubscribe(["v5/codes/a", "v5/never"])
    result["unsuback"] = take(sub.unsubacks, "UNSUBACK")
    sub.disconnect()
    return result


@feature
def enhanced_auth(port):
    """Against a broker offering SCRAM-SHA-256: an unknown method gets CONNACK 0x8C with a
    Reason String (none with Request Problem Information 0); SCRAM-SHA-256 gets AUTH 0x18,
    which paho-mqtt 2.x cannot handle (no AUTH support): it logs an unrecognised command."""
    result = {}
    for name, extra in (("unknown", {}), ("unknown_quiet", {"RequestProblemInformation": 0})):
        peer = V5(port, f"v5-auth-{name}",
                  connect_props={"AuthenticationMethod": "NOT-OFFERED", **extra})
        reason, _ = peer.try_connect()
        result[name] = {"reason": reason,
                        "reason_string": peer.connack_properties.get("ReasonString")}
        peer.client.loop_stop()
    scram = V5(port, "v5-auth-scram", connect_props={
        "AuthenticationMethod": "SCRAM-SHA-256",
        "AuthenticationData": b"n,,n=user,r=paho-nonce",
    })
    scram.client.connect("127.0.0.1", port, keepalive=30, clean_start=True,
                         properties=properties(PacketTypes.CONNECT, **scram.connect_props))
    scram.client.loop_start()
    take(scram.disconnects, "disconnection after AUTH")
    scram.client.loop_stop()
    result["scram_connack"] = not scram.connacks.empty()
    result["scram_log"] = [line for line in scram.logs if "Unrecognised command" in line]
    return result


def main():
    if len(sys.argv) != 3 or sys.argv[2] not in FEATURES:
        print(f"usage: {sys.argv[0]} PORT {'|'.join(FEATURES)}", file=sys.stderr)
        sys.exit(2)
    try:
        result = FEATURES[sys.argv[2]](int(sys.argv[1]))
    except Exception as error:  # noqa: BLE001 - every failure is reported the same way
        print(f"{sys.argv[0]} {sys.argv[2]}: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


main()
