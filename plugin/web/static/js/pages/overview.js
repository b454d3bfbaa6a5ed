/* Overview: live card, injury-risk context, latest run, open alerts, an 8-week glance chart. */
import { alertItem } from "../alerts.js";
import { api } from "../api.js";
import { COLORS, plot, timeAxis, utcX } from "../charts.js";
import { $, ago, css, fill, fmtDate, fmtDuration, h, isNum, num, showError, stat, valrInterval, valrValue, zoneBar } from "../dom.js";

export async function render() {
  const liveBody = $("#live-card .card-body");
  const renderLive = (d) => {
    const running = d && d.activity && !["idle", "standing", "unknown"].includes(d.activity);
    fill(liveBody,
      h("div", { class: "stats" },
        stat("Cadence", num(d && d.cadence_spm), "spm", "cadence"),
        stat("Last strike", d && d.last_strike_zone ? d.last_strike_zone : "–", null, "si",
          d && isNum(d.last_strike_index) ? `SI ${num(d.last_strike_index, 2)} · ${d.last_side || ""}` : null),
        stat("Last VALR", num(d && d.last_valr_bw_s), "BW/s", "valr"),
        stat("Steps", num(d && d.steps_in_run), null, "steps")),
      h("p", { class: "muted", id: "live-note", text: d ? `${running ? "Running" : d.activity || "Idle"} · ${d.device_id || ""} · updated ${new Date().toLocaleTimeString()}` : "Waiting for the insoles — start a run and this updates every second." }));
  };
  renderLive(null);
  let lastLive = 0;
  document.addEventListener("footfall:live", (ev) => { lastLive = Date.now(); renderLive(ev.detail); });
  // Live updates come ~1 Hz while the agent runs; after 30 s of silence say so instead of showing stale numbers.
  setInterval(() => {
    const note = $("#live-note");
    if (lastLive && note && Date.now() - lastLive > 30000) {
      lastLive = 0;
      renderLive(null);
      $("#live-note").textContent = "No live data for 30 s — the run has ended or the insoles are out of range.";
    }
  }, 5000);

  await renderOverview();
  // A finished run or a new alert changes the latest run and the risk level: refresh (debounced).
  let pending = null;
  const refresh = () => { clearTimeout(pending); pending = setTimeout(() => renderOverview(false).catch(console.error), 800); };
  document.addEventListener("footfall:run", refresh);
  document.addEventListener("footfall:alert_ack", refresh);
  document.addEventListener("footfall:reconnect", () => renderOverview(true).catch(console.error));
  document.addEventListener("footfall:alert", (ev) => {
    const list = $("#overview-alerts");
    if (list) list.prepend(alertItem(ev.detail, { compact: true, fresh: true }));
    else renderAlertList([ev.detail]);
    refresh();
  });
}

function renderAlertList(alerts) {
  const ra = $("#recent-alerts .card-body");
  if (!alerts.length) fill(ra, h("p", { class: "empty", id: "no-alerts", text: "No open alerts." }));
  else fill(ra, h("ul", { class: "alert-list", id: "overview-alerts" }, alerts.map((a) => alertItem(a, { compact: true }))));
}

async function renderOverview(first = true) {
  let data;
  try { data = await api("/api/overview"); } catch (err) { ["#risk-card", "#latest-run", "#recent-alerts"].forEach((s) => showError($(`${s} .card-body`), err)); return; }

  const level = data.risk_level || "unknown";
  // plugin.risk.risk_summary explains the level in one sentence naming its time window (headline).
  const headline = (data.risk && data.risk.headline) || "";
  const reasons = ((data.risk && data.risk.reasons) || []).slice(0, 5);
  fill($("#risk-card .card-body"), h("div", { class: `risk risk-${level}`, id: "risk-level", text: level }), h("p", { class: "muted", id: "risk-headline", text: headline }),
    reasons.length ? h("ul", { class: "reasons" }, reasons.map((r) => h("li", { text: r }))) : null);

  const run = data.latest_run;
  const lr = $("#latest-run .card-body");
  if (!run) fill(lr, h("p", { class: "empty", text: "No runs recorded yet." }));
  else {
    fill(lr,
      h("div", { class: "page-head" },
        h("h3", {}, h("a", { href: `/runs/${encodeURIComponent(run.run_id)}`, text: fmtDate(run.started_at) })),
        h("span", { class: "muted", text: `${run.runner || "unknown runner"} · ${run.device_id} · ${ago(run.ended_at)}` })),
      h("div", { class: "stats", style: "margin-top:.75rem" },
        stat("Duration", fmtDuration(run.duration_s), null, "duration"),
        stat("Steps", num(run.steps), null, "steps"),
        stat("Cadence", num(run.cadence_spm), "spm", "cadence"),
        stat("VALR", valrValue(run), "BW/s", "valr", [valrInterval(run), `p90 ${num(run.valr_p90)} BW/s`].filter(Boolean).join(" · ")),
        stat("Contact", num(run.contact_ms), "ms", "contact"),
        stat("Strike index", num(run.si_left, 2), null, "si", `L ${num(run.si_left, 2)} · R ${num(run.si_right, 2)}`)),
      zoneBar(run.rearfoot, run.midfoot, run.forefoot));
    const si = $(".stat:last-child .value", lr);
    const both = [run.si_left, run.si_right].filter(isNum);
    if (si && both.length) si.firstChild.textContent = num(both.reduce((a, b) => a + b, 0) / both.length, 2);
  }

  if (first) renderAlertList(data.alerts || []);  // later refreshes keep live-added items in place
  if (!first) return;

  try {
    const since = Math.floor(Date.now() / 1000) - 56 * 86400;
    const tr = await api(`/api/trends?period=week&since=${since}`);
    const pts = tr.points || [];
    const c = COLORS();
    plot("chart-glance", [
      { type: "bar", name: "Steps", x: pts.map((p) => utcX(p.t)), y: pts.map((p) => p.steps), marker: { color: c.accent, opacity: 0.55 }, hovertemplate: "%{y:,.0f} steps<extra></extra>" },
      { type: "scatter", mode: "lines+markers", name: "VALR (BW/s)", yaxis: "y2", x: pts.map((p) => utcX(p.t)), y: pts.map((p) => p.valr_mean), line: { color: c.crit, width: 2 }, hovertemplate: "%{y:.0f} BW/s<extra></extra>" },
    ], { xaxis: timeAxis(pts.map((p) => p.t), "week"), yaxis: { title: { text: "steps / week" } }, yaxis2: { title: { text: "VALR (BW/s)" }, overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", tickformat: ".0f", tickfont: { color: css("--muted") } }, margin: { l: 56, r: 52, t: 30, b: 40 } });
  } catch (err) { showError($("#week-glance .card-body"), err); }
}
