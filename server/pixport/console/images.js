// The image page: renditions and their sizes, the original's facts, EXIF, GPS, colours, near-duplicate.

import { ApiError, request } from "./api.js";
import { alertBox, facts, formatBytes, h, link, replace, timeElement } from "./dom.js";
import { placeholderDataUrl } from "./thumbhash.js";

const RENDITION_ORDER = ["original", "mini", "large", "full", "fit2000", "fill100"];

function degrees(value, positive, negative) {
  const hemisphere = value < 0 ? negative : positive;
  const absolute = Math.abs(value);
  const d = Math.floor(absolute);
  const m = Math.floor((absolute - d) * 60);
  const s = ((absolute - d) * 60 - m) * 60;
  return `${d}° ${m}′ ${s.toFixed(1)}″ ${hemisphere}`;
}

function locationSection(gps) {
  if (!gps || (gps.lat === undefined && gps.lng === undefined)) {
    return h("p", { class: "muted" }, "No location in this image's EXIF.");
  }
  const lat = Number(gps.lat);
  const lng = Number(gps.lng);
  const map = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lng}#map=15/${lat}/${lng}`;
  return h("div", { class: "location" },
    facts([
      ["Latitude", h("span", { class: "mono", dataset: { gps: "lat" } }, lat.toFixed(6))],
      ["Longitude", h("span", { class: "mono", dataset: { gps: "lng" } }, lng.toFixed(6))],
      ["In degrees", `${degrees(lat, "N", "S")}, ${degrees(lng, "E", "W")}`],
    ]),
    h("p", {}, h("a", { href: map, rel: "noopener noreferrer", target: "_blank" }, "Open in OpenStreetMap"),
      h("span", { class: "muted" }, " (an external site)")));
}

