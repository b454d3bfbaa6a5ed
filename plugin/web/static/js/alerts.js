/* Alert list items, shared by the overview and the alerts page. */
import { api } from "./api.js";
import { fmtDateTime, h, isNum, num, pct } from "./dom.js";

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
