"""Retained messages: live and later subscribers, Retain As Published and Retain Handling
(MQTT 5.0), replacement and removal by an empty retained message.

A non-retained marker published after each subscription shows, without waiting for a
timeout, whether a retained message was sent: it would arrive before the marker.
"""

from peer import Failure, Peer, run

TOPIC = "paho/retained/lamp"


def first_two(peer, pub):
    """The first message a just-subscribed peer gets, then the marker (checked)."""
    pub.publish(TOPIC, "marker", 1)
    first = peer.message()
    if first["payload"] == "marker":
        return first, None
    marker = peer.message()
    if marker["payload"] != "marker":
        raise Failure(f"expected the marker, got {marker}")
    return first, marker


def main(port, v5):
    pub = Peer(port, v5, "paho-retain-pub")
    pub.connect()
    live = Peer(port, v5, "paho-retain-live")
    live.connect()
    options = {"retainAsPublished": True} if v5 else {}
    live.subscribe(TOPIC, 1, **options)
    pub.publish(TOPIC, "off", 1, retain=True)
    pub.publish(TOPIC, "on", 1, retain=True)
    result = {"live": [live.message(), live.message()]}

    later = Peer(port, v5, "paho-retain-later")
    later.connect()
    later.subscribe("paho/retained/+", 1)
    result["later"] = later.message()

    if v5:
        never = Peer(port, v5, "paho-retain-never")
        never.connect()
        never.subscribe(TOPIC, 1, retainHandling=2)
        result["retain_handling_2_first"] = first_two(never, pub)[0]
        never.disconnect()

    pub.publish(TOPIC, b"", 1, retain=True)
    after = Peer(port, v5, "paho-retain-after")
    after.connect()
    after.subscribe(TOPIC, 1)
    result["after_removal_first"] = first_two(after, pub)[0]
    for peer in (pub, live, later, after):
        peer.disconnect()
    return result


run(main)
