"""Route-based interface lookup (no packet is sent)."""

from __future__ import annotations

import pytest

from hpc_seg.errors import LaunchError
from hpc_seg.launch.netif import interface_towards, ipv4_of, resolve_ipv4


def test_loopback_is_reached_over_lo():
    assert interface_towards("127.0.0.1") == ("lo", "127.0.0.1")
    assert ipv4_of("lo") == "127.0.0.1"


def test_addresses_and_hosts_file_names_resolve_without_a_query():
    # (no unknown name here: its lookup would go to a DNS server)
    assert ipv4_of("no-such-if0") is None
    assert resolve_ipv4("10.1.2.3") == "10.1.2.3"
    assert resolve_ipv4("localhost") == "127.0.0.1"


def test_no_route_is_a_one_line_error(monkeypatch):
    import socket

    def refuse(self, addr):
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    with pytest.raises(LaunchError, match="no route from .* to 10.9.9.9: Network is unreachable"):
        interface_towards("10.9.9.9")
