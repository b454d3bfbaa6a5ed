/* One run: summary, per-step scatter, zones per foot, centre of pressure on the insole, windows through the run. */
import { api } from "../api.js";
import { COLORS, MIN_SPAN, plot, rangeAtLeast } from "../charts.js";
import { $, fill, fmtDate, fmtDuration, h, isNum, num, showError, showNotFound, stat, toDate, valrInterval, valrValue, zoneBar } from "../dom.js";

/** Insole outline width at heel→toe position x, as a fraction of the widest point.
 * Ported from edge_agent.profiles.insole_width_fraction (kept in JS so the plugin never imports
 * the numpy-based agent code): heel ≈ 0.68, arch ≈ 0.62, forefoot 1.0, rounded toe. */
function insoleWidth(x) {
  x = Math.min(Math.max(x, 0), 1);
  const heel = 0.68 * Math.sqrt(Math.max(0, 1 - ((0.12 - Math.min(x, 0.12)) / 0.12) ** 2));
  if (x < 0.12) return heel;
  if (x < 0.45) return 0.68 - 0.06 * Math.sin((Math.PI * (x - 0.12)) / 0.33);
  if (x < 0.72) return 0.68 + 0.32 * Math.sin((0.5 * Math.PI * (x - 0.45)) / 0.27);
  const tip = (x - 0.72) / 0.28;
  return Math.max(0, Math.sqrt(Math.max(0, 1 - tip ** 2)));
}

function insoleSvg(side, steps, color) {
  const W = 100, L = 260, pad = 14;   // insole ≈ 2.6 × as long as wide
  const px = (y) => pad + (side === "left" ? 1 - y : y) * W;   // medial edges face each other
  const py = (x) => pad + (1 - x) * L;                          // toes up
  const n = 80, right = [], left = [];
  for (let i = 0; i <= n; i++) {
    const x = i / n, hw = insoleWidth(x) / 2;
    right.push([pad + (0.5 + hw) * W, py(x)]);
    left.push([pad + (0.5 - hw) * W, py(x)]);
  }
  const d = "M" + [...right, ...left.reverse()].map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join("L") + "Z";
  const svg = h("svg", { viewBox: `0 0 ${W + 2 * pad} ${L + 2 * pad + 16}`, role: "img", "aria-label": `${side} foot: centre of pressure at initial contact` },
    h("path", { class: "insole-outline", d }));
  for (const [x, label] of [[1 / 3, "rear | mid"], [2 / 3, "mid | fore"]]) {
    svg.append(h("line", { class: "insole-zone", x1: pad - 6, x2: pad + W + 6, y1: py(x), y2: py(x) }),
      h("text", { class: "insole-label", x: pad + W + 8, y: py(x) + 3, text: label }));
  }
  const pts = steps.filter((s) => isNum(s.cop_x) && isNum(s.cop_y));
  const stride = Math.max(1, Math.ceil(pts.length / 600));
  const g = h("g", { fill: color, "fill-opacity": "0.35" });
  for (let i = 0; i < pts.length; i += stride) g.append(h("circle", { cx: px(pts[i].cop_y).toFixed(1), cy: py(pts[i].cop_x).toFixed(1), r: 2.6 }));
  svg.append(g);
  if (pts.length) {
    const mx = pts.reduce((a, s) => a + s.cop_x, 0) / pts.length, my = pts.reduce((a, s) => a + s.cop_y, 0) / pts.length;
    svg.append(h("circle", { cx: px(my), cy: py(mx), r: 7, fill: "none", stroke: color, "stroke-width": 2.5 },
      h("title", { text: `mean CoP: ${num(mx, 2)} heel→toe, ${num(my, 2)} medial→lateral` })));
  }
  const drawn = Math.ceil(pts.length / stride);
  svg.append(h("text", { class: "insole-title", x: pad + W / 2, y: L + 2 * pad + 12, "text-anchor": "middle",
    text: `${side === "left" ? "Left" : "Right"} · ${drawn < pts.length ? `${num(drawn)} of ` : ""}${num(pts.length)} sampled steps` }));
  return svg;
}

