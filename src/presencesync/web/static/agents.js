// Agents overview: refresh the table from the API every few seconds.
"use strict";

(function () {
  const api = window.presencesync;
  const REFRESH_MS = 3000;

  function cell(tag, text) {
    const el = document.createElement(tag);
    el.textContent = text;
    if (tag === "th") el.scope = "row";
    return el;
  }

  async function refresh() {
    const result = await api.call("GET", "/agents?limit=500");
    if (!result.ok) {
      api.showProblems("agents-problems", "The agents could not be refreshed:", [{ text: result.error.message }]);
      return;
    }
    api.showProblems("agents-problems", "", []);
    const body = document.querySelector("#agents-table tbody");
    body.textContent = "";
    for (const a of result.data) {
      const tr = document.createElement("tr");
      tr.dataset.agent = a.agent_id;
      tr.appendChild(cell("th", a.agent_id));
      tr.appendChild(cell("td", a.name || ""));
      tr.appendChild(cell("td", a.state + (a.pending_state ? " (pending " + a.pending_state + ")" : "")));
      tr.appendChild(cell("td", a.since || ""));
      tr.appendChild(cell("td", a.presence_status || "Offline"));
      tr.appendChild(cell("td", String(a.open_work_items.length)));
      tr.appendChild(cell("td", a.console_connected ? "connected" : "not connected"));
      body.appendChild(tr);
    }
  }

  setInterval(refresh, REFRESH_MS);
})();
