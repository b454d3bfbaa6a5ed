/* Settings: notification URLs and risk thresholds (schema-driven form), system health. */
import { api } from "../api.js";
import { $, address, fill, h, num, showError, stat } from "../dom.js";

export async function render() {
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
      stat("Broker", br.connected ? "connected" : br.connected === false ? "offline" : "–", null, null, br.url ? address(br.url) : ""),
      stat("Devices", num(hl.devices), null, null, hl.version ? `footfall ${hl.version}` : null),
      stat("Notifications", nt.configured ? `${num(nt.sent)} sent` : "not set up", null, null, nt.configured ? `${num(nt.failed)} failed` : null)),
    hl.web && hl.web.auth === "token"
      ? h("form", { method: "post", action: "/logout", class: "form-actions" }, h("button", { class: "btn ghost", type: "submit", text: "Sign out" }))
      : h("p", { class: "muted", text: "Open on this computer only (listening on localhost without a token)." }));
}
