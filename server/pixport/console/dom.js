// Small DOM and formatting helpers shared by the pages. Text always goes in as text nodes (never as HTML),
// so nothing an image's EXIF or a failure reason says can inject markup.

/** h("a", {href: "#/jobs", class: "x"}, "text", child...) builds an element. */
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") element.className = value;
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = value;
    else if (value === true) element.setAttribute(key, "");
    else element.setAttribute(key, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces an element's children. */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, children);
}

export const STATUSES = ["pending", "success", "skipped", "failed", "cancelled"];

export function formatNumber(value) {
  return new Intl.NumberFormat().format(value);
}

export function formatBytes(bytes) {
  const value = Number(bytes);
  if (!Number.isFinite(value) || value <= 0) return "—";
  const units = ["B", "KB", "MB", "GB"];
  let index = 0;
  let scaled = value;
  while (scaled >= 1000 && index < units.length - 1) {
    scaled /= 1000;
    index += 1;
  }
  return `${scaled.toFixed(index === 0 ? 0 : 1)} ${units[index]}`;
}

export function formatTime(iso) {
  if (!iso) return "—";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function timeElement(iso) {
  return iso ? h("time", { datetime: iso }, formatTime(iso)) : "—";
}

export function formatDuration(seconds) {
  if (!Number.isFinite(seconds) || seconds < 0) return "—";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A status or state shown as a word with a colour, never colour alone. */
export function badge(status) {
  return h("span", { class: `badge badge-${status}` }, status);
}

/** A link inside the console (hash routes), keyboard-focusable like any link. */
export function link(route, ...children) {
  return h("a", { href: `#${route}` }, ...children);
}

/** A definition list from [term, value] pairs; values may be nodes. Empty values are left out. */
export function facts(pairs, className = "facts") {
  return h("dl", { class: className },
    pairs.filter(([, value]) => value !== undefined && value !== null && value !== "")
      .map(([term, value]) => h("div", {}, h("dt", {}, term), h("dd", {}, value))));
}

/** A message block for errors: announced to screen readers. */
export function alertBox(message) {
  return h("p", { class: "alert", role: "alert" }, message);
}

/** A polite live region message (progress, finished jobs). */
export function announce(message) {
  const region = document.getElementById("announcer");
  if (region) region.textContent = message;
}

/** Runs `task` over `items` with at most `limit` at once (browsers allow ~6 connections per host). */
export function queue(limit) {
  const waiting = [];
  let running = 0;
  const next = () => {
    while (running < limit && waiting.length) {
      const { task, resolve, reject } = waiting.shift();
      running += 1;
      Promise.resolve().then(task).then(resolve, reject).finally(() => {
        running -= 1;
        next();
      });
    }
  };
  return (task) => new Promise((resolve, reject) => {
    waiting.push({ task, resolve, reject });
    next();
  });
}
