/* plotly helpers: one themed layout for every chart. Charts are SVG traces (no WebGL, no eval).
 *
 * plotly.min.js (≈ 4 MB) is not part of the page: it is loaded the first time a chart comes near the viewport,
 * so the cards draw first and a chart below the fold costs nothing until the runner scrolls to it.
 */
import { css, fill, h, isNum, toDate } from "./dom.js";

const PLOTLY_SRC = "/static/plotly.min.js";
const DAY_MS = 86400000;
// Phones: plotly's mode bar (zoom, download) would sit on the legends; touch users pinch instead.
const NO_MODEBAR = window.matchMedia("(max-width: 720px), (pointer: coarse)");

let plotlyLoading = null;
/** plotly, loaded once on first use (a same-origin <script>, as the CSP allows). */
export function loadPlotly() {
  if (window.Plotly) return Promise.resolve(window.Plotly);
  if (!plotlyLoading) {
    plotlyLoading = new Promise((resolve, reject) => {
      // After the next frame: the cards are painted before plotly's parse (seconds on a slow phone) holds the
      // main thread, even when the script comes straight from the cache.
      requestAnimationFrame(() => setTimeout(() => {
        const s = document.createElement("script");
        s.src = PLOTLY_SRC;
        s.async = true;
        s.onload = () => (window.Plotly ? resolve(window.Plotly) : reject(new Error("plotly.min.js did not define Plotly")));
        s.onerror = () => { plotlyLoading = null; reject(new Error("plotly.min.js did not load")); };
        document.head.append(s);
      }, 0));
    });
  }
  return plotlyLoading;
}

export function baseLayout(extra = {}) {
  const fg = css("--fg"), muted = css("--muted"), grid = css("--grid");
  const axis = { gridcolor: grid, zerolinecolor: grid, linecolor: grid, tickfont: { color: muted, size: 11 }, titlefont: { color: muted, size: 12 }, automargin: true };
  const layout = {
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: getComputedStyle(document.body).fontFamily, color: fg, size: 12 },
    margin: { l: 52, r: 16, t: 30, b: 40 },
    legend: { orientation: "h", x: 0, y: 1.02, yanchor: "bottom", traceorder: "normal", font: { color: muted, size: 11 } },
    hoverlabel: { font: { size: 12 } },
    hovermode: "x unified",
    xaxis: { ...axis }, yaxis: { ...axis },
  };
  for (const [k, v] of Object.entries(extra)) {
    layout[k] = k.startsWith("xaxis") || k.startsWith("yaxis") ? { ...axis, ...(layout[k] || {}), ...v } : v;
  }
  return layout;
}

// Charts waiting to come near the viewport: element → the latest [traces, layout] asked for.
const waiting = new Map();
const observer = "IntersectionObserver" in window
  ? new IntersectionObserver((entries) => {
    for (const entry of entries) {
      if (!entry.isIntersecting || !waiting.has(entry.target)) continue;
      const args = waiting.get(entry.target);
      waiting.delete(entry.target);
      observer.unobserve(entry.target);
      draw(entry.target, ...args);
    }
  }, { rootMargin: "300px 0px" })
  : null;

/** Draw (or redraw) chart `id` when it is near the viewport; returns a promise settled once it is drawn. */
export function plot(id, traces, layout = {}) {
  const el = document.getElementById(id);
  if (!el) return Promise.resolve();
  const hasData = traces.some((t) => (t.x || t.y || t.values || []).some((v) => v !== null && v !== undefined));
  if (!hasData) {
    waiting.delete(el);
    if (el.dataset.drawn && window.Plotly) window.Plotly.purge(el);
    delete el.dataset.drawn;
    fill(el, h("p", { class: "empty", text: "No data in this period yet." }));
    return Promise.resolve();
  }
  if (!observer || el.dataset.drawn) return draw(el, traces, layout);  // already drawn: it is where the eye is
  el.dataset.pending = "1";
  if (!waiting.has(el)) observer.observe(el);
  waiting.set(el, [traces, layout]);
  return Promise.resolve();
}

async function draw(el, traces, layout) {
  let Plotly;
  try { Plotly = await loadPlotly(); } catch (err) { el.textContent = `Charts unavailable (${err.message}).`; return; }
  if (!el.dataset.drawn) el.replaceChildren();  // a "no data" note from an earlier filter
  await Plotly.react(el, traces, baseLayout(layout), {
    displaylogo: false, responsive: true, displayModeBar: NO_MODEBAR.matches ? false : "hover",
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  });
  el.dataset.drawn = "1";
  delete el.dataset.pending;
}

export const COLORS = () => ({ left: css("--left"), right: css("--right"), rear: css("--rear"), mid: css("--mid"), fore: css("--fore"), accent: css("--accent"), muted: css("--muted"), warn: css("--warn"), crit: css("--crit") });

/** A time for plotly's date axes, in UTC ("2026-01-12 00:00:00"): the server's days and weeks are UTC. */
export const utcX = (t) => { const d = toDate(t); return d ? d.toISOString().slice(0, 19).replace("T", " ") : null; };

/** One x axis for every time chart of a page, so their ticks name the same dates: the range of `times` padded
 * by half a `period` ("week" | "day" | "run"), ticks on Mondays (weeks), or on month starts for longer spans. */
export function timeAxis(times, period) {
  const ms = times.map((t) => toDate(t)).filter(Boolean).map((d) => d.getTime());
  if (!ms.length) return { type: "date" };
  const pad = (period === "week" ? 3.5 : 0.5) * DAY_MS;
  const lo = Math.min(...ms) - pad, hi = Math.max(...ms) + pad;
  const span = (hi - lo) / DAY_MS;
  const ticks = span <= 15 ? { dtick: DAY_MS, tick0: "2026-01-05" }
    : span <= 120 ? { dtick: (span <= 60 ? 7 : 14) * DAY_MS, tick0: "2026-01-05" }  // Mondays
      : { dtick: span <= 400 ? "M1" : "M3", tick0: "2026-01-01" };
  return { type: "date", range: [utcX(lo / 1000), utcX(hi / 1000)], tickformat: "%-d %b", hoverformat: "%a %-d %b %Y", ...ticks };
}

/** Smallest y-axis span: about ±6 % of a typical cadence (170 spm) and contact time (250 ms). */
export const MIN_SPAN = { cadence_spm: 20, contact_ms: 30 };

/** A y range at least `span` wide around the values (so ±1 % noise does not fill the chart), or autorange. */
export function rangeAtLeast(values, span) {
  const v = values.flat().filter(isNum);
  if (!v.length) return {};
  const lo = Math.min(...v), hi = Math.max(...v);
  if (hi - lo >= span) return {};
  const mid = (lo + hi) / 2;
  return { range: [mid - span / 2, mid + span / 2] };
}
