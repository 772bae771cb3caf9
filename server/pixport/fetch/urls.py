"""Syntactic URL validation and normalisation, done before anything touches the network.

Error messages never repeat the URL (they also describe redirect targets, which the origin chose).
"""

from __future__ import annotations

import re
from ipaddress import IPv4Address, IPv6Address

import idna
from yarl import URL

from pixport.fetch.policy import IPAddress

MAX_URL_LENGTH = 8192
ALLOWED_SCHEMES = ("http", "https")
_DEFAULT_PORTS = {"http": 80, "https": 443}

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?")
_HEX_NUMBER = re.compile(r"0[xX][0-9A-Fa-f]*")
_OCT_NUMBER = re.compile(r"0[0-7]+")
_DEC_NUMBER = re.compile(r"0|[1-9][0-9]*")
_DIGITS = re.compile(r"[0-9]+")


def _ends_in_number(host: str) -> bool:
    # WHATWG URL "ends in a number": such hosts are IPv4 (or invalid), never DNS names.
    labels = host.split(".")
    if labels[-1] == "" and len(labels) > 1:
        labels.pop()
    last = labels[-1]
    return bool(_DIGITS.fullmatch(last) or _HEX_NUMBER.fullmatch(last))


def _parse_part(part: str) -> int | None:
    if _HEX_NUMBER.fullmatch(part):
        return int(part[2:] or "0", 16)
    if _OCT_NUMBER.fullmatch(part):
        return int(part, 8)
    if _DEC_NUMBER.fullmatch(part):
        return int(part, 10)
    return None


def parse_numeric_ipv4(host: str) -> IPv4Address | None:
    """The IPv4 address a numeric host means to inet_aton/WHATWG (2130706433, 0x7f.1, 0177.0.0.1, 127.1).

    None if the host does not end in a number (so it is a DNS name); ValueError if it does but is not a
    valid address, because resolvers disagree on what such names mean.
    """
    if not _ends_in_number(host):
        return None
    parts = host.split(".")
    if parts[-1] == "":
        parts.pop()
    invalid = ValueError("host looks like a numeric IPv4 address but is not a valid one")
    if not 1 <= len(parts) <= 4:
        raise invalid
    numbers = [_parse_part(p) for p in parts]
    if any(n is None for n in numbers):
        raise invalid
    values = [n for n in numbers if n is not None]
    if any(v > 255 for v in values[:-1]) or values[-1] >= 256 ** (5 - len(values)):
        raise invalid
    address = values[-1]
    for i, v in enumerate(values[:-1]):
        address += v << (8 * (3 - i))
    return IPv4Address(address)


def literal_ip(host: str) -> IPAddress | None:
    """The address a host names literally (any IPv4 spelling, IPv6 with or without brackets), else None."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if ":" in host:
        try:
            return IPv6Address(host.replace("%25", "%"))
        except ValueError:
            raise ValueError("host is not a valid IPv6 address") from None
    return parse_numeric_ipv4(host)


def _normalise_hostname(raw_host: str) -> str:
    if "%" in raw_host:
        raise ValueError("percent-encoded characters are not allowed in the host")
    host = raw_host
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError):
            raise ValueError("host is not a valid internationalised domain name") from None
    host = host.lower()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise ValueError("URL has no host")
    ip = parse_numeric_ipv4(host)
    if ip is not None:
        return str(ip)
    if len(host) > 253:
        raise ValueError("host name is longer than 253 characters")
    for label in host.split("."):
        if not _LABEL.fullmatch(label):
            raise ValueError("host name is not valid (letters, digits, '-' and '_' in dot-separated labels)")
        if label.startswith("xn--"):
            try:
                idna.decode(label)
            except (idna.IDNAError, UnicodeError):
                raise ValueError("host is not a valid internationalised domain name") from None
    return host


def validate_url(url: str) -> str:
    """Check a URL a stranger gave us and return its normal form; ValueError says what is wrong."""
    if not isinstance(url, str):
        raise ValueError("URL must be a string")
    url = url.strip(" \t\r\n\f\v\x00")
    if not url:
        raise ValueError("URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise ValueError(f"URL is longer than {MAX_URL_LENGTH} characters")
    match = _SCHEME.match(url)
    if match is None:
        raise ValueError("URL has no scheme (expected http:// or https://)")
    scheme = match.group(1).lower()
    if scheme == "data":
        raise ValueError('unsupported URL scheme "data" (data: URLs are not accepted)')
    if scheme not in ALLOWED_SCHEMES:
        shown = scheme if len(scheme) <= 32 else scheme[:32] + "..."
        raise ValueError(f'unsupported URL scheme "{shown}" (only http and https)')
    if _CONTROL.search(url):
        raise ValueError("URL contains control characters")
    if "\\" in url:
        raise ValueError("URL contains a backslash")
    rest = url[match.end() :]
    if not rest.startswith("//"):
        raise ValueError("URL has no host (expected http://host/...)")
    authority = re.split(r"[/?#]", rest[2:], maxsplit=1)[0]
    if "@" in authority:
        raise ValueError("URLs with credentials (user:password@host) are not accepted")
    if authority == "" or authority.startswith(":"):
        raise ValueError("URL has no host")
    try:
        parsed = URL(url)
        raw_host = parsed.raw_host
        port = parsed.explicit_port
        path, query = parsed.raw_path, parsed.raw_query_string
    except (ValueError, TypeError, UnicodeError):
        raise ValueError("URL is malformed") from None
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise ValueError("URLs with credentials (user:password@host) are not accepted")
    if not raw_host:
        raise ValueError("URL has no host")
    if ":" in raw_host:
        if "%" in raw_host:
            raise ValueError("IPv6 zone identifiers are not accepted in URLs")
        try:
            host = f"[{IPv6Address(raw_host)}]"
        except ValueError:
            raise ValueError("host is not a valid IPv6 address") from None
    else:
        host = _normalise_hostname(raw_host)
    if port == 0:
        raise ValueError("port 0 is not allowed")
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    normal = f"{scheme}://{netloc}{path or '/'}"
    if query:
        normal += f"?{query}"
    return normal


def to_yarl(url: str) -> URL:
    """A URL from validate_url as the object handed to aiohttp (no further requoting)."""
    return URL(url, encoded=True)


def origin(url: URL) -> tuple[str, str, int | None]:
    """What counts as "the same host" for forwarding caller headers: scheme, host and port."""
    return (url.scheme, url.raw_host or "", url.port)
