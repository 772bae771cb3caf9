// Albums of the SharinPix dialect: an album's images and whether pixport has processed them yet.

import { ApiError, describeCredential, loadCredential, request } from "./api.js";
import { alertBox, badge, formatBytes, h, link, replace, timeElement } from "./dom.js";

const RECHECK_MS = 5000; // while images are still processing; album images have no event stream

export function albumsPage() {
  const input = h("input", {
    id: "album-input", name: "album", type: "text", required: true, autocomplete: "off", spellcheck: "false",
    "aria-describedby": "album-help",
  });
  const form = h("form", { class: "card inline-form" },
    h("label", { for: "album-input" }, "Album id"),
    h("div", { class: "row" }, input, h("button", { type: "submit", class: "button-primary" }, "Show album")),
    h("p", { id: "album-help", class: "help" },
      "Albums are created by ", h("code", {}, "POST /api/v1/imports"), " and ",
      h("code", {}, "POST /api/v1/albums/{album_id}/images"), "."));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const album = input.value.trim();
    if (album) window.location.hash = `#/albums/${encodeURIComponent(album)}`;
    else input.focus();
  });
  const albums = describeCredential(loadCredential()).albums;
  return {
    title: "Albums",
    node: h("section", { "aria-labelledby": "page-title" },
      h("h1", { id: "page-title", tabindex: "-1" }, "Albums"), form,
      albums.length ? h("section", { "aria-labelledby": "token-albums" },
        h("h2", { id: "token-albums" }, "Albums this token may use"),
        h("ul", { class: "plain" }, albums.map((album) => h("li", {}, link(`/albums/${encodeURIComponent(album)}`, album)))))
        : null),
  };
}

function processingState(image) {
  if (image.processing_error) return "failed";
  return image.processed ? "processed" : "processing";
}

function albumRow(image) {
  const state = processingState(image);
  const mini = image.processed ? image.thumbnails?.mini || image.external_urls?.mini : "";
  const media = mini
    ? link(`/images/${encodeURIComponent(image.id)}`, h("img", { class: "thumb", src: mini, alt: image.filename || image.id, width: "100", height: "100" }))
    : h("span", { class: "tile-icon", "aria-hidden": "true" }, state === "failed" ? "!" : "…");
  return h("li", { class: `tile tile-${state}`, dataset: { imageId: image.id, state } },
    h("div", { class: "tile-media" }, media),
    h("div", { class: "tile-caption" },
      h("span", { class: "tile-title" }, image.filename || image.id),
      badge(state),
      image.width ? h("span", { class: "muted small" }, `${image.width} × ${image.height} · ${formatBytes(image.size)}`) : null,
      image.taken_at ? h("span", { class: "muted small" }, "taken ", timeElement(image.taken_at)) : null,
      image.processing_error ? h("p", { class: "reason" }, String(image.processing_error)) : null));
}

export function albumPage(albumId) {
  const controller = new AbortController();
  const status = h("div", {});
  const grid = h("ul", { class: "grid", "aria-label": `Images of album ${albumId}` });
  let timer = null;
  const load = async () => {
    clearTimeout(timer);
    try {
      const answer = await request(`/api/v1/albums/${encodeURIComponent(albumId)}/images`, {
        query: { page_size: 500 }, signal: controller.signal,
      });
      const images = answer.images || [];
      const waiting = images.filter((image) => processingState(image) === "processing").length;
      replace(status, h("p", { class: images.length ? "muted" : "empty" }, images.length
        ? `${images.length} image(s); ${waiting} still processing${waiting ? " (checked again every 5 s)" : ""}.`
        : "No images in this album yet."));
      replace(grid, images.map(albumRow));
      if (waiting && !controller.signal.aborted) timer = setTimeout(load, RECHECK_MS);
    } catch (error) {
      if (controller.signal.aborted) return;
      replace(status, alertBox(error instanceof ApiError && error.status === 403
        ? `${error.message} (the token needs public-api:read or an ability for this album)` : error.message));
    }
  };
  load();
  return {
    title: `Album ${albumId}`,
    node: h("section", { "aria-labelledby": "page-title" },
      h("p", { class: "crumbs" }, link("/albums", "← Albums")),
      h("div", { class: "page-head" },
        h("h1", { id: "page-title", tabindex: "-1" }, "Album ", h("span", { class: "mono" }, albumId)),
        h("button", { type: "button", class: "button-quiet", onclick: load }, "Refresh")),
      status, grid),
    cleanup: () => {
      clearTimeout(timer);
      controller.abort();
    },
  };
}
