/* footfall dashboard front end: vanilla JS reading the JSON API (docs/dashboard.md).
 *
 * Rules: user-supplied text is only ever inserted with textContent (the h() helper never sets
 * innerHTML); no inline scripts (CSP script-src 'self'); charts are SVG plotly traces (no WebGL, no eval).
 */
"use strict";

(() => {
  // ------------------------------------------------------------------ helpers
  const $ = (sel, root = document) => root.querySelector(sel);

  /** Build an element. attrs: class, text, title, data-*, aria-*, on<event>; children: nodes or strings. */
  function h(tag, attrs = {}, ...children) {
    const svg = ["svg", "path", "circle", "line", "text", "g", "rect", "title", "ellipse"].includes(tag);
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

  function fill(container, ...nodes) {
    container.replaceChildren(...nodes.flat().filter((n) => n !== null && n !== undefined));
    container.removeAttribute("aria-busy");
  }

  const isNum = (v) => typeof v === "number" && Number.isFinite(v);
  const num = (v, digits = 0) => (isNum(v) ? v.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–");
  const pct = (v, digits = 0) => (isNum(v) ? `${num(v * 100, digits)} %` : "–");
  const toDate = (t) => (t === null || t === undefined ? null : typeof t === "number" ? new Date(t * 1000) : new Date(t));
  const fmtDate = (t) => { const d = toDate(t); return d ? d.toLocaleDateString(undefined, { weekday: "short", day: "numeric", month: "short", year: "numeric" }) : "–"; };
  const fmtDateTime = (t) => { const d = toDate(t); return d ? d.toLocaleString(undefined, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" }) : "–"; };
  const fmtDuration = (s) => {
    if (!isNum(s)) return "–";
    const m = Math.round(s / 60);
    return m >= 120 ? `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")}` : `${m} min`;
  };
  const ago = (t) => {
    const d = toDate(t); if (!d) return "";
    const s = (Date.now() - d.getTime()) / 1000;
    if (s < 90) return "just now";
    if (s < 5400) return `${Math.round(s / 60)} min ago`;
    if (s < 172800) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} days ago`;
  };
  const css = (name) => getComputedStyle(document.documentElement).getPropertyValue(name).trim();

  class ApiError extends Error {}
  async function api(path, options = {}) {
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
      throw new ApiError("authentication required");
    }
    let body = null;
    try { body = await resp.json(); } catch (_) { /* non-JSON error */ }
    if (!resp.ok) throw new ApiError((body && body.error) || `${resp.status} ${resp.statusText}`);
    return body;
  }

  function showError(container, err) {
    fill(container, h("p", { class: "error", role: "alert", text: `Could not load: ${err.message}` }));
  }

  // Explanations shown on hover, with units and sources (docs/design.md §4).
  const GLOSSARY = {
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
  const valrValue = (r) => (hasInterval(r) ? `≈ ${num(r.valr_mean)}` : num(r.valr_mean));
  const valrInterval = (r) => (hasInterval(r) ? `90 % interval ${num(r.valr_lo)}–${num(r.valr_hi)} BW/s` : null);
  const valrCell = (r) => (hasInterval(r) ? `≈ ${num(r.valr_mean)} (${num(r.valr_lo)}–${num(r.valr_hi)})` : num(r.valr_mean));

  function stat(label, value, unit, tipKey, sub) {
    const words = typeof value === "string" && /[a-z]{3,}/i.test(value) && value.length > 8;
    return h("div", { class: "stat", "data-tip": tipKey ? GLOSSARY[tipKey] : null, title: tipKey ? GLOSSARY[tipKey] : null },
      h("div", { class: "label" }, label),
      h("div", { class: words ? "value words" : "value" }, value, unit ? h("span", { class: "unit", text: unit }) : null),
      sub ? h("div", { class: "sub", text: sub }) : null);
  }

  function zoneBar(r, m, f) {
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

  // ------------------------------------------------------------------ plotly
  function baseLayout(extra = {}) {
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

  function plot(id, traces, layout = {}) {
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

  const COLORS = () => ({ left: css("--left"), right: css("--right"), rear: css("--rear"), mid: css("--mid"), fore: css("--fore"), accent: css("--accent"), muted: css("--muted"), warn: css("--warn"), crit: css("--crit") });

  // ------------------------------------------------------------------ live updates (SSE)
  const live = { last: null, source: null };

  function startLive() {
    const dot = $("#live-status");
    if (!dot || !window.EventSource) return;
    const es = new EventSource("/api/live");
    live.source = es;
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

  // ------------------------------------------------------------------ alerts (shared by overview and alerts page)
  // Evidence keys carry their unit as a suffix (valr_bw_s, rise_pct, contact_ms…): label and unit from the name.
  const UNIT_SUFFIXES = [["_pp_per_week", "pp/week"], ["_bw_s", "BW/s"], ["_pct", "%"], ["_spm", "spm"], ["_ms", "ms"],
    ["_days", "days"], ["_bw", "BW"], ["_kg", "kg"], ["_min", "min"]];
  const EVIDENCE_NAMES = { valr: "VALR", vilr: "VILR", acwr: "ACWR", si: "strike index", z: "z-score", r2: "R²", sd: "SD" };

  function evidenceLabel(key) {
    let unit = "", name = key;
    for (const [suffix, u] of UNIT_SUFFIXES) if (key.endsWith(suffix)) { unit = u; name = key.slice(0, -suffix.length); break; }
    if (!unit && /^v[ai]lr(_|$)/.test(key)) unit = "BW/s";  // valr_mean, vilr_p90 …
    name = name.split("_").map((w) => EVIDENCE_NAMES[w] || w).join(" ");
    return [name.charAt(0).toUpperCase() + name.slice(1), unit];
  }

  function evidenceValue(v, unit) {
    if (isNum(v)) return `${num(v, Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1)}${unit ? " " + unit : ""}`;
    if (typeof v === "boolean") return v ? "yes" : "no";
    if (Array.isArray(v)) return v.map((x) => evidenceValue(x, "")).join(", ");
    return String(v);
  }

  function evidenceList(ev) {
    if (!ev || typeof ev !== "object" || !Object.keys(ev).length) return null;
    const box = h("div", { class: "evidence", role: "list", "aria-label": "Evidence" });
    // Nested groups (reference/current/change_pct…) flatten to "Group · measure"; a unit on the group's name
    // (change_pct) applies to its members.
    const add = (key, v, prefix, parentUnit) => {
      const [label, ownUnit] = evidenceLabel(key);
      const unit = parentUnit || ownUnit;
      if (v && typeof v === "object" && !Array.isArray(v)) {
        for (const [k, x] of Object.entries(v).slice(0, 8)) add(k, x, `${prefix}${label} · `, ownUnit);
        return;
      }
      box.append(h("div", { class: "ev-item", role: "listitem" },
        h("span", { class: "ev-label", text: prefix + label }), h("span", { class: "ev-value", text: evidenceValue(v, unit) })));
    };
    for (const [k, v] of Object.entries(ev).slice(0, 16)) add(k, v, "", "");
    return box;
  }

  function alertItem(a, { compact = false, fresh = false } = {}) {
    const sev = a.severity || "info";
    const li = h("li", { class: `alert sev-l-${sev}${a.acked ? " acked" : ""}${fresh ? " fresh" : ""}`, "data-alert-id": a.alert_id });
    const ackBtn = a.acked ? null : h("button", {
      class: "btn", type: "button", text: "Acknowledge",
      onclick: async (ev) => {
        ev.target.disabled = true;
        try {
          await api(`/api/alerts/${encodeURIComponent(a.alert_id)}/ack`, { json: { by: "dashboard" } });
          markAcked(a.alert_id, "dashboard");
        } catch (err) { ev.target.disabled = false; ev.target.replaceWith(h("span", { class: "error", text: err.message })); }
      },
    });
    li.append(...[
      h("div", { class: "alert-head" },
        h("span", { class: `badge sev-${sev}`, text: sev }),
        h("span", { class: "alert-title", text: a.title || a.rule }),
        h("span", { class: "alert-meta", text: `${fmtDateTime(a.created_at)}${a.runner ? " · " + a.runner : ""}` })),
      h("p", { text: compact ? (a.message || "").slice(0, 220) + ((a.message || "").length > 220 ? "…" : "") : a.message || "" }),
      compact ? null : evidenceList(a.evidence),
      h("div", { class: "alert-head" },
        h("span", { class: "conf", title: "How sure the risk engine is, from the amount and consistency of the data", text: `Confidence ${pct(a.confidence)}` }),
        a.run_id ? h("a", { class: "conf", href: `/runs/${encodeURIComponent(a.run_id)}`, text: "View run" }) : null,
        h("span", { class: "alert-meta ack-state", text: a.acked ? `Acknowledged${a.acked_by ? " by " + a.acked_by : ""}` : "" }),
        ackBtn)].filter(Boolean));
    return li;
  }

  function markAcked(alertId, by) {
    document.querySelectorAll(`li.alert[data-alert-id="${CSS.escape(alertId)}"]`).forEach((li) => {
      li.classList.add("acked");
      li.querySelectorAll("button").forEach((b) => b.remove());
      const st = li.querySelector(".ack-state");
      if (st) st.textContent = `Acknowledged${by ? " by " + by : ""}`;
    });
  }
  document.addEventListener("footfall:alert_ack", (ev) => markAcked(ev.detail.alert_id, ev.detail.by));

  // ------------------------------------------------------------------ overview
  async function pageOverview() {
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
    const riskText = {
      // Mirrors plugin.risk.risk_summary: open (unacknowledged) alerts of the last 28 days count until acknowledged.
      low: "No open warnings: nothing stands out against your own baseline. Acknowledged alerts no longer count.",
      elevated: "An alert is still open, or your training load jumped — read the reasons, consider an easier week, and acknowledge the alert once you have.",
      high: "Several warning signs in the last 7 days. Ease off and read the alerts.",
      unknown: "Not enough history for a personal baseline yet — keep running with the insoles.",
    }[level] || "";
    const reasons = ((data.risk && data.risk.reasons) || []).slice(0, 5);
    fill($("#risk-card .card-body"), h("div", { class: `risk risk-${level}`, id: "risk-level", text: level }), h("p", { class: "muted", text: riskText }),
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
        { type: "bar", name: "Steps", x: pts.map((p) => toDate(p.t)), y: pts.map((p) => p.steps), marker: { color: c.accent, opacity: 0.55 }, hovertemplate: "%{y:,.0f} steps<extra></extra>" },
        { type: "scatter", mode: "lines+markers", name: "VALR (BW/s)", yaxis: "y2", x: pts.map((p) => toDate(p.t)), y: pts.map((p) => p.valr_mean), line: { color: c.crit, width: 2 }, hovertemplate: "%{y:.0f} BW/s<extra></extra>" },
      ], { yaxis: { title: { text: "steps / week" } }, yaxis2: { title: { text: "VALR (BW/s)" }, overlaying: "y", side: "right", showgrid: false, rangemode: "tozero", tickformat: ".0f", tickfont: { color: css("--muted") } }, margin: { l: 56, r: 52, t: 30, b: 40 } });
    } catch (err) { showError($("#week-glance .card-body"), err); }
  }

  // ------------------------------------------------------------------ trends
  const get = (p, ...keys) => { for (const k of keys) { const v = k.split(".").reduce((o, part) => (o == null ? undefined : o[part]), p); if (v !== undefined && v !== null) return v; } return null; };

  async function pageTrends() {
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

  // ------------------------------------------------------------------ runs list
  async function pageRuns() {
    const body = $("#runs-list .card-body");
    const more = $("#runs-more");
    const tbody = h("tbody");
    const table = h("div", { class: "table-wrap" }, h("table", { class: "runs" },
      h("thead", {}, h("tr", {},
        h("th", { text: "Date" }), h("th", { class: "t-left", text: "Runner" }), h("th", { text: "Duration" }), h("th", { text: "Steps" }),
        h("th", { title: GLOSSARY.cadence, text: "Cadence (spm)" }), h("th", { title: GLOSSARY.valr, text: "VALR (BW/s)" }),
        h("th", { title: GLOSSARY.contact, text: "Contact (ms)" }), h("th", { title: GLOSSARY.si, text: "Strike index L / R" }))),
      tbody));
    let offset = 0;
    const filter = $("#runs-runner");
    try {
      const meta = await api("/api/meta");
      for (const r of meta.runners || []) filter.append(h("option", { value: r.name, text: `${r.name} (${r.runs})` }));
    } catch (_) { /* the filter is optional */ }
    const loadPage = async () => {
      let data;
      const q = new URLSearchParams({ limit: "50", offset: String(offset) });
      if (filter.value) q.set("runner", filter.value);
      try { data = await api(`/api/runs?${q}`); } catch (err) { showError(body, err); return; }
      if (offset === 0) { tbody.replaceChildren(); fill(body, data.runs.length ? table : h("p", { class: "empty", text: "No runs recorded yet." })); }
      for (const r of data.runs) {
        const href = `/runs/${encodeURIComponent(r.run_id)}`;
        tbody.append(h("tr", { onclick: () => location.assign(href) },
          h("td", {}, h("a", { href, text: fmtDateTime(r.started_at) })), h("td", { class: "t-left", text: r.runner || "–" }),
          h("td", { text: fmtDuration(r.duration_s) }), h("td", { text: num(r.steps) }), h("td", { text: num(r.cadence_spm) }),
          h("td", { text: valrCell(r) }), h("td", { text: num(r.contact_ms) }),
          h("td", { text: `${num(r.si_left, 2)} / ${num(r.si_right, 2)}` })));
      }
      offset = data.next_offset || offset;
      more.hidden = !data.next_offset;
    };
    more.addEventListener("click", loadPage);
    filter.addEventListener("change", () => { offset = 0; loadPage(); });
    await loadPage();
  }

  // ------------------------------------------------------------------ run detail
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
    svg.append(h("text", { class: "insole-title", x: pad + W / 2, y: L + 2 * pad + 12, "text-anchor": "middle", text: `${side === "left" ? "Left" : "Right"} · ${pts.length} steps` }));
    return svg;
  }

  async function pageRun() {
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
    try { run = await api(`/api/runs/${encodeURIComponent(runId)}?steps=columns`); } catch (err) { showError($("#run-summary .card-body"), err); return; }
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

    fill($("#cop-map .card-body"),
      h("div", { class: "insoles" }, insoleSvg("left", bySide("left"), c.left), insoleSvg("right", bySide("right"), c.right)));

    const wx = win.map((w) => (isNum(w.t_start) && isNum(run.started_at) ? (w.t_start - run.started_at) / 60 : w.window_index));
    const wl = (name, key, color, axis, unit) => ({ type: "scatter", mode: "lines", name: `${name} (${unit})`, x: wx, y: win.map((w) => w[key]), yaxis: axis, line: { color, width: 2 }, hovertemplate: `%{y:.0f} ${unit}` });
    plot("chart-windows", [wl("Cadence", "cadence_spm", c.accent, "y", "spm"), wl("VALR", "valr_mean", c.crit, "y2", "BW/s"), wl("Contact", "contact_ms", c.left, "y3", "ms")], {
      grid: { rows: 3, columns: 1, shared_xaxes: true, roworder: "top to bottom" },
      xaxis: { title: { text: "minutes into the run" } },
      yaxis: { title: { text: "spm" }, domain: [0.7, 1] }, yaxis2: { title: { text: "BW/s" }, domain: [0.36, 0.64] }, yaxis3: { title: { text: "ms" }, domain: [0, 0.3] },
      margin: { l: 56, r: 16, t: 30, b: 40 },
    });
  }

  // ------------------------------------------------------------------ alerts page
  async function pageAlerts() {
    const body = $("#alerts-list .card-body");
    const showAcked = $("#show-acked");
    const load = async () => {
      let data;
      try { data = await api(`/api/alerts?limit=200&include_acked=${showAcked.checked}`); } catch (err) { showError(body, err); return; }
      fill(body, data.alerts.length ? h("ul", { class: "alert-list", id: "alerts-ul" }, data.alerts.map((a) => alertItem(a))) : h("p", { class: "empty", id: "no-alerts", text: "No alerts yet. The risk engine speaks up rarely — only when something changes against your own baseline." }));
    };
    showAcked.addEventListener("change", load);
    document.addEventListener("footfall:reconnect", load);
    document.addEventListener("footfall:alert", (ev) => {
      let list = $("#alerts-ul");
      if (!list) { list = h("ul", { class: "alert-list", id: "alerts-ul" }); fill(body, list); }
      list.prepend(alertItem(ev.detail, { fresh: true }));
    });
    await load();
  }

  // ------------------------------------------------------------------ settings
  async function pageSettings() {
    const form = $("#settings-form");
    const body = $(".card-body", form);
    const status = $("#settings-status");
    let data;
    try { data = await api("/api/settings"); } catch (err) { showError(body, err); return; }
    renderSystem();
    const render = (d) => {
      fill(body, d.schema.map((spec) => {
        const id = `set-${spec.key}`;
        const value = d.settings[spec.key];
        let input;
        if (spec.type === "url_list") input = h("textarea", { id, name: spec.key, spellcheck: "false", placeholder: "ntfy://my-topic\nmailto://user:pass@example.com" });
        else if (spec.type === "bool") input = h("input", { id, name: spec.key, type: "checkbox", checked: !!value });
        else input = h("input", { id, name: spec.key, type: spec.type === "str" ? "text" : "number", step: spec.type === "int" ? "1" : "any", min: spec.min, max: spec.max });
        if (spec.type === "url_list") input.value = (value || []).join("\n");
        else if (spec.type !== "bool") input.value = value === null || value === undefined ? "" : String(value);
        return h("div", { class: "field" },
          h("label", { for: id, text: spec.title }),
          h("div", {}, input, spec.unit ? h("span", { class: "unit", text: spec.unit }) : null),
          h("div", { class: "desc", text: spec.description + (spec.secret ? " Saved entries are shown masked; leave them as they are to keep them." : "") }));
      }));
      $("#notify-test").hidden = !d.notify_test;
    };
    render(data);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const out = {};
      for (const spec of data.schema) {
        const el = form.elements[spec.key];
        if (spec.type === "url_list") out[spec.key] = el.value.split("\n").map((s) => s.trim()).filter(Boolean);
        else if (spec.type === "bool") out[spec.key] = el.checked;
        else if (spec.type === "str") out[spec.key] = el.value;
        else out[spec.key] = el.value === "" ? null : Number(el.value);
      }
      status.className = ""; status.textContent = "Saving…";
      try { data = await api("/api/settings", { json: out }); render(data); status.className = "ok"; status.textContent = "Saved."; }
      catch (err) { status.className = "error"; status.textContent = err.message; }
    });
    $("#notify-test").addEventListener("click", async () => {
      status.className = ""; status.textContent = "Sending…";
      try { await api("/api/settings/notify-test", { method: "POST", json: {} }); status.className = "ok"; status.textContent = "Test notification delivered."; }
      catch (err) { status.className = "error"; status.textContent = err.message; }
    });
  }

  async function renderSystem() {
    const body = $("#system-card .card-body");
    let hl;
    try { hl = await api("/api/health"); } catch (err) { showError(body, err); return; }
    const ing = hl.ingest || {}, br = hl.broker || {}, nt = hl.notify || {};
    const reasons = Object.entries(ing.rejected_by_reason || {}).map(([k, v]) => `${k} ${v}`).join(", ");
    fill(body,
      h("div", { class: "stats" },
        stat("Stored", num(ing.stored), null, null, "summaries and runs"),
        stat("Duplicates", num(ing.duplicates), null, null, "resent, stored once"),
        stat("Rejected", num(ing.rejected), null, null, reasons || "malformed payloads"),
        stat("Broker", br.connected ? "connected" : br.connected === false ? "offline" : "–", null, null, br.url || ""),
        stat("Devices", num(hl.devices), null, null, hl.version ? `footfall ${hl.version}` : null),
        stat("Notifications", nt.configured ? `${num(nt.sent)} sent` : "not set up", null, null, nt.configured ? `${num(nt.failed)} failed` : null)),
      hl.web && hl.web.auth === "token"
        ? h("form", { method: "post", action: "/logout", class: "form-actions" }, h("button", { class: "btn ghost", type: "submit", text: "Sign out" }))
        : h("p", { class: "muted", text: "Open on this computer only (listening on localhost without a token)." }));
  }

  // ------------------------------------------------------------------ boot
  const PAGES = { overview: pageOverview, trends: pageTrends, runs: pageRuns, run: pageRun, alerts: pageAlerts, settings: pageSettings };
  document.addEventListener("DOMContentLoaded", () => {
    const page = document.body.dataset.page;
    if (page !== "login") startLive();
    const fn = PAGES[page];
    if (fn) fn().catch((err) => console.error(err)).finally(() => { document.body.dataset.ready = "1"; });
  });
})();
