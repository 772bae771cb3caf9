// The pixport web console: sign-in, the hash router and the page shell.
//
// Routes live in the URL fragment (#/jobs, #/jobs/ID, #/images/ID, #/albums/ID), so the edge serves one
// index.html and deep links work. `#token=...` (printed by `pixport console-url`) signs in and is removed
// from the address bar and the history before anything else runs.

import {
  clearCredential, describeCredential, loadCredential, onUnauthorised, parseCredential, saveCredential,
} from "./api.js";
import { albumPage, albumsPage } from "./albums.js";
import { alertBox, h, replace } from "./dom.js";
import { imagePage } from "./images.js";
import { jobPage, jobsPage } from "./jobs.js";

const main = document.getElementById("main");
let cleanup = null;
let firstRender = true;
let notice = null; // {text, error}: shown once on the sign-in page

function fragmentParams() {
  const fragment = window.location.hash.slice(1);
  return fragment.startsWith("/") ? null : new URLSearchParams(fragment);
}

/**
 * Takes a `#token=...` fragment (optionally with `next=/route`): stores the token and rewrites the URL
 * without it, at once, so that it is neither in the history nor in a bookmark.
 */
function consumeFragmentToken() {
  const params = fragmentParams();
  if (!params?.has("token")) return;
  const credential = parseCredential(params.get("token") || "");
  const requested = params.get("next") || "";
  const next = requested.startsWith("/") ? requested : "/jobs";
  window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${next}`);
  if (credential) saveCredential(credential);
  else notice = { text: "The sign-in link's token is not a JWT; paste a token instead.", error: true };
}

function parseRoute() {
  const raw = window.location.hash.replace(/^#/, "") || "/jobs";
  const [path, query = ""] = raw.split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  return { parts, params: new URLSearchParams(query) };
}

function updateShell(credential, section) {
  const nav = document.getElementById("main-nav");
  const session = document.getElementById("session");
  nav.hidden = session.hidden = !credential;
  for (const anchor of nav.querySelectorAll("a[data-nav]")) {
    if (anchor.dataset.nav === section) anchor.setAttribute("aria-current", "page");
    else anchor.removeAttribute("aria-current");
  }
  if (credential) {
    const about = describeCredential(credential);
    const parts = [];
    if (about.user) parts.push("user token");
    else if (about.scopes.length) parts.push(about.scopes.map((scope) => scope.replace("public-api:", "")).join("+"));
    if (about.albums.length) parts.push(`albums: ${about.albums.join(", ")}`);
    if (about.expires) {
      parts.push(`until ${about.expires.toLocaleString(undefined, { dateStyle: "short", timeStyle: "short" })}`);
    }
    document.getElementById("session-info").textContent = `Signed in (${parts.join(", ") || "token"})`;
  }
}

function signInPage() {
  const field = h("textarea", {
    id: "token-input", name: "token", rows: 4, required: true, autocomplete: "off", spellcheck: "false",
    autocapitalize: "off", "aria-describedby": "token-help",
  });
  const error = h("div", { id: "sign-in-error" });
  const form = h("form", { class: "card sign-in", novalidate: true },
    h("label", { for: "token-input" }, "API token"),
    field,
    h("p", { id: "token-help", class: "help" },
      "Paste a token minted by ", h("code", {}, "pixport token"), " as a bare JWT, ",
      h("code", {}, "Bearer <jwt>"), " or ", h("code", {}, 'Token token="<jwt>"'),
      ". Or open the link printed by ", h("code", {}, "pixport console-url --org ORG"),
      ". The token stays in this tab only (sessionStorage) and is sent as a header, never in a URL."),
    h("button", { type: "submit", class: "button-primary" }, "Sign in"),
    error);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const credential = parseCredential(field.value);
    if (!credential) {
      replace(error, alertBox("That is not a token: expected a JWT, `Bearer <jwt>` or `Token token=\"<jwt>\"`."));
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    field.value = "";
    saveCredential(credential);
    render(); // the page the address asked for (a deep link survives signing in)
  });
  return {
    title: "Sign in",
    node: h("section", { "aria-labelledby": "page-title" },
      h("h1", { id: "page-title", tabindex: "-1" }, "Sign in"),
      notice && (notice.error ? alertBox(notice.text) : h("p", { class: "notice", role: "status" }, notice.text)),
      form),
  };
}

function notFound() {
  return {
    title: "Not found",
    node: h("section", {}, h("h1", { id: "page-title", tabindex: "-1" }, "Nothing here"),
      h("p", {}, h("a", { href: "#/jobs" }, "Back to the jobs"))),
  };
}

function pageFor(route) {
  const [section, id] = route.parts;
  if (section === "jobs" && id) return jobPage(id, route.params);
  if (section === "jobs" || !section) return jobsPage(route.params);
  if (section === "images" && id) return imagePage(id);
  if (section === "albums" && id) return albumPage(id);
  if (section === "albums") return albumsPage();
  return notFound();
}

function render() {
  if (cleanup) cleanup();
  cleanup = null;
  const route = parseRoute();
  const credential = loadCredential();
  updateShell(credential, route.parts[0] || "jobs");
  const page = credential ? pageFor(route) : signInPage();
  notice = null;
  replace(main, page.node);
  cleanup = page.cleanup || null;
  document.title = `${page.title} · pixport console`;
  // Move focus to the new page's heading, as a screen reader user expects after navigation.
  if (!firstRender) main.querySelector("h1")?.focus();
  firstRender = false;
}

consumeFragmentToken();
onUnauthorised(() => {
  clearCredential();
  notice = { text: "The server refused the token (expired, revoked or malformed). Sign in again.", error: true };
  render();
});
document.getElementById("sign-out").addEventListener("click", () => {
  clearCredential();
  notice = { text: "Signed out. The token was removed from this tab.", error: false };
  render();
});
document.getElementById("skip-link").addEventListener("click", (event) => {
  event.preventDefault(); // the fragment is the router's; move focus instead
  main.focus();
});
window.addEventListener("hashchange", () => {
  if (fragmentParams()?.has("token")) consumeFragmentToken();
  render();
});
// Tests (and people in the devtools) can tell that the page was never reloaded.
window.pixportConsoleBootedAt = performance.timeOrigin;
render();
