/* Alert list items, shared by the overview and the alerts page. */
import { api } from "./api.js";
import { fmtDateTime, h, isNum, num, pct } from "./dom.js";

// Evidence of the risk engine's rules (plugin/risk.py), in words a runner reads: [label, unit]. A unit of "base"
// is the unit of the measure the rule judges (RULE_UNITS). Keys not listed fall back to a label derived from
// the name, whose suffix carries the unit (valr_bw_s, rise_pct, contact_ms…); HIDDEN keys are internals.
const EVIDENCE_LABELS = {
  window_index: ["10-s window no.", ""], valr_bw_s: ["Loading rate (VALR)", "BW/s"],
  baseline_mean: ["Your baseline", "base"], baseline_sd: ["Usual spread (± 1 SD)", "base"],
  baseline_windows: ["Windows in your baseline", ""], baseline_runs: ["Runs in your baseline", ""],
  rise_pct: ["Above your baseline", "%"], z: ["Above your baseline, in SDs", "SD"],
  steps: ["Steps counted", ""], cadence_spm: ["Cadence", "spm"], contact_ms: ["Contact time", "ms"],
  valr_mean: ["Loading rate (VALR)", "BW/s"],
  loading_rate_low_confidence: ["Loading-rate reading uncertain", ""],
  threshold_pct: ["Alert above", "%"], threshold_z: ["Alert above, in SDs", "SD"], threshold_bw_s: ["Alert above", "BW/s"],
  threshold: ["Alert at", ""], rearm_below: ["Re-arms below", ""], threshold_pp_per_week: ["Alert above", "points/week"],
  baseline: ["Your baseline", "base"], mean: ["Mean", "base"], sd: ["Spread (± 1 SD)", "base"], ewma: ["Recent average", "base"],
  runs: ["Runs", ""], sources: ["Sources", ""],
  slope_pp_per_week: ["Forefoot share change", "points/week"], r2: ["Trend fit (R²)", ""],
  first_share_pct: ["Forefoot share at first", "%"], last_share_pct: ["Forefoot share now", "%"], window_days: ["Over", "days"],
  reference_windows: ["Start-of-run windows", ""], current_windows: ["Latest windows", ""],
  reference: ["Start of run", ""], current: ["Latest", ""], change_pct: ["Change", "%"], thresholds_pct: ["Alert thresholds", "%"],
  cadence_drop: ["Cadence drop", "%"], contact_rise: ["Contact-time rise", "%"], valr_rise: ["Loading-rate rise", "%"],
  measures: ["", ""], values: ["Recent runs", "%"], margin: ["Margin", "%"],
  asymmetry_contact_pct: ["Contact-time asymmetry", "%"], asymmetry_valr_pct: ["Loading-rate asymmetry", "%"],
  acute_min_per_day: ["Last 7 days", "min/day"], chronic_min_per_day: ["Last 28 days", "min/day"], acwr: ["Acute:chronic ratio", ""],
};
const HIDDEN = new Set(["lambda_acute", "lambda_chronic"]);
const RULE_UNITS = { loading_spike: "BW/s", valr_absolute: "BW/s", strike_transition: "%", asymmetry: "%" };
const UNIT_SUFFIXES = [["_pp_per_week", "points/week"], ["_bw_s", "BW/s"], ["_pct", "%"], ["_spm", "spm"], ["_ms", "ms"],
  ["_days", "days"], ["_bw", "BW"], ["_kg", "kg"], ["_min", "min"]];

function evidenceLabel(key, rule) {
  const known = EVIDENCE_LABELS[key];
  if (known) return [known[0], known[1] === "base" ? RULE_UNITS[rule] || "" : known[1]];
  let unit = "", name = key;
  for (const [suffix, u] of UNIT_SUFFIXES) if (key.endsWith(suffix)) { unit = u; name = key.slice(0, -suffix.length); break; }
  name = name.replaceAll("_", " ");
  return [name.charAt(0).toUpperCase() + name.slice(1), unit];
}

function evidenceValue(key, v, unit) {
  if (key === "runs" && Array.isArray(v)) return `${v.length} runs`;  // run ids: the count is what matters
  if (isNum(v)) return `${num(v, Number.isInteger(v) ? 0 : Math.abs(v) < 10 ? 2 : 1)}${unit ? " " + unit : ""}`;
  if (typeof v === "boolean") return v ? "yes" : "no";
  if (Array.isArray(v)) return v.map((x) => evidenceValue("", x, "")).join(", ") + (unit && v.every(isNum) ? " " + unit : "");
  return String(v);
}

function evidenceList(ev, rule) {
  if (!ev || typeof ev !== "object" || !Object.keys(ev).length) return null;
  const box = h("div", { class: "evidence", role: "list", "aria-label": "Evidence" });
  // Nested groups (reference/current/change_pct…) flatten to "Group · measure"; a unit on the group's name
  // (change_pct) applies to its members.
  const add = (key, v, prefix, parentUnit) => {
    if (HIDDEN.has(key)) return;
    const [label, ownUnit] = evidenceLabel(key, rule);
    const unit = parentUnit || ownUnit;
    if (v && typeof v === "object" && !Array.isArray(v)) {
      for (const [k, x] of Object.entries(v).slice(0, 8)) add(k, x, label ? `${prefix}${label} · ` : prefix, ownUnit);
      return;
    }
    box.append(h("div", { class: "ev-item", role: "listitem" },
      h("span", { class: "ev-label", text: prefix + label }), h("span", { class: "ev-value", text: evidenceValue(key, v, unit) })));
  };
  for (const [k, v] of Object.entries(ev).slice(0, 16)) add(k, v, "", "");
  return box;
}

export function alertItem(a, { compact = false, fresh = false } = {}) {
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
    compact ? null : evidenceList(a.evidence, a.rule),
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
