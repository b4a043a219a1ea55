"""A server that asks the client to send its password as typed, and records what it gets.

Real servers ask for a cleartext plugin when an account authenticates through PAM or
LDAP (MariaDB's ``pam``, MySQL Enterprise's ``authentication_pam`` /
``authentication_ldap_simple``), and so can anything that answers on the database's
address. MySQL Community (what the suite runs) has no such server plugin, so this
endpoint plays the part: it sends the real server's own greeting (read from the
family's server: version, capabilities, salt), completes TLS with the test server's
certificate (which the client verifies against the test CA, as it would the real
server), reads the client's handshake response, then sends an auth switch request for
``mysql_clear_password`` or ``dialog`` and records every byte the client sends after
it. Only the server's side is played; the client under test is the real one.
"""

from __future__ import annotations

import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field

from tests.support.servers import DatabaseServer

# What each plugin's auth switch request carries after the plugin name: mysql_clear_password
# nothing but a terminator; dialog a question byte (4 = password, | 1 = last) and the prompt
# PyMySQL answers with the password.
SWITCH_DATA = {"mysql_clear_password": b"\0", "dialog": b"\x05Password: "}
_CLIENT_SSL = 0x0800


def _read_packet(stream: socket.socket) -> tuple[int, bytes]:
    header = _read_exactly(stream, 4)
    length = header[0] | header[1] << 8 | header[2] << 16
    return header[3], _read_exactly(stream, length)


def _read_exactly(stream: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = stream.recv(count - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _packet(sequence: int, payload: bytes) -> bytes:
    return struct.pack("<I", len(payload))[:3] + bytes([sequence]) + payload


@dataclass
class Exchange:
    """What one client sent: its handshake response, and everything after the switch request."""

    handshake_response: bytes = b""
    after_switch: bytes = b""
    switched: bool = False
    done: threading.Event = field(default_factory=threading.Event)  # the client has gone

    @property
    def everything(self) -> bytes:
        return self.handshake_response + self.after_switch


@dataclass
class AuthSwitchServer:
    host: str
    port: int
    exchanges: list[Exchange] = field(default_factory=list)

    def finished(self, timeout: float = 5.0) -> list[Exchange]:
        """The exchanges so far, once each client has gone."""
        for exchange in self.exchanges:
            assert exchange.done.wait(timeout), "the client neither answered nor went away"
        return list(self.exchanges)


def real_greeting(server: DatabaseServer) -> bytes:
    """The payload of the greeting ``server`` sends a new connection."""
    with socket.create_connection((server.host, server.port), timeout=5) as raw:
        _sequence, payload = _read_packet(raw)
    if payload[:1] != b"\x0a":
        raise RuntimeError("not a protocol-10 greeting")
    return payload


@contextmanager
def auth_switch_server(server: DatabaseServer, plugin: str) -> Iterator[AuthSwitchServer]:
    """An endpoint on 127.0.0.1 that greets like ``server`` and asks for ``plugin`` (see the module)."""
    pki = server.pki
    if pki.cert_file is None or pki.key_file is None:
        raise RuntimeError("needs the test server's certificate and key")
    greeting = real_greeting(server)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(pki.cert_file), str(pki.key_file))
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    endpoint = AuthSwitchServer("127.0.0.1", listener.getsockname()[1])
    stop = threading.Event()

    def serve_one(client: socket.socket) -> None:
        exchange = Exchange()
        endpoint.exchanges.append(exchange)
        with client:
            client.settimeout(3)
            client.sendall(_packet(0, greeting))
            _sequence, request = _read_packet(client)
            stream: socket.socket = client
            if len(request) == 32 and struct.unpack("<I", request[:4])[0] & _CLIENT_SSL:
                stream = context.wrap_socket(client, server_side=True)
                sequence, exchange.handshake_response = _read_packet(stream)
            else:  # a client that did not ask for TLS: this is its handshake response
                sequence, exchange.handshake_response = 1, request
            switch = b"\xfe" + plugin.encode() + b"\0" + SWITCH_DATA[plugin]
            stream.sendall(_packet(sequence + 1, switch))
            exchange.switched = True
            with suppress(OSError, ConnectionError, ssl.SSLError):
                while chunk := stream.recv(4096):
                    exchange.after_switch += chunk
                    # A client that answered is waiting for the verdict: refuse it.
                    stream.sendall(_packet(sequence + 3, b"\xff\x15\x04#28000Access denied"))

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _address = listener.accept()
            except TimeoutError:
                continue
            try:
                with suppress(OSError, ConnectionError, ssl.SSLError):
                    serve_one(client)
            finally:
                if endpoint.exchanges:
                    endpoint.exchanges[-1].done.set()

    thread = threading.Thread(target=serve, name="auth-switch-server", daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        stop.set()
        thread.join(timeout=10)
        listener.close()
