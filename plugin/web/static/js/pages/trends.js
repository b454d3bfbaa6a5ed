/* Trends: charts per week, day or run with the personal baseline band; this week vs last week. */
import { api } from "../api.js";
import { COLORS, MIN_SPAN, plot, rangeAtLeast, timeAxis, utcX } from "../charts.js";
import { $, fill, h, isNum, num, showError, stat } from "../dom.js";


export async function render() {
  const form = $("#trend-filters");
  try {
    const meta = await api("/api/meta");
    const sel = form.elements.runner;
    const runners = meta.runners || [];
    for (const r of runners) sel.append(h("option", { value: r.name, text: r.name }));
    // Baselines are personal: in a household, start with the runner who runs most, not a mix of everyone.
    if (runners.length > 1) sel.value = runners.reduce((a, b) => ((b.runs || 0) > (a.runs || 0) ? b : a)).name;
  } catch (_) { /* filters are optional */ }
  const load = async () => {
    const q = new URLSearchParams({ period: form.elements.period.value });
    const days = form.elements.range.value;
    if (days) q.set("since", String(Math.floor(Date.now() / 1000) - Number(days) * 86400));
    if (form.elements.runner.value) q.set("runner", form.elements.runner.value);
    let tr;
    try { tr = await api(`/api/trends?${q}`); } catch (err) { document.querySelectorAll(".chart").forEach((el) => showError(el, err)); return; }
    drawTrends(tr);
  };
  form.addEventListener("change", load);
  await load();
}

const WOW = [
  ["runs", "Runs", "", 0, null], ["load_min", "Running time", "min", 0, "duration"], ["steps", "Steps", "", 0, "steps"],
  ["cadence_spm", "Cadence", "spm", 0, "cadence"], ["valr_mean", "VALR", "BW/s", 0, "valr"],
  ["contact_ms", "Contact", "ms", 0, "contact"], ["forefoot_share_pct", "Forefoot share", "%", 0, "si"],
  ["asymmetry_contact_pct", "Contact asymmetry", "%", 1, "asym"],
];

function drawWeekOverWeek(tr) {
  const body = $("#wow .card-body");
  if (!body) return;
  const wow = tr.week_over_week;
  if (!wow || !wow.measures) { fill(body, h("p", { class: "muted", text: "Not enough history yet." })); return; }
  fill(body, h("div", { class: "stats" }, WOW.map(([key, label, unit, digits, tip]) => {
    const m = wow.measures[key] || {};
    return stat(label, num(m.this_week, digits), unit, tip, isNum(m.change_pct) ? null : `last week ${num(m.last_week, digits)}`);
  })));
  // Change badges (kept out of stat() so the colour classes apply).
  body.querySelectorAll(".stat").forEach((el, i) => {
    const m = wow.measures[WOW[i][0]] || {};
    if (!isNum(m.change_pct)) return;
    // Direction only — whether a change is good depends on the measure; ≥ 10 % is highlighted.
    const ch = m.change_pct, arrow = Math.abs(ch) < 2 ? "→" : ch > 0 ? "▲" : "▼";
    // Totals (runs, steps, minutes) of the week in progress compare with last week up to the same moment.
    const soFar = isNum(m.last_week_to_date);
    el.append(h("div", { class: `change ${Math.abs(ch) >= 10 ? "big" : "flat"}`,
      title: soFar ? "change against last week up to the same weekday and time" : "change against last week (Monday to Sunday)",
      text: `${arrow} ${num(Math.abs(ch), 0)} % vs ${num(soFar ? m.last_week_to_date : m.last_week, WOW[i][3])}${soFar ? " by now" : ""}` }));
  });
}

