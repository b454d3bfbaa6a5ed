/* Trends: charts per week, day or run with the personal baseline band; this week vs last week. */
import { api } from "../api.js";
import { COLORS, plot } from "../charts.js";
import { $, fill, h, isNum, num, showError, stat, toDate } from "../dom.js";

const get = (p, ...keys) => { for (const k of keys) { const v = k.split(".").reduce((o, part) => (o == null ? undefined : o[part]), p); if (v !== undefined && v !== null) return v; } return null; };

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
    el.append(h("div", { class: `change ${Math.abs(ch) >= 10 ? "big" : "flat"}`, title: "change against the week before", text: `${arrow} ${num(Math.abs(ch), 0)} % vs ${num(m.last_week, WOW[i][3])}` }));
  });
}

function drawTrends(tr) {
  drawWeekOverWeek(tr);
  const pts = tr.points || [];
  const x = pts.map((p) => toDate(p.t));
  const c = COLORS();
  const line = (name, ys, color, extra = {}) => ({ type: "scatter", mode: "lines+markers", name, x, y: ys, line: { color, width: 2 }, marker: { size: 5 }, ...extra });
  const col = (...keys) => pts.map((p) => get(p, ...keys));

  // Strike-zone mix as shares of steps, stacked.
  const z = pts.map((p) => {
    const r = get(p, "zones.rearfoot", "rearfoot") || 0, m = get(p, "zones.midfoot", "midfoot") || 0, f = get(p, "zones.forefoot", "forefoot") || 0;
    const tot = r + m + f;
    return tot ? [100 * r / tot, 100 * m / tot, 100 * f / tot] : [null, null, null];
  });
  plot("chart-zones", [
    { type: "bar", name: "Rearfoot", x, y: z.map((v) => v[0]), marker: { color: c.rear }, hovertemplate: "%{y:.0f} %" },
    { type: "bar", name: "Midfoot", x, y: z.map((v) => v[1]), marker: { color: c.mid }, hovertemplate: "%{y:.0f} %" },
    { type: "bar", name: "Forefoot", x, y: z.map((v) => v[2]), marker: { color: c.fore }, hovertemplate: "%{y:.0f} %" },
  ], { barmode: "stack", yaxis: { title: { text: "share of steps (%)" }, range: [0, 100] } });

  plot("chart-si", [
    line("Left", col("strike_index_left", "si_left"), c.left),
    line("Right", col("strike_index_right", "si_right"), c.right),
  ], {
    yaxis: { title: { text: "strike index (0 heel … 1 toe)" }, range: [0, 1] },
    shapes: [1 / 3, 2 / 3].map((y) => ({ type: "line", xref: "paper", x0: 0, x1: 1, y0: y, y1: y, line: { color: c.muted, dash: "dot", width: 1 } })),
  });

  // VALR mean and p90 with the personal baseline band (per point when the backend provides it).
  const lo = col("baseline.valr_lo", "valr_baseline_lo", "baseline_valr_lo");
  const hi = col("baseline.valr_hi", "valr_baseline_hi", "baseline_valr_hi");
  const valrTraces = [];
  if (hi.some(isNum)) {
    valrTraces.push({ type: "scatter", mode: "lines", x, y: hi, line: { width: 0 }, hoverinfo: "skip", showlegend: false });
    valrTraces.push({ type: "scatter", mode: "lines", name: "Your baseline", x, y: lo, fill: "tonexty", fillcolor: "rgba(127,127,127,0.18)", line: { width: 0 }, hoverinfo: "skip" });
  } else {
    const b = tr.baseline || {};
    const mean = get(b, "measures.valr_mean.mean", "valr_mean"), sd = get(b, "measures.valr_mean.sd", "valr_sd");
    if (isNum(mean) && isNum(sd) && x.length) {
      valrTraces.push({ type: "scatter", mode: "lines", x: [x[0], x[x.length - 1]], y: [mean + sd, mean + sd], line: { width: 0 }, hoverinfo: "skip", showlegend: false });
      valrTraces.push({ type: "scatter", mode: "lines", name: "Your baseline", x: [x[0], x[x.length - 1]], y: [mean - sd, mean - sd], fill: "tonexty", fillcolor: "rgba(127,127,127,0.18)", line: { width: 0 }, hoverinfo: "skip" });
    }
  }
  valrTraces.push(line("VALR mean", col("valr_mean"), c.accent, { hovertemplate: "%{y:.0f} BW/s" }));
  valrTraces.push(line("VALR p90", col("valr_p90"), c.crit, { line: { color: c.crit, width: 1.5, dash: "dot" }, hovertemplate: "%{y:.0f} BW/s" }));
  plot("chart-valr", valrTraces, { yaxis: { title: { text: "BW/s" } } });
  const note = (id, text) => {
    const card = document.getElementById(id);
    if (!card) return;
    card.querySelectorAll(".chart-note").forEach((n) => n.remove());
    if (text) card.append(h("p", { class: "muted chart-note", text }));
  };
  const bl = tr.baseline || {};
  note("card-valr", bl.status === "ok"
    ? `Band: your baseline, mean ± 1 SD of ${bl.runs} runs in the ${bl.window_days} days before the latest run.`
    : bl.message || "No baseline yet.");
  const tlNote = tr.training_load || {};
  note("card-load", tlNote.status === "ok" ? tlNote.note : tlNote.message || tlNote.note || "");

  // Personal baseline (28-day mean ± 1 SD before the latest run) as a band behind a measure.
  const band = (measure) => {
    const m = get(tr.baseline || {}, `measures.${measure}`);
    if (!m || !isNum(m.mean) || !isNum(m.sd) || !x.length) return [];
    const xs = [x[0], x[x.length - 1]];
    return [
      { type: "scatter", mode: "lines", x: xs, y: [m.mean + m.sd, m.mean + m.sd], line: { width: 0 }, hoverinfo: "skip", showlegend: false },
      { type: "scatter", mode: "lines", name: "Your baseline", x: xs, y: [m.mean - m.sd, m.mean - m.sd], fill: "tonexty", fillcolor: "rgba(127,127,127,0.18)", line: { width: 0 }, hoverinfo: "skip" },
    ];
  };
  plot("chart-cadence", [...band("cadence_spm"), line("Cadence", col("cadence_spm"), c.accent, { hovertemplate: "%{y:.0f} spm" })], { yaxis: { title: { text: "steps/min" } } });
  plot("chart-contact", [...band("contact_ms"), line("Contact time", col("contact_ms"), c.left, { hovertemplate: "%{y:.0f} ms" })], { yaxis: { title: { text: "ms" } } });
  plot("chart-asym", [
    line("Contact time", col("asymmetry_contact_pct", "asym_contact_pct"), c.left, { hovertemplate: "%{y:.1f} %" }),
    line("VALR", col("asymmetry_valr_pct", "asym_valr_pct"), c.crit, { hovertemplate: "%{y:.1f} %" }),
    line("Strike index", col("asymmetry_si_pct", "asym_si_pct"), c.mid, { hovertemplate: "%{y:.1f} %" }),
  ], { yaxis: { title: { text: "symmetry index (%)" }, zeroline: true, zerolinecolor: c.muted } });

  // Training load: a series of {t, acute, chronic, acwr}, or the same fields on each point.
  const tl = tr.training_load || {};
  const series = Array.isArray(tl.series) ? tl.series : Array.isArray(tl.points) ? tl.points : pts;
  const tx = series.map((p) => toDate(get(p, "t", "date")));
  const tg = (...keys) => series.map((p) => get(p, ...keys));
  plot("chart-load", [
    { type: "scatter", mode: "lines", name: "Acute (7 d)", x: tx, y: tg("acute", "load_acute", "training_load.acute"), line: { color: c.right, width: 2 } },
    { type: "scatter", mode: "lines", name: "Chronic (28 d)", x: tx, y: tg("chronic", "load_chronic", "training_load.chronic"), line: { color: c.left, width: 2 } },
    { type: "scatter", mode: "lines", name: "ACWR", yaxis: "y2", x: tx, y: tg("acwr", "training_load.acwr"), line: { color: c.muted, width: 1.5, dash: "dot" }, hovertemplate: "%{y:.2f}" },
  ], {
    yaxis: { title: { text: tl.unit ? `load (${tl.unit}/day)` : "load" } },
    yaxis2: { title: { text: "ACWR" }, overlaying: "y", side: "right", showgrid: false, range: [0, 2.5], tick0: 0, dtick: 0.5, tickformat: ".1f", tickfont: { color: c.muted } },
    shapes: [{ type: "line", xref: "paper", yref: "y2", x0: 0, x1: 1, y0: 1.5, y1: 1.5, line: { color: c.crit, dash: "dot", width: 1 } }],
    margin: { l: 56, r: 52, t: 30, b: 40 },
  });
}
