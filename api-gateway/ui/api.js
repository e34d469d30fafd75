// Talking to the gateway: the API key, JSON calls, and Server-Sent Events read with
// fetch(). EventSource cannot send headers, and the key must never be put in a URL
// (URLs end up in logs), so streams are read from a ReadableStream here instead.

const KEY = "hostbridge.apiKey";

/** The key for this tab only (sessionStorage ends with the tab). */
export const apiKey = {
  get: () => sessionStorage.getItem(KEY) || "",
  set: (key) => sessionStorage.setItem(KEY, key),
  clear: () => sessionStorage.removeItem(KEY),
};

/** An error answer of the API: `{success:false, error:{code, message, details}}`. */
export class ApiError extends Error {
  constructor(status, body) {
    const error = (body && body.error) || {};
    super(error.message || (body && body.detail) || `HTTP ${status}`);
    this.status = status;
    this.code = error.code || "";
    this.field = (error.details && error.details.field) || null;
  }
}

let unauthorized = () => {};
/** Called whenever the gateway answers 401 (no key, or a wrong one). */
export function onUnauthorized(handler) { unauthorized = handler; }

function headers(extra) {
  const h = new Headers(extra || {});
  const key = apiKey.get();
  if (key) h.set("X-API-Key", key);
  return h;
}

/** A JSON call; resolves to the body, rejects with an ApiError. */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, headers: headers({ Accept: "application/json" }), signal };
  if (body !== undefined) {
    init.headers.set("Content-Type", "application/json");
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  let json = null;
  try { json = await response.json(); } catch { /* an empty or non-JSON answer */ }
  if (response.status === 401) unauthorized();
  if (!response.ok || (json && json.success === false)) throw new ApiError(response.status, json);
  return json;
}

/**
 * Follows an SSE stream until `signal` aborts: `onEvent({event, id, data})` for each
 * event (data parsed as JSON when it is JSON), `onState("open"|"retrying"|"closed")`.
 * Reconnects with exponential backoff (0.5 s doubling to 15 s, with jitter); a stream
 * that ends by itself (an operation's stream ends after its terminal event) is not
 * reopened when `once` is set.
 */
export function stream(path, { onEvent, onState = () => {}, signal, once = false }) {
  let delay = 500;
  const run = async () => {
    while (!signal.aborted) {
      let ended = false;
      try {
        const response = await fetch(path, {
          headers: headers({ Accept: "text/event-stream" }),
          signal,
          cache: "no-store",
        });
        if (response.status === 401) { unauthorized(); onState("closed"); return; }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState("open");
        delay = 500;
        await readEvents(response.body, onEvent);
        ended = true;
      } catch (e) {
        if (signal.aborted) return;
      }
      if (ended && once) { onState("closed"); return; }
      onState("retrying");
      const wait = delay / 2 + Math.random() * delay / 2;
      delay = Math.min(delay * 2, 15000);
      await new Promise((resolve) => {
        const timer = setTimeout(resolve, wait);
        signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
      });
    }
  };
  run();
}

/** Parses the `text/event-stream` format (fields `event`, `id`, `data`; `:` comments). */
async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let event = { event: "message", id: null, data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let newline;
    while ((newline = buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + (buffer.startsWith("\r\n", newline) ? 2 : 1));
      if (line === "") {
        if (event.data.length) dispatch(event, onEvent);
        event = { event: "message", id: null, data: [] };
        continue;
      }
      if (line.startsWith(":")) continue; // keep-alive comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") event.event = value;
      else if (field === "id") event.id = value;
      else if (field === "data") event.data.push(value);
    }
  }
}

function dispatch(event, onEvent) {
  const text = event.data.join("\n");
  let data = text;
  try { data = JSON.parse(text); } catch { /* not JSON: pass the text */ }
  try { onEvent({ event: event.event, id: event.id, data }); } catch (e) { console.warn("event handler failed", e); }
}
