/* plotly helpers: one themed layout for every chart. Charts are SVG traces (no WebGL, no eval). */
import { css, fill, h } from "./dom.js";

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

export function plot(id, traces, layout = {}) {
  const el = document.getElementById(id);
  if (!el) return;
  if (!window.Plotly) { el.textContent = "Charts unavailable (plotly.min.js did not load)."; return; }
  const hasData = traces.some((t) => (t.x || t.y || t.values || []).some((v) => v !== null && v !== undefined));
  if (!hasData) { fill(el, h("p", { class: "empty", text: "No data in this period yet." })); return; }
  window.Plotly.react(el, traces, baseLayout(layout), {
    displaylogo: false, responsive: true,
    modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d", "toggleSpikelines"],
  });
}

export const COLORS = () => ({ left: css("--left"), right: css("--right"), rear: css("--rear"), mid: css("--mid"), fore: css("--fore"), accent: css("--accent"), muted: css("--muted"), warn: css("--warn"), crit: css("--crit") });