export async function render() {
  const runId = document.body.dataset.runId;
  // While this run is still being recorded, redraw when new windows (or the final summary) arrive.
  let pending = null;
  const refresh = (ev) => {
    if (!ev.detail || ev.detail.run_id !== runId) return;
    clearTimeout(pending);
    pending = setTimeout(() => drawRun(runId).catch(console.error), 3000);
  };
  document.addEventListener("footfall:summary", refresh);
  document.addEventListener("footfall:run", refresh);
  await drawRun(runId);
}

async function drawRun(runId) {
  let run;
  try { run = await api(`/api/runs/${encodeURIComponent(runId)}?steps=columns`); } catch (err) {
    if (err.status === 404) showNotFound("Run not found", `There is no run “${runId}” — it may have been deleted, or it belongs to a runner you cannot see.`, { href: "/runs", text: "All runs" });
    else document.querySelectorAll("#main .card-body[aria-busy], #main .chart").forEach((el) => showError(el, err));
    return;
  }
  const c = COLORS();
  const started = toDate(run.started_at);
  $("#run-title").textContent = `${fmtDate(run.started_at)}, ${started ? started.toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit" }) : ""}${run.runner ? " · " + run.runner : ""}`;
  const s = run.summary || {};
  const foot = (side) => s[side] || {};
  const win = run.windows || [];
  const stepCount = run.step_count;
  const siBoth = [run.si_left, run.si_right].filter(isNum);
  fill($("#run-summary .card-body"),
    h("div", { class: "stats" },
      stat("Duration", fmtDuration(run.duration_s), null, "duration"),
      stat("Steps", num(stepCount), null, "steps"),
      stat("Cadence", num(run.cadence_spm), "spm", "cadence"),
      stat("VALR", valrValue(run), "BW/s", "valr", [valrInterval(run), `p90 ${num(run.valr_p90)} · max ${num(run.valr_max)}`].filter(Boolean).join(" · ")),
      stat("VILR", num(run.vilr_mean), "BW/s", "vilr"),
      stat("Contact", num(run.contact_ms), "ms", "contact"),
      stat("Duty factor", num(run.duty_factor, 2), null, "duty"),
      stat("Peak force", num(run.peak_force_bw, 2), "BW", "peak"),
      stat("Strike index", num(siBoth.length ? siBoth.reduce((a, b) => a + b, 0) / siBoth.length : null, 2), null, "si", `L ${num(run.si_left, 2)} · R ${num(run.si_right, 2)}`),
      stat("Asymmetry", num(run.asym_contact_pct, 1), "%", "asym", `contact time · VALR ${num(run.asym_valr_pct, 1)} %`)),
    zoneBar(run.rearfoot, run.midfoot, run.forefoot),
    h("p", { class: "muted", text: `${run.device_id}${run.profile ? " · " + run.profile : ""} · ${win.length} windows${run.complete ? "" : " · run still in progress or its summary is missing"}` }));

  // Columnar steps ({side: [...], t: [...]}) back to one object per step.
  const cols = run.steps || {};
  const n = cols.side ? cols.side.length : 0;
  const steps = Array.from({ length: n }, (_, i) => Object.fromEntries(Object.keys(cols).map((k) => [k, cols[k][i]])));
  const bySide = (side) => steps.filter((st) => st.side === side);
  const scatter = (side, color) => {
    const st = bySide(side).filter((p) => isNum(p.strike_index) && isNum(p.valr_bw_s));
    return { type: "scatter", mode: "markers", name: side === "left" ? "Left" : "Right", x: st.map((p) => p.strike_index), y: st.map((p) => p.valr_bw_s),
      marker: { color, size: 6, opacity: 0.55, line: { width: 0 } }, hovertemplate: "SI %{x:.2f}<br>VALR %{y:.0f} BW/s<extra>" + side + "</extra>" };
  };
  plot("chart-scatter", [scatter("left", c.left), scatter("right", c.right)], {
    hovermode: "closest",
    xaxis: { title: { text: "strike index (0 heel … 1 toe)" }, range: [0, 1] },
    yaxis: { title: { text: "VALR (BW/s)" } },
    shapes: [1 / 3, 2 / 3].map((xv) => ({ type: "line", yref: "paper", y0: 0, y1: 1, x0: xv, x1: xv, line: { color: c.muted, dash: "dot", width: 1 } })),
  });

  // Zones per foot: from the RunSummary's per-foot counts, else counted from the step records.
  const zonesOf = (side) => {
    const zc = foot(side).zones;
    if (zc && (zc.rearfoot || zc.midfoot || zc.forefoot)) return [zc.rearfoot || 0, zc.midfoot || 0, zc.forefoot || 0];
    const st = bySide(side);
    return ["rearfoot", "midfoot", "forefoot"].map((zn) => st.filter((p) => p.strike_zone === zn).length);
  };
  const zl = zonesOf("left"), zr = zonesOf("right");
  const share = (arr, i) => { const t = arr[0] + arr[1] + arr[2]; return t ? (100 * arr[i]) / t : null; };
  plot("chart-zonefoot", ["Rearfoot", "Midfoot", "Forefoot"].map((name, i) => ({
    type: "bar", orientation: "h", name, y: ["Left", "Right"], x: [share(zl, i), share(zr, i)],
    marker: { color: [c.rear, c.mid, c.fore][i] }, hovertemplate: "%{x:.0f} %<extra>" + name + "</extra>",
  })), { barmode: "stack", hovermode: "closest", xaxis: { title: { text: "share of steps (%)" }, range: [0, 100] }, yaxis: { autorange: "reversed" } });

  // Dots are the steps that came with a per-step record (the agent's step_records: all of a run's steps or a
  // sample of them), thinned to ≤ 600 per foot for drawing: say so, next to the run's step count.
  fill($("#cop-map .card-body"),
    h("div", { class: "insoles" }, insoleSvg("left", bySide("left"), c.left), insoleSvg("right", bySide("right"), c.right)),
    h("p", { class: "muted", id: "cop-note", text: `Each dot is one sampled step: ${num(n)} of the run's ${num(stepCount)} steps came with a per-step record.` }));

  const wx = win.map((w) => (isNum(w.t_start) && isNum(run.started_at) ? (w.t_start - run.started_at) / 60 : w.window_index));
  const wl = (name, key, color, axis, unit) => ({ type: "scatter", mode: "lines", name: `${name} (${unit})`, x: wx, y: win.map((w) => w[key]), yaxis: axis, line: { color, width: 2 }, hovertemplate: `%{y:.0f} ${unit}` });
  plot("chart-windows", [wl("Cadence", "cadence_spm", c.accent, "y", "spm"), wl("VALR", "valr_mean", c.crit, "y2", "BW/s"), wl("Contact", "contact_ms", c.left, "y3", "ms")], {
    grid: { rows: 3, columns: 1, shared_xaxes: true, roworder: "top to bottom" },
    xaxis: { title: { text: "minutes into the run" } },
    yaxis: { title: { text: "spm" }, domain: [0.7, 1], ...rangeAtLeast(win.map((w) => w.cadence_spm), MIN_SPAN.cadence_spm) },
    yaxis2: { title: { text: "BW/s" }, domain: [0.36, 0.64] },
    yaxis3: { title: { text: "ms" }, domain: [0, 0.3], ...rangeAtLeast(win.map((w) => w.contact_ms), MIN_SPAN.contact_ms) },
    margin: { l: 56, r: 16, t: 30, b: 40 },
  });
}
