"""Shared by the tests' TCP forwarders (a database cut, an answer lost on the way)."""

from __future__ import annotations

import socket


def pump(src: socket.socket, dst: socket.socket) -> None:
    """Copy src to dst until either side closes, then shut both down."""
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
