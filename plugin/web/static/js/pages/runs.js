/* Runs list: paged table, filter by runner. */
import { api } from "../api.js";
import { $, GLOSSARY, fill, fmtDateTime, fmtDuration, h, num, showError, valrCell } from "../dom.js";

export async function render() {
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
