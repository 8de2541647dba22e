"""Which network interface and address this machine uses to reach another address.

Multi-node DDP must bind its sockets to the interface towards the other nodes: gloo binds to the
address the host name resolves to, which is loopback wherever ``/etc/hosts`` maps the host name to
127.0.x.x (Debian's default, and this project's local cluster host), and then no other node can
connect. The route lookup below sends no packet: ``connect`` on a UDP socket only picks the route.
"""

from __future__ import annotations

import fcntl
import socket
import struct

from hpc_seg.errors import LaunchError

_SIOCGIFADDR = 0x8915   # <linux/sockios.h>: get an interface's IPv4 address


def ipv4_of(ifname: str) -> str | None:
    """The IPv4 address of interface ``ifname`` (None: it has none)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", ifname.encode()[:15]))
        except OSError:   # no IPv4 address on it
            return None
    return socket.inet_ntoa(raw[20:24])


def local_address_towards(addr: str) -> str:
    """This machine's source address for packets to ``addr`` (an IPv4 address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect((addr, 9))
        except OSError as exc:
            raise LaunchError(f"no route from {socket.gethostname()} to {addr}: {exc.strerror}") from None
        return s.getsockname()[0]


def interface_towards(addr: str) -> tuple[str, str]:
    """(interface name, its address) that this machine uses to reach ``addr``."""
    local = local_address_towards(addr)
    for _, name in socket.if_nameindex():
        if ipv4_of(name) == local:
            return name, local
    raise LaunchError(f"{socket.gethostname()}: no interface holds {local}, the address "
                      f"towards {addr}")


def resolve_ipv4(host: str) -> str:
    """``host``'s IPv4 address (an address is returned as is)."""
    try:
        return socket.gethostbyname(host)
    except OSError as exc:
        raise LaunchError(f"cannot resolve {host!r} on {socket.gethostname()}: {exc}") from None