function drawTrends(tr) {
  drawWeekOverWeek(tr);
  const pts = tr.points || [];
  const x = pts.map((p) => utcX(p.t));
  // Every chart gets the same time axis, so their ticks name the same dates (UTC days, Monday weeks).
  const xaxis = timeAxis(pts.map((p) => p.t), tr.period);
  const c = COLORS();
  const line = (name, ys, color, extra = {}) => ({ type: "scatter", mode: "lines+markers", name, x, y: ys, line: { color, width: 2 }, marker: { size: 5 }, ...extra });
  // Only keys of the Trends response model (plugin/web/schemas.py, docs/api-schema.json).
  const col = (key) => pts.map((p) => p[key] ?? null);

  // Strike-zone mix as shares of steps, stacked.
  const z = pts.map((p) => {
    const { rearfoot: r, midfoot: m, forefoot: f } = p.zones;
    const tot = r + m + f;
    return tot ? [100 * r / tot, 100 * m / tot, 100 * f / tot] : [null, null, null];
  });
  plot("chart-zones", [
    { type: "bar", name: "Rearfoot", x, y: z.map((v) => v[0]), marker: { color: c.rear }, hovertemplate: "%{y:.0f} %" },
    { type: "bar", name: "Midfoot", x, y: z.map((v) => v[1]), marker: { color: c.mid }, hovertemplate: "%{y:.0f} %" },
    { type: "bar", name: "Forefoot", x, y: z.map((v) => v[2]), marker: { color: c.fore }, hovertemplate: "%{y:.0f} %" },
  ], { barmode: "stack", xaxis, yaxis: { title: { text: "share of steps (%)" }, range: [0, 100] } });

  plot("chart-si", [
    line("Left", col("strike_index_left"), c.left),
    line("Right", col("strike_index_right"), c.right),
  ], {
    xaxis, yaxis: { title: { text: "strike index (0 heel … 1 toe)" }, range: [0, 1] },
    shapes: [1 / 3, 2 / 3].map((y) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: c.muted, dash: "dot", width: 1 } })),
  });

  // Personal baseline (mean ± 1 SD of the runs in the 28 days before the latest run) as a band behind a measure.
  const band = (measure) => {
    const m = tr.baseline.measures[measure];
    if (!m || !isNum(m.mean) || !isNum(m.sd) || !x.length) return [];
    const xs = [x[0], x[x.length - 1]];
    return [
      { type: "scatter", mode: "lines", x: xs, y: [m.mean + m.sd, m.mean + m.sd], line: { width: 0 }, hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "lines", name: "Your baseline", x: xs, y: [m.mean - m.sd, m.mean - m.sd], fill: "tonexty", fillcolor: "rgba(127,127,127,0.18)", line: { width: 0 }, hoverinfo: "skip" },
    ];
  };
  const valrTraces = band("valr_mean");
  valrTraces.push(line("VALR mean", col("valr_mean"), c.accent, { hovertemplate: "%{y:.0f} BW/s" }));
  valrTraces.push(line("VALR p90", col("valr_p90"), c.crit, { line: { color: c.crit, width: 1.5, dash: "dot" }, hovertemplate: "%{y:.0f} BW/s" }));
  plot("chart-valr", valrTraces, { xaxis, yaxis: { title: { text: "BW/s" } } });
  const note = (id, text) => {
    const card = document.getElementById(id);
    if (!card) return;
    card.querySelectorAll(".chart-note").forEach((n) => n.remove());
    if (text) card.append(h("p", { class: "muted chart-note", text }));
  };
  const bl = tr.baseline;
  note("card-valr", bl.status === "ok"
    ? `Band: your baseline, mean ± 1 SD of ${bl.runs} runs in the ${bl.window_days} days before the latest run.`
    : bl.message || "No baseline yet.");
  const tl = tr.training_load;
  note("card-load", tl.status === "ok" ? tl.note : tl.message || tl.note || "");

  // Cadence and contact time barely move from week to week: a minimum axis span keeps ±1 % noise looking small.
  const cadence = [...band("cadence_spm"), line("Cadence", col("cadence_spm"), c.accent, { hovertemplate: "%{y:.0f} spm" })];
  plot("chart-cadence", cadence, { xaxis, yaxis: { title: { text: "steps/min" }, ...rangeAtLeast(cadence.map((t) => t.y), MIN_SPAN.cadence_spm) } });
  const contact = [...band("contact_ms"), line("Contact time", col("contact_ms"), c.left, { hovertemplate: "%{y:.0f} ms" })];
  plot("chart-contact", contact, { xaxis, yaxis: { title: { text: "ms" }, ...rangeAtLeast(contact.map((t) => t.y), MIN_SPAN.contact_ms) } });
  plot("chart-asym", [
    line("Contact time", col("asymmetry_contact_pct"), c.left, { hovertemplate: "%{y:.1f} %" }),
    line("VALR", col("asymmetry_valr_pct"), c.crit, { hovertemplate: "%{y:.1f} %" }),
    line("Strike index", col("asymmetry_si_pct"), c.mid, { hovertemplate: "%{y:.1f} %" }),
  ], { xaxis, yaxis: { title: { text: "symmetry index (%)" }, zeroline: true, zerolinecolor: c.muted } });

  // Training load: one {t, load, acute, chronic, acwr} per day.
  const series = tl.series;
  const tx = series.map((p) => utcX(p.t));
  const tg = (key) => series.map((p) => p[key]);
  plot("chart-load", [
    { type: "scatter", mode: "lines", name: "Acute (7 d)", x: tx, y: tg("acute"), line: { color: c.right, width: 2 } },
    { type: "scatter", mode: "lines", name: "Chronic (28 d)", x: tx, y: tg("chronic"), line: { color: c.left, width: 2 } },
    { type: "scatter", mode: "lines", name: "ACWR", yaxis: "y2", x: tx, y: tg("acwr"), line: { color: c.muted, width: 1.5, dash: "dot" }, hovertemplate: "%{y:.2f}" },
  ], {
    xaxis, yaxis: { title: { text: tl.unit ? `load (${tl.unit}/day)` : "load" } },
    yaxis2: { title: { text: "ACWR" }, overlaying: "y", side: "right", showgrid: false, range: [0, 2.5], tick0: 0, dtick: 0.5, tickformat: ".1f", tickfont: { color: c.muted } },
    shapes: [{ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: 1.5, y1: 1.5, line: { color: c.crit, dash: "dot", width: 1 } }],
    margin: { l: 56, r: 52, t: 30, b: 40 },
  });
}
