from __future__ import annotations

import contextlib
from ipaddress import IPv4Address, IPv6Address

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pixport.fetch import validate_url
from pixport.fetch.urls import MAX_URL_LENGTH, literal_ip, origin, parse_numeric_ipv4, to_yarl
from yarl import URL

NUMERIC_LOOPBACK = [
    "2130706433",  # decimal
    "0x7f000001",  # hex
    "0X7F000001",
    "017700000001",  # octal
    "0177.0.0.1",
    "0177.0000.0.01",
    "127.1",  # short forms
    "127.0.1",
    "0x7f.1",  # mixed
    "0x7f.0.0x0.1",
    "0x7f.0x0.1",
    "127.0.0.1.",  # trailing dot
    "\uff11\uff12\uff17.\uff10.\uff10.\uff11",  # fullwidth digits (IDNA maps them)
    "127\u30020\u30020\u30021",  # ideographic full stop
]


@pytest.mark.parametrize("host", NUMERIC_LOOPBACK)
def test_numeric_ipv4_spellings_become_the_dotted_quad(host: str) -> None:
    assert validate_url(f"http://{host}/img.png") == "http://127.0.0.1/img.png"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("0", "0.0.0.0"),  # noqa: S104
        ("0x", "0.0.0.0"),  # noqa: S104
        ("4294967295", "255.255.255.255"),
        ("0xa9fea9fe", "169.254.169.254"),
        ("10.1", "10.0.0.1"),
        ("192.168.257", "192.168.1.1"),
        ("1.2.3.010", "1.2.3.8"),
    ],
)
def test_more_numeric_forms(host: str, expected: str) -> None:
    assert parse_numeric_ipv4(host) == IPv4Address(expected)
    assert validate_url(f"https://{host}:8443/x") == f"https://{expected}:8443/x"


@pytest.mark.parametrize(
    "host",
    [
        "4294967296",
        "1.2.3.256",
        "1.2.3.09",
        "08.0.0.1",
        "1.2.3.4.5",
        "0x100000000",
        "256.1",
        "a.1",
        "example.0x10",
    ],
)
def test_invalid_numeric_hosts_are_rejected(host: str) -> None:
    with pytest.raises(ValueError, match="numeric IPv4"):
        validate_url(f"http://{host}/")


@pytest.mark.parametrize("host", ["example.com", "1.example.com", "0x7f.example.com", "127.0.0.1.nip.io", "1a"])
def test_names_with_numeric_labels_that_do_not_end_in_a_number_are_names(host: str) -> None:
    assert parse_numeric_ipv4(host) is None
    assert validate_url(f"http://{host}/") == f"http://{host}/"


@pytest.mark.parametrize(
    "url",
    ["http://good@127.0.0.1/", "http://user:pass@example.com/", "http://@example.com/", "http://:@example.com/",
     "http://example.com@127.0.0.1/", "http://127.0.0.1:80@example.com/", "https://a%40b@example.com/"],
)  # fmt: skip
def test_userinfo_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"credentials \(user:password@host\) are not accepted"):
        validate_url(url)


def test_backslash_tricks_are_refused() -> None:
    with pytest.raises(ValueError, match="backslash"):
        validate_url("http://example.com\\@127.0.0.1/")


def test_idn_is_punycoded() -> None:
    assert validate_url("https://Bücher.example/ä?q=1") == "https://xn--bcher-kva.example/%C3%A4?q=1"


def test_invalid_punycode_is_rejected() -> None:
    with pytest.raises(ValueError, match="internationalised"):
        validate_url("http://xn--zz.example/")


def test_host_case_trailing_dot_default_port_and_fragment_are_normalised() -> None:
    assert validate_url("  HTTP://Images.EXAMPLE.com.:80/A/B.png?x=Y#frag  ") == "http://images.example.com/A/B.png?x=Y"
    assert validate_url("https://example.com") == "https://example.com/"
    assert validate_url("https://example.com:8443") == "https://example.com:8443/"


@pytest.mark.parametrize(
    ("url", "expected"),
    [("http://[::1]/", "http://[::1]/"), ("http://[0:0:0:0:0:0:0:1]:8080/a", "http://[::1]:8080/a"),
     ("http://[::ffff:127.0.0.2]/", "http://[::ffff:7f00:2]/"), ("http://[2606:4700::1111]/", "http://[2606:4700::1111]/")],
)  # fmt: skip
def test_ipv6_literals_are_canonical(url: str, expected: str) -> None:
    assert validate_url(url) == expected


