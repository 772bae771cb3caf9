from __future__ import annotations

import hashlib
import io

import defusedxml.ElementTree as DefusedET
import pytest
from PIL import Image
from pixport.imaging import ImageRejected, Limits, analyse
from pixport.imaging.svg import document_size, sanitise, unsafe_css

SVG = "http://www.w3.org/2000/svg"
XLINK = "http://www.w3.org/1999/xlink"
PNG_DATA = "data:image/png;base64,iVBORw0KGgo="


def clean(body: str, attributes: str = 'width="40" height="30"') -> str:
    document = f'<svg xmlns="{SVG}" xmlns:xlink="{XLINK}" {attributes}>{body}</svg>'
    return sanitise(document.encode())[0].decode()


def test_scripts_and_foreign_objects_are_removed() -> None:
    out = clean(
        '<script>alert(1)</script><g><script xlink:href="http://evil/x.js"/></g>'
        '<foreignObject><body xmlns="http://www.w3.org/1999/xhtml"><script>alert(2)</script></body>'
        '</foreignObject><rect width="5" height="5"/>'
        '<html:script xmlns:html="http://www.w3.org/1999/xhtml">alert(3)</html:script>'
    )
    assert "script" not in out.lower() and "alert" not in out and "foreignObject" not in out
    assert "<rect" in out


def test_event_handlers_are_removed() -> None:
    out = clean('<rect onclick="alert(1)" ONMOUSEOVER="x()" width="5" height="5"/>', 'onload="alert(1)"')
    assert "alert" not in out and "x()" not in out.replace("xmlns", "")
    assert 'width="5"' in out


@pytest.mark.parametrize(
    "href",
    [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "http://evil.example/a.png",
        "//evil/a.svg#x",
        "file:///etc/passwd",
        "data:image/svg+xml;base64,PHN2Zz4=",
        "data:text/html,&lt;script&gt;1&lt;/script&gt;",
        "other.svg#icon",
    ],
)
def test_unsafe_references_are_dropped(href: str) -> None:
    out = clean(f'<image href="{href}" width="4" height="4"/><use xlink:href="{href}"/>')
    assert "href" not in out
    assert "<image" in out  # the element stays, harmless without its reference


def test_local_and_inline_references_are_kept() -> None:
    out = clean(f'<defs><path id="p" d="M0 0h4"/></defs><use xlink:href="#p"/><image href="{PNG_DATA}"/>')
    assert 'xlink:href="#p"' in out
    assert f'href="{PNG_DATA}"' in out


def test_links_become_plain_groups() -> None:
    out = clean('<a href="https://evil.example" target="_top"><rect width="3" height="3"/></a>')
    root = DefusedET.fromstring(out)
    assert root.find(f"{{{SVG}}}a") is None
    group = root.find(f"{{{SVG}}}g")
    assert group is not None and group.find(f"{{{SVG}}}rect") is not None
    assert "evil" not in out and "target" not in out


def test_animations_that_rewrite_links_are_removed() -> None:
    out = clean(
        '<g><animate attributeName="href" values="javascript:alert(1)"/>'
        '<set attributeName="xlink:href" to="javascript:alert(1)"/>'
        '<animate attributeName="opacity" from="0" to="1" dur="1s"/></g>'
    )
    assert "javascript" not in out and 'attributeName="opacity"' in out


def test_styles_that_load_things_are_removed() -> None:
    out = clean(
        "<style>@import url(http://evil/x.css);</style>"
        "<style>rect { fill: url(https://evil/x.svg#p) }</style>"
        "<style>rect { fill: u\\72l(https://evil/) }</style>"
        "<style>.a { fill: url(#grad) }</style>"
        '<rect style="background:url(http://evil/p.png)" fill="url(#grad)" width="1" height="1"/>'
        '<rect filter="url(https://evil/f.svg#f)" width="1" height="1"/>'
    )
    assert "evil" not in out and "@import" not in out
    assert ".a { fill: url(#grad) }" in out and 'fill="url(#grad)"' in out


def test_unsafe_css_rules() -> None:
    assert not unsafe_css("fill: red; stroke: url('#g')")
    assert not unsafe_css(f"background: url({PNG_DATA})")
    assert unsafe_css("background: URL( 'http://x' )")
    assert unsafe_css("background: url(#a) url(//x)")
    assert unsafe_css("background: image-set('x.png' 1x)")
    assert unsafe_css("x: expression(alert(1))")


def test_xml_base_and_foreign_attributes_are_dropped_but_xml_space_kept() -> None:
    out = clean(
        '<text xml:space="preserve" xml:base="http://evil/" '
        'inkscape:label="x" xmlns:inkscape="http://www.inkscape.org/namespaces/inkscape">a  b</text>'
    )
    assert 'xml:space="preserve"' in out and "evil" not in out and "inkscape" not in out
    assert "a  b" in out


def test_text_after_a_removed_element_is_kept() -> None:
    out = clean("<text>one<script>x</script> two</text>")
    assert "one two" in out


