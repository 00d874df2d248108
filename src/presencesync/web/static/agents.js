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

  function consoleText(a) {
    if (a.console_connected) return "connected";
    if (a.salesforce_observed_via === "change_data_capture") {
      return "not connected (Omni changes observed over Change Data Capture)";
    }
    return "not connected";
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
      tr.appendChild(cell("td", consoleText(a)));
      body.appendChild(tr);
    }
  }

  // A call arrives on a queue: the router offers it to the longest-idle Ready agent.
  document.getElementById("offer-form").addEventListener("submit", async function (event) {
    event.preventDefault();
    const queue = document.getElementById("queue").value.trim();
    const result = await api.call("POST", "/interactions", { queue: queue });
    if (!result.ok) {
      api.setText("offer-status", "");
      const details = Array.isArray(result.error.details) ? result.error.details : [];
      const items = details.length
        ? details.map(function (d) { return { text: d.field + ": " + d.message }; })
        : [{ text: result.error.message }];
      api.showProblems("agents-problems", "The call was not offered:", items);
      return;
    }
    api.showProblems("agents-problems", "", []);
    const call = result.data;
    api.setText("offer-status", call.agent_id
      ? "Call " + call.id + " offered to " + call.agent_id + "."
      : "Call " + call.id + " queued: no agent can take it now.");
    refresh();
  });

  setInterval(refresh, REFRESH_MS);
})();
