"""Persistent sessions: subscribe with Clean Session 0 (3.1.1) or Clean Start 0 and a
Session Expiry Interval (5.0), disconnect, let QoS 1 and 2 messages be published, reconnect
and collect them; then connect with a clean session. Reports the Session Present flags and
the messages.
"""

from peer import Peer, run

CLIENT = "paho-persistent"


def main(port, v5):
    first = Peer(port, v5, CLIENT, clean=False, expiry=60)
    result = {"first_session_present": first.connect()}
    result["granted"] = first.subscribe("paho/session/#", 2)
    first.disconnect()

    pub = Peer(port, v5, "paho-session-pub")
    pub.connect()
    pub.publish("paho/session/one", "away at qos 1", 1)
    pub.publish("paho/session/two", "away at qos 2", 2)
    pub.disconnect()

    again = Peer(port, v5, CLIENT, clean=False, expiry=60)
    result["resumed_session_present"] = again.connect()
    result["messages"] = [again.message(), again.message()]
    again.disconnect()

    fresh = Peer(port, v5, CLIENT, clean=True)
    result["clean_session_present"] = fresh.connect()
    fresh.disconnect()
    return result


run(main)
