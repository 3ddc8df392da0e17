"""SCRAM-SHA-256 (RFC 5802, RFC 7677) as MQTT 5.0 enhanced authentication, with the Python
standard library only: paho-mqtt 2.x has no AUTH support. Run by
crates/cli/tests/passwd_cli.rs against a tern broker whose auth.scram_file was made by
`tern passwd`.

Usage: scram.py PORT USER PASSWORD. Runs CONNECT (client-first) -> AUTH 0x18 (server-first)
-> AUTH 0x18 (client-final) -> CONNACK, and prints as JSON the CONNACK's reason code, whether
its Authentication Data held the server signature the password implies (the broker knew
the user's keys), and the Authentication Method it carried.
"""

import base64
import hashlib
import hmac
import json
import socket
import sys

METHOD = b"SCRAM-SHA-256"
TIMEOUT = 5.0


def varint(n):
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def binary(data):
    return len(data).to_bytes(2, "big") + data


def auth_properties(data):
    props = b"\x15" + binary(METHOD) + b"\x16" + binary(data)
    return varint(len(props)) + props


def packet(first_byte, body):
    return bytes([first_byte]) + varint(len(body)) + body


def read_packet(sock):
    """One packet: (first byte, body)."""
    first = recv_exact(sock, 1)[0]
    length, shift = 0, 0
    while True:
        byte = recv_exact(sock, 1)[0]
        length += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first, recv_exact(sock, length)


def recv_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        data += chunk
    return data


def read_varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value += (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def properties(body, at):
    """The Authentication Method and Data among the properties starting at `at`."""
    length, at = read_varint(body, at)
    end, found = at + length, {}
    while at < end:
        ident = body[at]
        at += 1
        if ident in (0x15, 0x16, 0x1F, 0x12, 0x1A, 0x1C, 0x09, 0x03, 0x08):
            size = int.from_bytes(body[at:at + 2], "big")
            found[ident] = body[at + 2:at + 2 + size]
            at += 2 + size
        elif ident == 0x26:  # user property: two strings
            for _ in range(2):
                at += 2 + int.from_bytes(body[at:at + 2], "big")
        elif ident in (0x11, 0x27, 0x02, 0x18):
            at += 4
        elif ident in (0x21, 0x22, 0x13):
            at += 2
        elif ident == 0x0B:
            _, at = read_varint(body, at)
        else:
            at += 1
    return found


def main():
    port, user, password = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    nonce = base64.b64encode(b"tern-passwd-test-nonce").decode()
    bare = f"n={user.replace('=', '=3D').replace(',', '=2C')},r={nonce}"
    sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
    variable = binary(b"MQTT") + bytes([5, 0x02]) + (30).to_bytes(2, "big")
    connect = variable + auth_properties(f"n,,{bare}".encode()) + binary(b"scram-py")
    sock.sendall(packet(0x10, connect))
    first, body = read_packet(sock)
    if first >> 4 != 15:
        print(json.dumps({"connack": body[1] if first >> 4 == 2 else None}))
        return
    server_first = properties(body, 1)[0x16].decode()
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    salt, iterations = base64.b64decode(fields["s"]), int(fields["i"])
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    stored_key = hashlib.sha256(client_key).digest()
    without_proof = f"c=biws,r={fields['r']}"
    auth_message = f"{bare},{server_first},{without_proof}".encode()
    signature = hmac.new(stored_key, auth_message, "sha256").digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    final = f"{without_proof},p={base64.b64encode(proof).decode()}".encode()
    sock.sendall(packet(0xF0, bytes([0x18]) + auth_properties(final)))
    first, body = read_packet(sock)
    server_key = hmac.new(salted, b"Server Key", "sha256").digest()
    expected = b"v=" + base64.b64encode(hmac.new(server_key, auth_message, "sha256").digest())
    found = properties(body, 2)
    print(json.dumps({
        "connack": body[1],
        "server_signature_ok": found.get(0x16) == expected,
        "method": found.get(0x15, b"").decode(),
    }))
    sock.close()


main()
