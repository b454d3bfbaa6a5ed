/* Alerts page: every alert, new ones live, acknowledge in place. */
import { alertItem } from "../alerts.js";
import { api } from "../api.js";
import { $, fill, h, showError } from "../dom.js";

export async function render() {
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
