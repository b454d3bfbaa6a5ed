/* Journey: the retraining program of one runner — stage, this week's targets, progress charts, the stages in
 * plain words with their sources, the per-shoe table — and the form to start or change it (GET/POST/PATCH
 * /api/journey…, docs/dashboard.md "Journey"). */
import { api } from "../api.js";
import { COLORS, plot } from "../charts.js";
import { $, fill, fmtDate, h, isNum, num, showError, stat, toDate } from "../dom.js";

const STATUS = { done: "done", current: "now", locked: "locked", upcoming: "later", skipped: "skipped" };
const signed = (v, digits = 0, unit = "") => (isNum(v) ? `${v > 0 ? "+" : ""}${num(v, digits)}${unit}` : "–");

export async function render() {
  const sel = $("#journey-runner");
  const load = async (runner, note = "") => {
    let doc;
    try { doc = await api(`/api/journey${runner ? `?runner=${encodeURIComponent(runner)}` : ""}`); } catch (err) {
      document.querySelectorAll("#main .card-body").forEach((el) => showError(el, err));
      return;
    }
    if (!sel.options.length) for (const r of doc.runners) sel.append(h("option", { value: r, text: r }));
    if (doc.runner) sel.value = doc.runner;
    draw(doc, (saved) => load(sel.value, saved), note);
  };
  sel.addEventListener("change", () => load(sel.value));
  document.addEventListener("footfall:run", () => load(sel.value));
  await load(new URLSearchParams(location.search).get("runner"));
}

function draw(doc, reload, note) {
  const p = doc.program;
  drawMessages(p, doc.message);
  drawShoes(doc.shoes, doc.current_shoe);
  drawProgramForm(doc, reload, note);
  if (!p) {
    for (const id of ["journey-stage", "journey-targets", "journey-assessment", "journey-stages"]) {
      fill($(`#${id} .card-body`), h("p", { class: "muted", text: doc.runner ? "No program yet." : "No runners yet." }));
    }
    document.querySelectorAll("#main .chart").forEach((el) => fill(el, h("p", { class: "empty", text: "No program yet." })));
    return;
  }
  drawStage(p);
  drawTargets(p);
  drawAssessment(p.assessment);
  drawStages(p.stages);
  drawCharts(p);
}

function drawMessages(p, message) {
  const box = $("#journey-messages");
  const items = (p ? p.messages : []).map((m) => h("div", { class: `alert sev-l-${m.level === "warning" ? "warning" : "info"}`, "data-code": m.code },
    h("span", { class: `badge sev-${m.level}`, text: m.level === "warning" ? "careful" : "note" }), " ", h("span", { text: m.text })));
  if (message) items.unshift(h("p", { class: "muted", text: message }));
  box.replaceChildren(...items);
}

function drawStage(p) {
  const current = p.stages.find((s) => s.number === p.stage);
  const progress = h("div", { class: "zonebar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100", "aria-valuenow": String(Math.round(p.progress_pct)), "aria-label": "program progress" },
    h("span", { class: "z-mid", style: `width:${Math.max(0, Math.min(100, p.progress_pct))}%` }));
  fill($("#journey-stage .card-body"),
    h("div", { class: "stats" },
      stat("Stage", p.done ? "done" : `${p.stage} of ${p.skip_transition ? "1, 3" : "3"}`, null, null, current ? current.title : ""),
      stat("Program", num(p.progress_pct), "%", null, `since ${fmtDate(p.started_at)}`),
      stat("Recent cadence", num(p.recent.cadence_spm), "spm", "cadence", `baseline ${num(p.assessment.cadence_spm)}`),
      stat("Recent VALR", num(p.recent.valr_mean), "BW/s", "valr", `baseline ${num(p.assessment.valr_mean)}`),
      stat("Current shoe", p.current_shoe || "–", null, null, null)),
    progress,
    current ? h("p", { class: "stage-what" }, h("strong", { text: "Now: " }), current.what) : null,
    p.lock.reason ? h("p", { class: p.lock.locked ? "muted lock locked" : "muted lock", text: `Stage 2: ${p.lock.reason}` }) : null);
}

