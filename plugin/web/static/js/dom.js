/* DOM building and number/date formatting shared by every page.
 *
 * User-supplied text is only ever inserted with textContent: h() never sets innerHTML.
 */

export const $ = (sel, root = document) => root.querySelector(sel);

const SVG_TAGS = ["svg", "path", "circle", "line", "text", "g", "rect", "title", "ellipse"];

/** Build an element. attrs: class, text, title, data-*, aria-*, on<event>; children: nodes or strings. */
export function h(tag, attrs = {}, ...children) {
  const svg = SVG_TAGS.includes(tag);
  const el = svg ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") el.textContent = String(v);
    else if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class" && !svg) el.className = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function fill(container, ...nodes) {
  container.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
  container.removeAttribute("aria-busy");
}

export function showError(container, err) {
  fill(container, h("p", { class: "error", role: "alert", text: `Could not load: ${err.message}` }));
}

/** Replace the page's content with a "not found" message (an unknown or deleted run, a foreign id). */
export function showNotFound(title, message, back) {
  document.title = `${title} · footfall`;
  fill(document.getElementById("main"),
    h("section", { class: "card not-found", id: "not-found" },
      h("h1", { class: "page-title", text: title }), h("p", { text: message }),
      back ? h("p", {}, h("a", { class: "btn", href: back.href, text: back.text })) : null));
}

export const isNum = (v) => typeof v === "number" && Number.isFinite(v);
export const num = (v, digits = 0) => (isNum(v) ? v.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–");
export const pct = (v, digits = 0) => (isNum(v) ? `${num(v * 100, digits)} %` : "–");
export const toDate = (t) => (t === null || t === undefined ? null : typeof t === "number" ? new Date(t * 1000) : new Date(t));
export const fmtDate = (t) => { const d = toDate(t); return d ? d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" }) : "–"; };
export const fmtDateTime = (t) => { const d = toDate(t); return d ? d.toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "–"; };
export const fmtDuration = (s) => {
  if (!isNum(s)) return "–";
  const m = Math.round(s / 60);
  return m >= 120 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}` : `${m} min`;
};
export const ago = (t) => {
  const d = toDate(t); if (!d) return "";
  const s = (Date.now() - d.getTime()) / 1000;
  if (s < 90) return "just now";
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 172800) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} days ago`;
};
export const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

// Explanations shown on hover, with units and sources (docs/design.md §4).
export const GLOSSARY = {
  cadence: "Steps per minute, both feet. Raising it 5–10 % lowers loading rate and knee load (Heiderscheit 2011; Willy 2016).",
  valr: "Vertical average loading rate in body weights per second: slope between 20 % and 80 % of the impact peak, corrected for the insole's sample rate; ≈ marks the mean with its 90 % interval. Typical 40–100 BW/s; compare with your own baseline.",
  vilr: "Vertical instantaneous loading rate: the steepest slope in the same window (BW/s).",
  si: "Strike index: where the centre of pressure lands along the foot, 0 = heel, 1 = toe (Cavanagh & Lafortune 1980). Rearfoot < 0.33 ≤ midfoot ≤ 0.67 < forefoot.",
  contact: "Ground contact time per step in milliseconds.",
  duty: "Duty factor: the share of each stride that the foot is on the ground.",
  peak: "Peak vertical force per step in body weights (BW).",
  asym: "Left/right symmetry index (R − L) / mean × 100 (Herzog 1989). 0 % = even; report against your own baseline — 10 % is a convention, not evidence.",
  zone: "The part of the foot that touches down first.",
  steps: "Steps counted on both feet.",
  duration: "Time from the first to the last step of the run.",
};

// Loading rate of a run (contract v2 carries a 90 % interval): "≈ 180" and "90 % interval 150–210 BW/s".
const hasInterval = (r) => isNum(r.valr_mean) && isNum(r.valr_lo) && isNum(r.valr_hi);
export const valrValue = (r) => (hasInterval(r) ? `≈ ${num(r.valr_mean)}` : num(r.valr_mean));
export const valrInterval = (r) => (hasInterval(r) ? `90 % interval ${num(r.valr_lo)}–${num(r.valr_hi)} BW/s` : null);
export const valrCell = (r) => (hasInterval(r) ? `≈ ${num(r.valr_mean)} (${num(r.valr_lo)}–${num(r.valr_hi)})` : num(r.valr_mean));
/** An address that may wrap only between its parts (after "://", "@", "/", before ":port"), never inside a
 * host name or a number. */
export function address(url) {
  const parts = String(url).split(/(?<=:\/\/|@|[^/:]\/)|(?=:\d+(?:\/|$))/).filter(Boolean);
  return h("span", { class: "address" }, parts.flatMap((p, i) => [i ? h("wbr") : null, h("span", { class: "nobr", text: p })]));
}

export function stat(label, value, unit, tipKey, sub) {
  const words = typeof value === "string" && /[a-z]{3,}/i.test(value) && value.length > 8;
  return h("div", { class: "stat", "data-tip": tipKey ? GLOSSARY[tipKey] : null, title: tipKey ? GLOSSARY[tipKey] : null },
    h("div", { class: "label" }, label),
    h("div", { class: words ? "value words" : "value" }, value, unit ? h("span", { class: "unit", text: unit }) : null),
    sub instanceof Node ? h("div", { class: "sub" }, sub) : sub ? h("div", { class: "sub", text: sub }) : null);
}

export function zoneBar(r, m, f) {
  const total = (r || 0) + (m || 0) + (f || 0);
  if (!total) return h("p", { class: "muted", text: "No strike-zone data (single-zone insole or no steps)." });
  const w = (v) => `width:${(100 * v) / total}%`;
  return h("div", {},
    h("div", { class: "zonebar", role: "img", "aria-label": `rearfoot ${Math.round(100 * r / total)} %, midfoot ${Math.round(100 * m / total)} %, forefoot ${Math.round(100 * f / total)} %` },
      h("span", { class: "z-rear", style: w(r), title: `Rearfoot ${num(100 * r / total)} %` }),
      h("span", { class: "z-mid", style: w(m), title: `Midfoot ${num(100 * m / total)} %` }),
      h("span", { class: "z-fore", style: w(f), title: `Forefoot ${num(100 * f / total)} %` })),
    h("div", { class: "legend" },
      h("span", {}, h("i", { class: "z-rear" }), `Rearfoot ${num(100 * r / total)} %`),
      h("span", {}, h("i", { class: "z-mid" }), `Midfoot ${num(100 * m / total)} %`),
      h("span", {}, h("i", { class: "z-fore" }), `Forefoot ${num(100 * f / total)} %`)));
}
