"""SVG: parse without entities or external references, strip everything active, keep the drawing."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import Any

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import DefusedXMLParser

from pixport.imaging.types import ImageRejected

SVG_NS = "http://www.w3.org/2000/svg"
XLINK_NS = "http://www.w3.org/1999/xlink"
XML_NS = "http://www.w3.org/XML/1998/namespace"

MAX_ELEMENTS = 200_000  # counted as "<" in the source: a cheap bound on tree memory before parsing
MAX_DEPTH = 256  # ElementTree serialises recursively
DEFAULT_SIZE = (300, 150)  # what a browser gives an <img> of an SVG that declares no size
_MAX_SIDE = 100_000

_DROPPED_ELEMENTS = {"script", "foreignobject", "handler", "listener"}
_ANIMATIONS = {"animate", "set", "animatemotion", "animatetransform", "animatecolor"}
_XLINK_HREF = f"{{{XLINK_NS}}}href"
_KEPT_FOREIGN_ATTRIBUTES = {f"{{{XML_NS}}}space", f"{{{XML_NS}}}lang", _XLINK_HREF}
_SAFE_DATA_URL = re.compile(r"data:image/(?:png|jpeg|gif|webp)[;,]", re.IGNORECASE)
_CSS_URL = re.compile(r"url\(\s*(['\"]?)(.*?)\1\s*\)", re.IGNORECASE | re.DOTALL)
_CSS_FORBIDDEN = ("@import", "\\", "expression(", "javascript:", "image-set(")
_LENGTH = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(px|pt|pc|mm|cm|in)?\s*$")
_PX_PER_UNIT = {"px": 1.0, "pt": 4 / 3, "pc": 16.0, "mm": 96 / 25.4, "cm": 96 / 2.54, "in": 96.0}


class _SafeParser(DefusedXMLParser):  # type: ignore[misc]
    """Entities and external references refused; a DOCTYPE only when it has no internal subset.

    Editors write `<!DOCTYPE svg PUBLIC "-//W3C//DTD SVG 1.1//EN" ...>` into ordinary files (expat never
    fetches it); entity tricks (billion laughs, XXE) all need an internal subset.
    """

    def __init__(self) -> None:
        super().__init__(target=ET.TreeBuilder(), forbid_dtd=True, forbid_entities=True, forbid_external=True)

    def defused_start_doctype_decl(self, name: str, sysid: str, pubid: str, has_internal_subset: bool) -> None:
        if has_internal_subset:
            super().defused_start_doctype_decl(name, sysid, pubid, has_internal_subset)


def sanitise(data: bytes) -> tuple[bytes, tuple[int, int]]:
    """The sanitised document (UTF-8) and its size in CSS pixels."""
    if data.count(b"<") > MAX_ELEMENTS:
        raise ImageRejected(f"SVG too complex: more than {MAX_ELEMENTS} elements")
    root = _parse(data)
    if _local(root.tag) != "svg" or _namespace(root.tag) not in ("", SVG_NS):
        raise ImageRejected("not an image: the XML document's root element is not <svg>")
    in_svg_ns = _namespace(root.tag) == SVG_NS
    _clean_tree(root, in_svg_ns)
    size = document_size(root.attrib)
    body = ET.tostring(root, encoding="unicode")
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body.encode("utf-8"), size


def _parse(data: bytes) -> ET.Element:
    parser = _SafeParser()
    try:
        parser.feed(data)
        root: ET.Element = parser.close()
    except DefusedXmlException:
        raise ImageRejected("SVG refused: it declares entities, an internal DTD or external references") from None
    except (ET.ParseError, ValueError, UnicodeError):
        raise ImageRejected("SVG is not well-formed XML") from None
    return root


def _namespace(tag: Any) -> str:
    return tag[1:].split("}", 1)[0] if isinstance(tag, str) and tag.startswith("{") else ""


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _clean_tree(root: ET.Element, in_svg_ns: bool) -> None:
    """Drop what is active; write every kept name plainly (`rect`, `xlink:href`) under one xmlns.

    Plain names keep the output free of ElementTree's generated prefixes (ns0:rect) without touching its
    process-wide prefix registry. Documents without xmlns get it: a browser draws nothing outside it anyway.
    """
    own_ns = SVG_NS if in_svg_ns else ""
    stack = [(root, 0)]
    _clean_attributes(root, is_link=False)
    root.tag = "svg"
    while stack:
        element, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise ImageRejected(f"SVG nested too deeply: more than {MAX_DEPTH} levels")
        for child in list(element):
            if not isinstance(child.tag, str) or _namespace(child.tag) != own_ns or _is_active(child):
                _remove_keeping_tail(element, child)
                continue
            name = _local(child.tag)
            is_link = name.lower() == "a"
            _clean_attributes(child, is_link)
            # A link becomes a plain group: the same drawing, nothing to click.
            child.tag = "g" if is_link else name
            stack.append((child, depth + 1))
    uses_xlink = any(_XLINK_HREF in element.attrib for element in root.iter())
    for element in root.iter():
        if _XLINK_HREF in element.attrib:
            element.attrib["xlink:href"] = element.attrib.pop(_XLINK_HREF)
    root.set("xmlns", SVG_NS)
    if uses_xlink:
        root.set("xmlns:xlink", XLINK_NS)


def _is_active(element: ET.Element) -> bool:
    name = _local(element.tag).lower()
    if name in _DROPPED_ELEMENTS:
        return True
    if name == "style":
        return unsafe_css(element.text or "")
    if name in _ANIMATIONS:
        target = _local(element.get("attributeName", "")).split(":")[-1].strip().lower()
        return target == "href" or target.startswith("on")
    return False


def _remove_keeping_tail(parent: ET.Element, child: ET.Element) -> None:
    # Text after a removed element belongs to the parent; without this, sibling text would vanish.
    if child.tail:
        index = list(parent).index(child)
        if index > 0:
            previous = parent[index - 1]
            previous.tail = (previous.tail or "") + child.tail
        else:
            parent.text = (parent.text or "") + child.tail
    parent.remove(child)


def _clean_attributes(element: ET.Element, is_link: bool) -> None:
    for name, value in list(element.attrib.items()):
        local = _local(name).lower()
        if (
            (_namespace(name) and name not in _KEPT_FOREIGN_ATTRIBUTES)
            or local.startswith("on")
            or (local == "href" and (is_link or not safe_reference(value)))
            or (is_link and local == "target")
            or (local != "href" and unsafe_css(value))
        ):
            del element.attrib[name]


def safe_reference(value: str) -> bool:
    """Same-document fragments and inline raster images only."""
    value = value.strip()
    return value.startswith("#") or _SAFE_DATA_URL.match(value) is not None


def unsafe_css(text: str) -> bool:
    """CSS (or any attribute value) that could load something or run script."""
    lowered = text.lower()
    if any(marker in lowered for marker in _CSS_FORBIDDEN):
        return True
    if "url(" not in lowered:
        return False
    targets = [match.group(2) for match in _CSS_URL.finditer(text)]
    return len(targets) != lowered.count("url(") or not all(safe_reference(target) for target in targets)


def document_size(attributes: dict[str, str]) -> tuple[int, int]:
    """CSS pixel size from width/height, completed from the viewBox aspect, else the viewBox, else 300x150."""
    width, height = _length(attributes.get("width")), _length(attributes.get("height"))
    view_box = _view_box(attributes.get("viewBox"))
    if width is None and height is None and view_box is not None:
        width, height = view_box
    elif view_box is not None and width is not None and height is None:
        height = width * view_box[1] / view_box[0]
    elif view_box is not None and height is not None and width is None:
        width = height * view_box[0] / view_box[1]
    if width is None or height is None:
        return DEFAULT_SIZE
    return _side(width), _side(height)


def _side(value: float) -> int:
    return max(1, min(_MAX_SIDE, round(value)))


def _length(value: str | None) -> float | None:
    match = _LENGTH.match(value or "")
    if match is None:
        return None  # absent, percentage, or relative (em/ex) units: no intrinsic size
    number = float(match.group(1)) * _PX_PER_UNIT[match.group(2) or "px"]
    return number if 0 < number < float("inf") else None


def _view_box(value: str | None) -> tuple[float, float] | None:
    parts = re.split(r"[\s,]+", (value or "").strip())
    if len(parts) != 4:
        return None
    try:
        width, height = float(parts[2]), float(parts[3])
    except ValueError:
        return None
    return (width, height) if 0 < width < float("inf") and 0 < height < float("inf") else None