@pytest.mark.parametrize("url", ["http://[fe80::1%25eth0]/", "http://[fe80::1%eth0]/"])
def test_ipv6_zone_ids_are_refused(url: str) -> None:
    with pytest.raises(ValueError, match=r"zone identifiers|malformed"):
        validate_url(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", 'unsupported URL scheme "data" (data: URLs are not accepted)'),
        ("ftp://example.com/a.png", 'unsupported URL scheme "ftp" (only http and https)'),
        ("javascript:alert(1)", 'unsupported URL scheme "javascript"'),
        ("file:///etc/passwd", 'unsupported URL scheme "file"'),
        ("gopher://127.0.0.1:6379/_FLUSHALL", 'unsupported URL scheme "gopher"'),
        ("HTTPS:example.com", "no host"),
        ("http:///path", "no host"),
        ("http://", "no host"),
        ("http://:80/", "no host"),
        ("//example.com/a.png", "no scheme"),
        ("example.com/a.png", "no scheme"),
        ("", "empty"),
        ("http://exa mple.com/", "host name is not valid"),
        ("http://-bad.com/", "host name is not valid"),
        ("http://a..b/", "host name is not valid"),
        ("http://%31%32%37.0.0.1/", "percent-encoded"),
        ("http://ex%41mple.com/", "percent-encoded"),
        ("http://example.com/\r\nHost: evil", "control characters"),
        ("http://example.com:0/", "port 0"),
        ("http://example.com:99999/", "malformed"),
        ("http://[::1/", "malformed"),
        ("http://" + "a" * 64 + ".com/", "host name is not valid"),
        ("http://" + ("a" * 60 + ".") * 5 + "com/", "longer than 253"),
        ("http://example.com/" + "a" * MAX_URL_LENGTH, f"longer than {MAX_URL_LENGTH}"),
    ],
)
def test_rejections_say_what_is_wrong(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=None) as caught:
        validate_url(url)
    assert message in str(caught.value)


def test_messages_never_repeat_the_url() -> None:
    secret = "tok3n-in-path"
    for url in [f"ftp://h/{secret}", f"http://u:{secret}@h/", f"http://{secret}..x/", f"http://h:0/{secret}"]:
        with pytest.raises(ValueError, match=None) as caught:
            validate_url(url)
        assert secret not in str(caught.value)


def test_not_a_string() -> None:
    with pytest.raises(ValueError, match="string"):
        validate_url(b"http://example.com/")  # type: ignore[arg-type]


def test_literal_ip() -> None:
    assert literal_ip("127.0.0.1") == IPv4Address("127.0.0.1")
    assert literal_ip("0x7f000001") == IPv4Address("127.0.0.1")
    assert literal_ip("[::1]") == IPv6Address("::1")
    assert literal_ip("fe80::1%25eth0") == IPv6Address("fe80::1%eth0")
    assert literal_ip("example.com") is None
    with pytest.raises(ValueError, match="IPv6"):
        literal_ip("[::zz]")


def test_origin_is_scheme_host_port() -> None:
    assert origin(to_yarl("http://127.0.0.1:81/a")) == ("http", "127.0.0.1", 81)
    assert origin(to_yarl("http://127.0.0.1/a")) != origin(to_yarl("https://127.0.0.1/a"))
    assert to_yarl("http://example.com/a%20b").raw_path == "/a%20b"


def test_validated_urls_are_stable() -> None:
    for url in [
        "http://xn--bcher-kva.example/%C3%A4?q=1",
        "http://[::ffff:7f00:2]:81/a",
        "https://h/a+b?c=%20",
    ]:
        normal = validate_url(url)
        assert validate_url(normal) == normal
        assert str(to_yarl(normal)) == normal


URL_ALPHABET = st.characters(codec="utf-8", exclude_categories=("Cs",))


@settings(max_examples=400, deadline=None)
@given(st.text(URL_ALPHABET, max_size=80))
def test_random_strings_only_raise_value_error(text: str) -> None:
    with contextlib.suppress(ValueError):
        validate_url(text)


URL_PIECES = [*"0123456789abcdefxX.:[]@%/?#-_ \\\t\u00fc\u3002\uff11", "xn--", "%25", "::ffff:"]


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["http://", "https://", "HTTP://", "http:", "http:/", "data:", ""]),
    st.lists(
        st.sampled_from([*"0123456789abcdefxX.:[]@%/?#-_ \\\t\u00fc\u3002\uff11", "xn--", "%25", "::ffff:"]),
        max_size=30,
    ),
)
def test_url_shaped_strings_only_raise_value_error_and_normalise_stably(prefix: str, rest: list[str]) -> None:
    try:
        normal = validate_url(prefix + "".join(rest))
    except ValueError:
        return
    assert validate_url(normal) == normal
    parsed = URL(normal)
    assert parsed.scheme in ("http", "https")
    assert parsed.raw_host
    assert parsed.user is None and parsed.password is None