function drawTargets(p) {
  const t = p.targets;
  const pub = p.published_target;
  fill($("#journey-targets .card-body"),
    h("div", { class: "stats" },
      stat("Cadence", `${num(t.cadence_spm)} ± ${num(t.cadence_band_spm)}`, "spm", "cadence", `${signed(t.cadence_rise_pct, 1, " %")} this week · goal ${num(t.cadence_goal_spm)}`),
      stat("VALR ceiling", num(t.valr_ceiling_bw_s), "BW/s", "valr", `${num(t.valr_max_pct_of_baseline)} % of your ${num(t.valr_baseline_bw_s)}`),
      stat("Metronome", t.metronome ? "on" : "off (fading)", null, null, null),
      isNum(t.non_rearfoot_max_pct) ? stat("Midfoot + forefoot", `≤ ${num(t.non_rearfoot_max_pct)}`, "%", "zone", "this week at most") : null),
    h("p", { class: "muted", text: pub ? `Sent to the insoles' agent on ${fmtDate(pub.set_at)} (retained: it plays offline too).` : "Not published yet: it goes to the agent once the dashboard is connected to the broker." }));
}

function drawAssessment(a) {
  const z = a.zone_share_pct || {};
  fill($("#journey-assessment .card-body"),
    h("div", { class: "stats" },
      stat("Cadence", num(a.cadence_spm), "spm", "cadence"),
      stat("VALR", num(a.valr_mean), "BW/s", "valr"),
      stat("Contact", num(a.contact_ms), "ms", "contact"),
      stat("Asymmetry", signed(a.asymmetry_contact_pct, 1, " %"), null, "asym", "contact time")),
    h("p", { class: "muted", text: `${a.runs} runs from ${fmtDate(a.from)} to ${fmtDate(a.to)}: rearfoot ${num(z.rearfoot)} %, midfoot ${num(z.midfoot)} %, forefoot ${num(z.forefoot)} %.` }));
}

function drawStages(stages) {
  fill($("#journey-stages .card-body"), h("ol", { class: "stages" }, stages.map((s) => h("li", { class: `stage stage-${s.status}`, "data-status": s.status },
    h("h3", {}, `${s.number}. ${s.title} `, h("span", { class: `badge ${s.status === "current" ? "sev-info" : s.status === "locked" ? "sev-warning" : ""}`, text: STATUS[s.status] }),
      s.status === "current" ? h("span", { class: "muted", text: ` ${num(s.progress_pct)} %` }) : null),
    h("p", {}, h("strong", { text: "What to do: " }), s.what),
    h("p", {}, h("strong", { text: "Why: " }), s.why),
    h("p", {}, h("strong", { text: "Not yet: " }), s.not_yet),
    h("details", {}, h("summary", { text: "Sources" }), h("ul", {}, s.sources.map((src) => h("li", { text: src }))))))));
}

function drawShoes(shoes, current) {
  const body = $("#journey-shoes .card-body");
  if (!shoes.length) {
    fill(body, h("p", { class: "muted", text: "No shoes yet. Set `shoe:` in the agent's config, or tag runs: POST /api/runs/<run>/shoe, or footfall-dashboard shoes tag." }));
    return;
  }
  const head = ["Pair", "Runs", "Time", "Steps", "VALR", "Cadence", "Contact", "Forefoot", "vs your other runs"];
  fill(body, h("div", { class: "table-wrap" }, h("table", { class: "runs shoes" },
    h("thead", {}, h("tr", {}, head.map((t, i) => h("th", { class: i === 0 || i === 8 ? "t-left" : null, text: t })))),
    h("tbody", {}, shoes.map((s) => {
      const d = s.change || {};
      const flag = s.alerted_at ? h("span", { class: "badge sev-warning", text: "alert raised", title: "A shoe-change alert was raised for this pair (see Alerts)" }) : null;
      return h("tr", { "data-shoe": s.name },
        h("td", {}, s.name, s.name === current ? h("span", { class: "muted", text: " (now)" }) : null, s.retired_at ? h("span", { class: "muted", text: " (retired)" }) : null, " ", flag),
        h("td", { text: num(s.runs) }), h("td", { text: `${num(s.hours, 1)} h` }), h("td", { text: num(s.steps) }),
        h("td", { text: signed(d.valr_pct, 0, " %") }), h("td", { text: signed(d.cadence_pct, 1, " %") }),
        h("td", { text: signed(d.contact_pct, 1, " %") }), h("td", { text: signed(d.forefoot_points, 0, " pt") }),
        h("td", { class: "t-left muted", text: !s.change ? "too few other runs" : s.cadence_matched ? "at a similar cadence" : "all other runs" }));
    })))),
  h("p", { class: "muted", text: "Time is running time in the pair: the insoles measure no distance. A new pair that changes VALR or strike mix abruptly raises one alert." }));
}

