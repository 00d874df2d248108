// Shared by the pages: call the JSON API with the session cookie.
"use strict";

window.presencesync = (function () {
  // Cookie-authenticated writes must carry the session's CSRF token (web/csrf.py), which the
  // server puts in the page; another site can neither read it nor compute it.
  const tokenMeta = document.querySelector('meta[name="csrf-token"]');
  const HEADERS = {
    "X-Requested-With": "presencesync",
    "X-CSRF-Token": tokenMeta ? tokenMeta.getAttribute("content") : "",
    "Accept": "application/json",
  };

  async function call(method, path, body) {
    const options = { method: method, headers: Object.assign({}, HEADERS), credentials: "same-origin" };
    if (body !== undefined) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch("/api/v1" + path, options);
    } catch (err) {
      return { ok: false, status: 0, error: { code: "NETWORK", message: "The server could not be reached." } };
    }
    let data = null;
    try { data = await response.json(); } catch (err) { data = null; }
    if (response.ok) return { ok: true, status: response.status, data: data };
    const error = (data && data.error) || { code: "HTTP_" + response.status, message: response.statusText };
    if (response.status === 401) {
      error.message = "Your session has ended. Sign in again.";
    }
    return { ok: false, status: response.status, error: error };
  }

  function setText(id, text) {
    const el = document.getElementById(id);
    if (el) el.textContent = text;
  }

  // Fill a role="alert" region with a heading and a list of problems. After a failed form
  // submission (`focus`), keyboard users land on the summary, whose links lead to the rows.
  function showProblems(regionId, title, items, focus) {
    const region = document.getElementById(regionId);
    if (!region) return;
    region.textContent = "";
    if (!items || !items.length) return;
    const p = document.createElement("p");
    p.className = "alert-title";
    p.textContent = title;
    region.appendChild(p);
    const ul = document.createElement("ul");
    for (const item of items) {
      const li = document.createElement("li");
      if (item.href) {
        const a = document.createElement("a");
        a.href = item.href;
        a.textContent = item.text;
        li.appendChild(a);
      } else {
        li.textContent = item.text;
      }
      ul.appendChild(li);
    }
    region.appendChild(ul);
    if (focus) {
      region.setAttribute("tabindex", "-1");
      region.focus();
    }
  }

  // How the agent's Salesforce console is doing, in words (ContactPad, the agents overview).
  const DEGRADED = {
    connection_error: "Omni-Channel connection error",
    toolkit_unresponsive: "Omni-Channel not answering",
    displaced: "another console took over Omni-Channel",
  };
  function consoleText(agent) {
    let text = agent.console_connected ? "connected" : "not connected";
    if (!agent.console_connected && agent.salesforce_observed_via === "change_data_capture") {
      text += " (Omni changes observed over Change Data Capture)";
    }
    if (agent.console_connected && agent.console_degraded) {
      text += " (degraded: " + (DEGRADED[agent.console_degraded] || agent.console_degraded) + ")";
    }
    if (agent.omni_unavailable === "maintenance") text += "; Omni-Channel down for maintenance";
    return text;
  }

  return { call: call, setText: setText, showProblems: showProblems, consoleText: consoleText };
})();
