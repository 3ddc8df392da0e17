"""Password authentication with paho-mqtt 2.x: run by crates/cli/tests/passwd_cli.rs against
a tern broker whose auth.password_file, made by `tern passwd`, lists USER with PASSWORD.

Usage: passwd.py PORT VERSION. Reports, as JSON, the CONNACK reason code paho saw for the
right password, a wrong one, an unknown user and no user name (paho 2.x reports a 3.1.1
return code as the MQTT 5.0 reason code it stands for: 4 as 134, 5 as 135), and the message
a client that logged in received from itself at QoS 1.
"""

from peer import Peer, run, take

USER = "plant-7"
PASSWORD = "pässword 1"


def attempt(port, v5, client_id, user, password):
    """Sends CONNECT with these credentials; returns the peer and the CONNACK's reason code."""
    peer = Peer(port, v5, client_id)
    if user is not None:
        peer.client.username_pw_set(user, password)
    kwargs = {"clean_start": True} if v5 else {}
    peer.client.connect("127.0.0.1", port, keepalive=30, **kwargs)
    peer.client.loop_start()
    _, reason = take(peer.connacks, "CONNACK")
    return peer, reason.value


def main(port, v5):
    result = {}
    for name, user, password in (
        ("wrong", USER, "pässword 2"),
        ("unknown", "plant-8", PASSWORD),
        ("anonymous", None, None),
    ):
        peer, result[name] = attempt(port, v5, f"paho-passwd-{name}", user, password)
        take(peer.disconnects, "the broker closing the refused connection")
        peer.client.loop_stop()
    peer, result["right"] = attempt(port, v5, "paho-passwd-right", USER, PASSWORD)
    result["granted"] = peer.subscribe("passwd/check", 1)
    peer.publish("passwd/check", "logged in", 1)
    result["message"] = peer.message()
    peer.disconnect()
    return result


run(main)
