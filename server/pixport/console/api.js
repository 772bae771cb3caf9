// The console's only door to the API: the token, JSON requests, and the live NDJSON job stream.
//
// The token lives in sessionStorage (gone when the tab closes) and travels only in the Authorization
// header: never in a URL, never in a log line, never in the DOM.

const STORAGE_KEY = "pixport.console.credential";

/** Reads a pasted token in any accepted spelling: a bare JWT, `Bearer <jwt>` or `Token token="<jwt>"`. */
export function parseCredential(text) {
  const value = (text || "").trim();
  let match = /^Bearer\s+(\S+)$/i.exec(value);
  if (match) return { scheme: "Bearer", jwt: match[1] };
  match = /^Token\s+token="?([^"\s]+)"?$/i.exec(value);
  if (match) return { scheme: "Token", jwt: match[1] };
  if (/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(value)) return { scheme: "Bearer", jwt: value };
  return null;
}

export function saveCredential(credential) {
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(credential));
}

export function loadCredential() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) || "null");
    return stored && typeof stored.jwt === "string" ? stored : null;
  } catch {
    return null;
  }
}

export function clearCredential() {
  sessionStorage.removeItem(STORAGE_KEY);
}

/** What the token says about itself (payload only; the server is the one that verifies it). */
export function describeCredential(credential) {
  try {
    const payload = JSON.parse(atob(credential.jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")));
    return {
      scopes: String(payload.scope || "").split(" ").filter(Boolean),
      expires: typeof payload.exp === "number" ? new Date(payload.exp * 1000) : null,
      albums: payload.abilities ? Object.keys(payload.abilities) : [],
      user: payload.user_id || null,
    };
  } catch {
    return { scopes: [], expires: null, albums: [], user: null };
  }
}

function authorization(credential) {
  return credential.scheme === "Token" ? `Token token="${credential.jwt}"` : `Bearer ${credential.jwt}`;
}

/** An API answer that was not 2xx, with the server's own message (google.rpc.Status or the edge's shape). */
export class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  // google.rpc.Status {code, message}, the edge's {code, message, requestId}, the quota's documented
  // [{status, error, error_details: {message}}], or an {error: {message}} envelope.
  const detail = Array.isArray(body) ? body[0]?.error_details?.message : body?.message || body?.error?.message;
  return new ApiError(response.status, detail || `HTTP ${response.status} ${response.statusText}`, body);
}

/** Listeners told when the server refuses the token (401), so the app can ask for a new one. */
const unauthorisedListeners = new Set();
export function onUnauthorised(listener) {
  unauthorisedListeners.add(listener);
}

function headersFor(credential, extra) {
  return { Accept: "application/json", Authorization: authorization(credential), ...extra };
}

function noteResponse(credential, response) {
  // Token-style tokens are refreshed by the server shortly before they expire (`X-token`).
  const fresh = response.headers.get("X-token");
  if (credential.scheme === "Token" && fresh && fresh !== credential.jwt) {
    credential.jwt = fresh;
    saveCredential(credential);
  }
  if (response.status === 401) unauthorisedListeners.forEach((listener) => listener());
}

/** A JSON request to the API; throws ApiError on a non-2xx answer. */
export async function request(path, { method = "GET", query = null, body = undefined, signal } = {}) {
  const credential = loadCredential();
  if (!credential) throw new ApiError(401, "not signed in", null);
  const url = new URL(path, window.location.origin);
  if (query) {
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null && value !== "") url.searchParams.set(key, String(value));
    }
  }
  const init = { method, headers: headersFor(credential), signal, cache: "no-store", credentials: "omit" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  noteResponse(credential, response);
  if (!response.ok) throw await errorFrom(response);
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

const sleep = (ms, signal) =>
  new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });

/**
 * Follows a job's event log over the NDJSON stream until its final event, resuming after the last sequence
 * seen when the connection drops (no gaps, no duplicates). `onEvent(event)` gets every event, the snapshot
 * first; `onConnection(state)` gets "live", "reconnecting" or "closed". Returns once the job is final, the
 * signal aborts, or the server refuses (then it throws the ApiError).
 */
export async function followJob(jobId, { signal, onEvent, onConnection = () => {}, afterSequence = 0 }) {
  let last = afterSequence;
  let failures = 0;
  while (!signal?.aborted) {
    const credential = loadCredential();
    if (!credential) throw new ApiError(401, "not signed in", null);
    const url = new URL("/api/v1/import/images/status/stream", window.location.origin);
    url.searchParams.set("id", jobId);
    url.searchParams.set("afterSequence", String(last));
    let finished = false;
    try {
      const response = await fetch(url, {
        headers: headersFor(credential, { Accept: "application/x-ndjson" }), signal, cache: "no-store",
        credentials: "omit",
      });
      noteResponse(credential, response);
      if (!response.ok) {
        const error = await errorFrom(response);
        // 4xx will not change by retrying; 5xx and 429 may.
        if (response.status < 500 && response.status !== 429) throw error;
        throw Object.assign(error, { retry: true });
      }
      onConnection("live");
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let newline;
        while ((newline = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, newline).trim();
          buffer = buffer.slice(newline + 1);
          if (!line) continue;
          const event = JSON.parse(line);
          if (!event.sequence && !event.snapshot && (event.code !== undefined || event.error)) {
            // The server failed mid-stream (the transcoder sends the status as a last line): resume.
            throw Object.assign(new ApiError(500, event.message || event.error?.message || "stream failed", event),
              { retry: true });
          }
          failures = 0;
          const sequence = Number(event.sequence || 0);
          if (sequence > last) last = sequence;
          onEvent(event);
          if (event.jobFinished || (event.snapshot && event.snapshot.finished)) finished = true;
        }
      }
    } catch (error) {
      if (signal?.aborted) break;
      if (error instanceof ApiError && !error.retry) {
        onConnection("closed");
        throw error;
      }
    }
    if (finished) break;
    // The stream ended before the job did (a dropped connection, a restarted server): resume from `last`.
    failures += 1;
    onConnection("reconnecting");
    await sleep(Math.min(10000, 500 * 2 ** Math.min(failures, 5)), signal);
  }
  onConnection("closed");
}