function exifValue(value) {
  if (value === null || value === undefined) return "—";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function exifTable(exif) {
  const entries = Object.entries(exif || {}).sort(([a], [b]) => a.localeCompare(b));
  if (!entries.length) return h("p", { class: "muted" }, "No EXIF.");
  return h("div", { class: "table-wrap" }, h("table", { class: "exif" },
    h("caption", { class: "visually-hidden" }, "EXIF tags by name"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Tag"), h("th", { scope: "col" }, "Value"))),
    h("tbody", {}, entries.map(([name, value]) => h("tr", { dataset: { tag: name } },
      h("th", { scope: "row" }, name), h("td", { class: "wrap" }, exifValue(value)))))));
}

/** Black or white text, whichever reads better on the swatch (WCAG relative luminance). */
function textOn(hex) {
  const channel = (offset) => {
    const value = parseInt(hex.slice(offset, offset + 2), 16) / 255;
    return value <= 0.03928 ? value / 12.92 : ((value + 0.055) / 1.055) ** 2.4;
  };
  const luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
  return luminance > 0.179 ? "#000000" : "#ffffff";
}

function swatches(colors) {
  if (!colors?.length) return h("p", { class: "muted" }, "No colours.");
  const strip = h("div", { class: "colour-strip", "aria-hidden": "true" });
  const list = h("ul", { class: "swatches" });
  for (const colour of colors) {
    const hex = /^#[0-9a-fA-F]{6}$/.test(colour.hex) ? colour.hex : "#808080";
    const share = h("span", { class: "colour-share" });
    share.style.background = hex;
    share.style.flexGrow = String(Math.max(0.5, Number(colour.percent) || 0));
    strip.append(share);
    const chip = h("span", { class: "swatch" }, hex.toUpperCase());
    chip.style.background = hex;
    chip.style.color = textOn(hex);
    list.append(h("li", {}, chip, ` ${Number(colour.percent || 0).toFixed(1)}%`));
  }
  return h("div", {}, strip, list);
}

/** A table of renditions; pixel sizes are measured from the bytes, byte sizes from a HEAD request. */
function renditionsTable(record) {
  const rank = (name) => (RENDITION_ORDER.includes(name) ? RENDITION_ORDER.indexOf(name) : RENDITION_ORDER.length);
  const names = Object.keys(record.renditions || {}).sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
  const rows = names.map((name) => {
    const url = record.renditions[name];
    const size = h("td", { class: "rendition-size" }, name === "original" ? `${record.width} × ${record.height}` : "…");
    const bytes = h("td", { class: "rendition-bytes" }, name === "original" ? formatBytes(record.byteSize) : "…");
    const type = h("td", {}, name === "original" ? record.mimeType : "…");
    let preview = h("span", { class: "muted" }, "not loaded (full size)");
    if (name !== "original") {
      const image = h("img", { class: "rendition-preview", alt: `${name} rendition`, decoding: "async" });
      image.addEventListener("load", () => {
        size.textContent = `${image.naturalWidth} × ${image.naturalHeight}`;
      }, { once: true });
      image.addEventListener("error", () => {
        size.textContent = "failed to load";
      }, { once: true });
      image.src = url;
      preview = image;
      // The bytes themselves (from the HTTP cache, as rendition URLs are immutable): renditions are
      // streamed, so a HEAD request has no Content-Length to read.
      fetch(url, { credentials: "omit", cache: "force-cache" }).then(async (response) => {
        if (!response.ok) throw new Error(`HTTP ${response.status}`);
        const blob = await response.blob();
        bytes.textContent = formatBytes(blob.size);
        type.textContent = blob.type || (response.headers.get("Content-Type") || "—").split(";")[0];
      }).catch(() => {
        bytes.textContent = "—";
        type.textContent = "—";
      });
    }
    return h("tr", { dataset: { rendition: name } },
      h("th", { scope: "row" }, name), h("td", {}, preview), size, bytes, type,
      h("td", {}, h("a", { href: url, target: "_blank", rel: "noopener" }, "Open")));
  });
  return h("div", { class: "table-wrap" }, h("table", { class: "renditions" },
    h("caption", { class: "visually-hidden" }, "Renditions"),
    h("thead", {}, h("tr", {}, ["Name", "Preview", "Pixels", "Bytes", "Type", ""].map((n) => h("th", { scope: "col" }, n)))),
    h("tbody", {}, rows)));
}

/** The image with its placeholder behind it until the bytes arrive. */
export function picture(record, rendition, className) {
  const frame = h("div", { class: className });
  const placeholder = placeholderDataUrl(record.placeholder);
  if (placeholder) frame.style.backgroundImage = `url("${placeholder}")`;
  if (record.width && record.height) frame.style.aspectRatio = `${record.width} / ${record.height}`;
  const image = h("img", {
    alt: record.title || record.externalId || record.mediaId, width: record.width, height: record.height,
    decoding: "async",
  });
  image.addEventListener("load", () => frame.classList.add("loaded"), { once: true });
  image.src = record.renditions?.[rendition] || record.renditions?.full || "";
  frame.append(image);
  return frame;
}

async function duplicateSection(record, signal) {
  const duplicate = record.duplicateOf;
  if (!duplicate?.mediaId) return h("p", { class: "muted" }, "Not a near-duplicate of an earlier image.");
  let other = null;
  try {
    other = await request(`/api/v1/images/${encodeURIComponent(duplicate.mediaId)}`, { signal });
  } catch (error) {
    return alertBox(`Near-duplicate of ${duplicate.mediaId}, which cannot be read: ${error.message}`);
  }
  const distance = Number(duplicate.distance || 0);
  return h("div", { class: "duplicate" },
    h("p", { class: "distance" }, `Perceptual-hash distance ${distance} of 64 bits`,
      distance === 0 ? " (visually identical)" : ""),
    h("div", { class: "side-by-side" },
      h("figure", {}, picture(record, "full", "pair-image"), h("figcaption", {}, "This image")),
      h("figure", {}, link(`/images/${encodeURIComponent(other.mediaId)}`, picture(other, "full", "pair-image")),
        h("figcaption", {}, "Earlier image ", link(`/images/${encodeURIComponent(other.mediaId)}`,
          h("span", { class: "mono" }, other.title || other.mediaId))))));
}

function recordFacts(record) {
  return facts([
    ["Media id", h("span", { class: "mono" }, record.mediaId)],
    ["Source", record.systemName ? `${record.systemName} / ${record.externalId}` : ""],
    ["Original", h("span", { dataset: { fact: "dimensions" } }, `${record.width} × ${record.height} px`)],
    ["Type", `${record.mimeType} (${record.format})`],
    ["Size", formatBytes(record.byteSize)],
    ["Taken at", record.takenAt ? h("span", { dataset: { fact: "taken-at" } }, timeElement(record.takenAt)) : "unknown"],
    ["Frames", String(record.frameCount || 1)],
    ["Alpha", record.hasAlpha ? "yes" : "no"],
    ["Grayscale", record.isGrayscale ? "yes" : "no"],
    ["SHA-256", h("span", { class: "mono wrap" }, record.sha256)],
    ["pHash", record.phash ? h("span", { class: "mono" }, record.phash) : ""],
    ["Created", timeElement(record.createdAt)],
    ["Updated", timeElement(record.updatedAt)],
  ]);
}

export function imagePage(mediaId) {
  const controller = new AbortController();
  const body = h("div", {}, h("p", { class: "muted" }, "Loading the image…"));
  const heading = h("h1", { id: "page-title", tabindex: "-1" }, "Image ", h("span", { class: "mono" }, mediaId));
  const load = async () => {
    let record;
    try {
      record = await request(`/api/v1/images/${encodeURIComponent(mediaId)}`, { signal: controller.signal });
    } catch (error) {
      if (controller.signal.aborted) return;
      replace(body, alertBox(error instanceof ApiError && error.status === 404
        ? `No image ${mediaId} in this organisation.` : error.message));
      return;
    }
    replace(heading, record.title || record.externalId || "Image", " ",
      h("span", { class: "mono muted small" }, record.mediaId));
    document.title = `${record.title || record.mediaId} · pixport console`;
    const duplicate = h("div", {}, h("p", { class: "muted" }, "…"));
    const metadata = record.metadata && Object.keys(record.metadata).length
      ? h("pre", { class: "json" }, JSON.stringify(record.metadata, null, 2)) : h("p", { class: "muted" }, "None.");
    replace(body,
      h("div", { class: "image-layout" },
        h("figure", { class: "hero" }, picture(record, "full", "hero-image"),
          h("figcaption", { class: "muted" }, "The full rendition, over its ThumbHash placeholder.")),
        h("section", { class: "card", "aria-labelledby": "facts-title" },
          h("h2", { id: "facts-title" }, "Original"), recordFacts(record))),
      h("section", { class: "card", "aria-labelledby": "gps-title" },
        h("h2", { id: "gps-title" }, "Location (GPS)"), locationSection(record.gps)),
      h("section", { class: "card", "aria-labelledby": "colours-title" },
        h("h2", { id: "colours-title" }, "Colours"), swatches(record.colors)),
      h("section", { class: "card", "aria-labelledby": "renditions-title" },
        h("h2", { id: "renditions-title" }, "Renditions"), renditionsTable(record)),
      h("section", { class: "card", "aria-labelledby": "duplicate-title" },
        h("h2", { id: "duplicate-title" }, "Near-duplicate"), duplicate),
      h("section", { class: "card", "aria-labelledby": "exif-title" },
        h("h2", { id: "exif-title" }, "EXIF"), exifTable(record.exif)),
      h("section", { class: "card", "aria-labelledby": "metadata-title" },
        h("h2", { id: "metadata-title" }, "Metadata"), metadata));
    replace(duplicate, await duplicateSection(record, controller.signal));
  };
  load();
  return {
    title: `Image ${mediaId}`,
    node: h("section", { "aria-labelledby": "page-title" },
      h("p", { class: "crumbs" }, h("a", { href: "#/jobs", onclick: (event) => {
        if (window.history.length > 1) {
          event.preventDefault();
          window.history.back();
        }
      } }, "← Back")), heading, body),
    cleanup: () => controller.abort(),
  };
}
