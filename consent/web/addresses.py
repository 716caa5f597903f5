"""Client addresses as proxies and sockets hand them over, and the network part the service keeps.

``X-Forwarded-For`` values may carry a port (``198.51.100.77:5555``,
``[2001:db8::1]:443``) and IPv6 a zone (``fe80::1%eth0``). IPv6 addresses
that carry an IPv4 address inside (IPv4-mapped, 6to4, Teredo, NAT64) are
treated as that IPv4 address, so that cutting them to a network hides as much
as cutting the IPv4 address would.
"""

from __future__ import annotations

import ipaddress
import re

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# 198.51.100.77:5555 (one colon: IPv6 has at least two) and [2001:db8::1]:443 or [2001:db8::1].
IPV4_WITH_PORT = re.compile(r"^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$")
BRACKETED = re.compile(r"^\[([0-9A-Fa-f:.%\w-]+)\](?::\d{1,5})?$")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def parse_address(value: str | None) -> IPAddress | None:
    """The address in ``value`` (a bare address, with a port, bracketed, with a zone), or None."""
    text = (value or "").strip()
    for pattern in (IPV4_WITH_PORT, BRACKETED):
        found = pattern.match(text)
        if found:
            text = found.group(1)
            break
    try:
        return ipaddress.ip_address(text.split("%", 1)[0])
    except ValueError:
        return None


def embedded_ipv4(ip: IPAddress) -> IPAddress:
    """The IPv4 address inside an IPv4-mapped, 6to4, Teredo (the client's) or NAT64 address; else ``ip``."""
    if isinstance(ip, ipaddress.IPv4Address):
        return ip
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip


def network_part(ip: IPAddress, ipv4_prefix: int = 24, ipv6_prefix: int = 48) -> str:
    """The first address of ``ip``'s network: IPv4 (also embedded in IPv6) /24, IPv6 /48 by default."""
    ip = embedded_ipv4(ip)
    prefix = ipv4_prefix if ip.version == 4 else ipv6_prefix
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)