XXE = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&xxe;</text></svg>"""

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE svg [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<svg xmlns="http://www.w3.org/2000/svg"><text>&lol9;</text></svg>"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE svg [<!ENTITY % remote SYSTEM "http://evil.example/x.dtd"> %remote;]>
<svg xmlns="http://www.w3.org/2000/svg"/>"""


@pytest.mark.parametrize("document", [XXE, BILLION_LAUGHS, PARAMETER_ENTITY], ids=["xxe", "laughs", "param"])
def test_entities_and_internal_dtds_are_refused(document: bytes) -> None:
    with pytest.raises(ImageRejected, match="SVG refused"):
        analyse(document, Limits())


def test_a_plain_public_doctype_is_accepted() -> None:
    document = (
        b'<?xml version="1.0" standalone="no"?>\n<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" '
        b'"http://www.w3.org/Graphics/SVG/1.1/DTD/svg11.dtd">\n'
        b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="20"/>'
    )
    assert (analyse(document, Limits()).width, analyse(document, Limits()).height) == (10, 20)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b'<svg xmlns="http://www.w3.org/2000/svg"><g></svg>', "not well-formed"),
        (b"<svg>" + b"<g>" * 300 + b"</g>" * 300 + b"</svg>", "nested too deeply"),
        (b"<svg>" + b"<g/>" * 200_001 + b"</svg>", "too complex"),
    ],
)
def test_broken_or_abusive_documents(document: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        analyse(document, Limits())


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        ({"width": "40", "height": "30px"}, (40, 30)),
        ({"width": "1in", "height": "25.4mm"}, (96, 96)),
        ({"viewBox": "0 0 400 300"}, (400, 300)),
        ({"viewBox": "0,0,400,300", "width": "100%", "height": "100%"}, (400, 300)),
        ({"viewBox": "0 0 400 300", "width": "800"}, (800, 600)),
        ({"viewBox": "0 0 400 300", "height": "30"}, (40, 30)),
        ({"width": "1e9", "height": "1"}, (100_000, 1)),
        ({"width": "-5", "height": "abc"}, (300, 150)),
        ({}, (300, 150)),
    ],
)
def test_document_size(attributes: dict[str, str], expected: tuple[int, int]) -> None:
    assert document_size(attributes) == expected


def test_analysis_of_an_svg() -> None:
    document = (
        f'<svg xmlns="{SVG}" viewBox="0 0 4000 3000" onload="alert(1)"><circle cx="5" cy="5" r="4"/></svg>'
    ).encode()
    result = analyse(document, Limits())
    assert result.format == "svg" and result.mime_type == "image/svg+xml"
    assert (result.width, result.height) == (4000, 3000)
    assert b"alert" not in result.original
    assert result.sha256 == hashlib.sha256(result.original).hexdigest()
    assert result.byte_size == len(result.original)
    assert result.phash is None and result.colors == () and result.placeholder is None
    sizes = {r.name: (r.width, r.height) for r in result.renditions}
    assert sizes == {
        "fit2000": (2000, 1500),
        "full": (1920, 1440),
        "fill100": (300, 225),
        "large": (200, 200),
        "mini": (100, 100),
    }
    # Renditions are PNG rasters of exactly those sizes; the original stays the sanitised SVG.
    for rendition in result.renditions:
        assert rendition.mime_type == "image/png" and rendition.data.startswith(b"\x89PNG\r\n\x1a\n")
        with Image.open(io.BytesIO(rendition.data)) as raster:
            assert raster.format == "PNG" and raster.size == (rendition.width, rendition.height)


def test_svg_rasters_show_the_drawing() -> None:
    # Left half red, right half transparent: the mini (centre square) is half red, half clear.
    document = (f'<svg xmlns="{SVG}" width="400" height="200"><rect x="0" y="0" width="200" height="200" '
                'fill="#ff0000"/></svg>').encode()
    result = analyse(document, Limits())
    by_name = {r.name: r for r in result.renditions}
    with Image.open(io.BytesIO(by_name["fill100"].data)) as fill:
        rgba = fill.convert("RGBA")
        assert rgba.size == (300, 150)
        assert rgba.getpixel((40, 75)) == (255, 0, 0, 255) and rgba.getpixel((260, 75))[3] == 0
    with Image.open(io.BytesIO(by_name["mini"].data)) as mini:
        rgba = mini.convert("RGBA")
        assert rgba.getpixel((20, 50)) == (255, 0, 0, 255) and rgba.getpixel((80, 50))[3] == 0


def test_svg_without_namespace_is_given_one() -> None:
    out = sanitise(b'<svg width="2" height="2"><rect width="1" height="1"/></svg>')[0]
    root = DefusedET.fromstring(out)
    assert root.tag == f"{{{SVG}}}svg" and root.find(f"{{{SVG}}}rect") is not None


def test_xml_root_that_is_not_svg_is_not_an_image() -> None:
    with pytest.raises(ImageRejected, match="not an image"):
        analyse(b'<?xml version="1.0"?><html><svg/></html>', Limits())
