"""QoS 0, 1 and 2 round trips through the broker, then a QoS 2 marker.

Reports the SUBACK codes and the first four messages received. paho hands a QoS 2 message
to the application when PUBREL arrives, so the order across QoS levels is not the wire
order; but a duplicate of the QoS 2 message would come before the marker and push it out of
the four. With MQTT 5.0 the messages carry a user property and a content type that the
broker must forward unchanged.
"""

from peer import Peer, PacketTypes, properties, run


def main(port, v5):
    sub = Peer(port, v5, "paho-sub")
    sub.connect()
    granted = sub.subscribe("paho/#", 2)
    low = Peer(port, v5, "paho-sub-qos1")
    low.connect()
    granted += low.subscribe("paho/qos2", 1)

    pub = Peer(port, v5, "paho-pub")
    pub.connect()
    props = None
    if v5:
        props = properties(
            PacketTypes.PUBLISH, UserProperty=[("origin", "paho")], ContentType="text/plain"
        )
    for qos in (0, 1, 2):
        pub.publish(f"paho/qos{qos}", f"payload at qos {qos}", qos, props=props)
    pub.publish("paho/marker", "end", 2)
    messages = [sub.message() for _ in range(4)]
    downgraded = low.message()
    for peer in (pub, sub, low):
        peer.disconnect()
    return {"granted": granted, "messages": messages, "downgraded": downgraded}


run(main)
