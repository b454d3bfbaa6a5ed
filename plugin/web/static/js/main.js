/* footfall dashboard front end: vanilla-JS ES modules reading the JSON API (docs/dashboard.md).
 *
 * Entry point: the server-rendered shell names its page in <body data-page>; the page's module
 * (pages/<page>.js, exporting `async function render()`) is imported on demand and draws it.
 * Rules: user-supplied text only via textContent (dom.js h()); no inline scripts (CSP script-src 'self').
 */
import { startLive } from "./api.js";

const PAGES = {
  overview: () => import("./pages/overview.js"),
  trends: () => import("./pages/trends.js"),
  runs: () => import("./pages/runs.js"),
  run: () => import("./pages/run.js"),
  journey: () => import("./pages/journey.js"),
  alerts: () => import("./pages/alerts.js"),
  settings: () => import("./pages/settings.js"),
};

const page = document.body.dataset.page;
const load = PAGES[page];
if (load) {
  load()
    .then((mod) => {
      // render() subscribes to the footfall:* events before its first await; only then open the stream, so
      // the first events (the latest live update arrives at once) find their listeners.
      const drawn = mod.render();
      startLive();
      return drawn;
    })
    .catch((err) => console.error(err))
    .finally(() => { performance.mark("footfall:ready"); document.body.dataset.ready = "1"; });
}
