/* The JSON API (docs/dashboard.md) and the live event stream (Server-Sent Events on /api/live). */
import { $, h } from "./dom.js";

export class ApiError extends Error {
  constructor(message, status = 0) { super(message); this.status = status; }
}

/** GET (or POST with options.json) a JSON route; a 401 sends the browser to the login page. */
export async function api(path, options = {}) {
  const init = { credentials: "same-origin", headers: { Accept: "application/json" }, ...options };
  if (options.json !== undefined) {
    init.method = init.method || "POST";
    init.body = JSON.stringify(options.json);
    init.headers["Content-Type"] = "application/json";
    delete init.json;
  }
  const resp = await fetch(path, init);
  if (resp.status === 401) {
    window.location.assign(`/login?next=${encodeURIComponent(location.pathname + location.search)}`);
    throw new ApiError("authentication required", 401);
  }
  let body = null;
  try { body = await resp.json(); } catch (_) { /* non-JSON error */ }
  if (!resp.ok) throw new ApiError((body && body.error) || `${resp.status} ${resp.statusText}`, resp.status);
  return body;
}

/** Relay the live stream's events as `footfall:<type>` DOM events; `footfall:reconnect` after a drop. */
export function startLive() {
  const dot = $("#live-status");
  if (!dot || !window.EventSource) return;
  const es = new EventSource("/api/live");
  let opened = 0;
  es.addEventListener("open", () => {
    dot.dataset.state = "open"; dot.title = "Live updates connected";
    // Events sent while disconnected are not replayed: after a reconnect, pages reload their state.
    if (opened++ > 0) document.dispatchEvent(new CustomEvent("footfall:reconnect"));
  });
  es.addEventListener("error", () => { dot.dataset.state = "error"; dot.title = "Live updates disconnected — retrying"; });
  const relay = (type) => es.addEventListener(type, (ev) => {
    let data;
    try { data = JSON.parse(ev.data); } catch (_) { return; }
    document.dispatchEvent(new CustomEvent(`footfall:${type}`, { detail: data }));
  });
  ["live", "summary", "run", "alert", "alert_ack", "health"].forEach(relay);
  document.addEventListener("footfall:alert", (ev) => toast(ev.detail));
}

function toast(alert) {
  const box = $("#toasts");
  if (!box) return;
  const sev = alert.severity || "info";
  const t = h("div", { class: `toast sev-l-${sev}`, role: "status" },
    h("strong", {}, h("span", { class: `badge sev-${sev}`, text: sev }), " ", alert.title || "New alert"),
    h("div", { class: "muted", text: alert.message ? alert.message.slice(0, 180) : "" }),
    h("a", { href: "/alerts", text: "Open alerts" }));
  box.append(t);
  setTimeout(() => t.remove(), 12000);
}