function drawProgramForm(doc, reload, note) {
  const body = $("#journey-program .card-body");
  if (!doc.runner) { fill(body, h("p", { class: "muted", text: "No runners yet." })); return; }
  const p = doc.program;
  const status = h("span", { role: "status", text: note || "" });
  const goals = h("textarea", { name: "goals", rows: "2", maxlength: "2000" }); goals.value = p ? p.goals : "";
  const injury = h("textarea", { name: "injury_note", rows: "2", maxlength: "2000" }); injury.value = p ? p.injury_note : "";
  const skip = h("input", { type: "checkbox", name: "skip_transition" }); skip.checked = p ? p.skip_transition : false;
  const goal = h("input", { type: "number", name: "cadence_goal_pct", min: "5", max: "10", step: "0.5", value: String(p ? p.cadence_goal_pct : 7.5), disabled: !!p });
  const path = `/api/journey/${encodeURIComponent(doc.runner)}/program`;
  const form = h("form", { class: "settings", id: "program-form" },
    h("label", {}, "Goals ", goals),
    h("label", {}, "Injury history ", injury),
    h("label", {}, "Cadence goal (%) ", goal),
    h("label", { class: "toggle" }, skip, " skip the strike transition (stage 2) — a lighter heel strike is a fine place to stay"),
    h("div", { class: "form-actions" }, h("button", { type: "submit", class: "btn primary", text: p ? "Save" : "Start the program" }), status));
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const json = { goals: goals.value, injury_note: injury.value, skip_transition: skip.checked };
    if (!p) json.cadence_goal_pct = Number(goal.value);
    try {
      await api(path, { method: p ? "PATCH" : "POST", json });
      await reload(p ? "Saved." : "Started.");
    } catch (err) { status.textContent = err.message; }
  });
  fill(body, form);
}

function drawCharts(p) {
  const c = COLORS();
  const runs = p.runs || [];
  const x = runs.map((r) => toDate(r.t));
  const a = p.assessment, t = p.targets;
  const span = x.length ? [x[0], x[x.length - 1]] : [];
  const hline = (y, name, color, dash = "dot") => ({ type: "scatter", mode: "lines", name, x: span, y: [y, y], line: { color, width: 1.5, dash }, hoverinfo: "skip" });
  const dots = (ys, name, color) => ({ type: "scatter", mode: "lines+markers", name, x, y: ys, line: { color, width: 2 },
    marker: { size: 7, color: runs.map((r) => (r.holds_stage1 ? color : c.muted)) }, hovertemplate: "%{y:.0f}" });
  plot("chart-journey-cadence", [
    dots(runs.map((r) => r.cadence_spm), "Cadence", c.accent),
    hline(a.cadence_spm, "Baseline", c.muted, "dash"),
    hline(t.cadence_spm, "This week's target", c.left),
    hline(t.cadence_goal_spm, "Goal", c.right),
  ], { yaxis: { title: { text: "steps/min" } } });
  plot("chart-journey-valr", [
    dots(runs.map((r) => r.valr_mean), "VALR", c.crit),
    hline(a.valr_mean, "Baseline", c.muted, "dash"),
    hline(t.valr_ceiling_bw_s, "Ceiling (−10 %)", c.left),
  ], { yaxis: { title: { text: "BW/s" } } });
  const weeks = p.weeks || [];
  plot("chart-journey-strike", [
    { type: "bar", name: "Midfoot + forefoot", x: weeks.map((w) => toDate(w.t)), y: weeks.map((w) => w.non_rearfoot_pct), marker: { color: c.mid }, hovertemplate: "%{y:.0f} %" },
    { type: "scatter", mode: "lines", name: "Assessment", x: weeks.length ? [toDate(weeks[0].t), toDate(weeks[weeks.length - 1].t)] : [], y: [a.non_rearfoot_pct, a.non_rearfoot_pct], line: { color: c.muted, dash: "dash" } },
  ], { yaxis: { title: { text: "share of steps (%)" }, range: [0, 100] } });
}
