// ContactPad: the agent's state, calls and Salesforce work, live over a WebSocket.
"use strict";

(function () {
  const api = window.presencesync;
  let agent = JSON.parse(document.getElementById("agent-data").textContent);
  const labels = JSON.parse(document.getElementById("presence-labels").textContent);
  const agentPath = "/agents/" + encodeURIComponent(agent.agent_id);
  const queues = {};

  function $(id) { return document.getElementById(id); }

  function show(id, visible) { $(id).hidden = !visible; }

  function formatDuration(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    const h = Math.floor(seconds / 3600);
    const m = Math.floor((seconds % 3600) / 60);
    const s = seconds % 60;
    const mm = h ? String(m).padStart(2, "0") : String(m);
    return (h ? h + ":" : "") + mm + ":" + String(s).padStart(2, "0");
  }

  function tick() {
    const since = agent.since ? Date.parse(agent.since) : NaN;
    $("time-in-state").textContent = isNaN(since) ? "–" : formatDuration((Date.now() - since) / 1000);
  }

  function setIfChanged(id, text) {
    // Rewriting an unchanged live region would make screen readers announce it again.
    const el = $(id);
    if (el.textContent !== text) el.textContent = text;
  }

  async function describeOffer(interactionId) {
    if (!(interactionId in queues)) {
      queues[interactionId] = null;
      const result = await api.call("GET", "/interactions/" + encodeURIComponent(interactionId));
      if (result.ok) queues[interactionId] = result.data.queue;
    }
    const queue = queues[interactionId];
    if (agent.offered_interaction_id === interactionId) {
      setIfChanged("offer-text", "Incoming call" + (queue ? " from queue " + queue : "") + " (" + interactionId + ")");
    }
  }

  // The picker shows the current state until the agent starts choosing another one; a live
  // update must never overwrite a choice that is about to be submitted.
  let pickerState = null;
  let pickerTouched = false;
  function followStateInPicker() {
    const picker = $("state-picker");
    if (pickerTouched || agent.state === pickerState) return;
    pickerState = agent.state;
    const selectable = Array.from(picker.options).some(function (o) { return o.value === agent.state; });
    picker.value = selectable ? agent.state : "";
  }
  $("state-picker").addEventListener("change", function () { pickerTouched = true; });

  function render(next) {
    // An HTTP answer and a WebSocket push race each other: never let the older one win.
    if (typeof next.version === "number" && typeof agent.version === "number" && next.version < agent.version) return;
    agent = next;
    setIfChanged("current-state", agent.state);
    tick();
    show("login-button", !agent.logged_in);
    show("logout-button", agent.logged_in);
    show("pending-state", Boolean(agent.pending_state));
    setIfChanged("pending-state-value", agent.pending_state || "");
    followStateInPicker();

    const offered = agent.offered_interaction_id;
    show("offer", Boolean(offered));
    if (offered) describeOffer(offered);
    show("on-call", Boolean(agent.interaction_id));
    setIfChanged("call-text", agent.interaction_id ? "On call " + agent.interaction_id : "");
    show("no-calls", !offered && !agent.interaction_id);

    const presence = agent.presence_status;
    setIfChanged("omni-presence", presence ? (labels[presence] || presence) : "Offline");
    // While a command of ours is on its way to the console, say where presence is heading.
    const desired = agent.desired_presence_status;
    let heading = "";
    if (agent.logged_in && desired && desired !== presence) {
      heading = "(being set to " + (labels[desired] || desired) + ")";
    } else if (!agent.logged_in && presence) {
      heading = "(going offline)";
    }
    setIfChanged("omni-desired", heading);
    setIfChanged("console-status", agent.console_connected ? "connected"
      : agent.salesforce_observed_via === "change_data_capture"
        ? "not connected (Omni changes observed over Change Data Capture)" : "not connected");
    const list = $("work-items");
    list.textContent = "";
    for (const item of agent.open_work_items) {
      const li = document.createElement("li");
      li.textContent = (item.channel || "Work") + " " + item.id + " (" + item.status + ")";
      list.appendChild(li);
    }
    show("no-work", agent.open_work_items.length === 0);
  }

  function problem(text) {
    api.showProblems("contactpad-problems", text ? "That did not work:" : "", text ? [{ text: text }] : []);
  }

  async function act(method, path, body) {
    problem("");
    const result = await api.call(method, path, body);
    if (!result.ok) {
      problem(result.error.message);
      return;
    }
    if (result.data && result.data.agent_id === agent.agent_id && "state" in result.data) render(result.data);
  }

  $("login-button").addEventListener("click", function () { act("POST", agentPath + "/login", {}); });
  $("logout-button").addEventListener("click", function () { act("POST", agentPath + "/logout"); });
  $("state-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const chosen = $("state-picker").value;
    if (!chosen) return;
    pickerTouched = false;
    pickerState = null;
    act("PUT", agentPath + "/state", { state: chosen });
  });
  function interaction(action, idField) {
    return function () {
      const id = agent[idField];
      if (id) act("POST", "/interactions/" + encodeURIComponent(id) + "/" + action);
    };
  }
  $("answer-button").addEventListener("click", interaction("answer", "offered_interaction_id"));
  $("decline-button").addEventListener("click", interaction("decline", "offered_interaction_id"));
  $("hangup-button").addEventListener("click", interaction("hangup", "interaction_id"));

  // --- live updates -----------------------------------------------------------------------
  let retryDelay = 500;
  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const socket = new WebSocket(scheme + "//" + location.host + "/api/v1" + agentPath + "/stream");
    socket.addEventListener("open", function () {
      retryDelay = 500;
      $("live-status").textContent = "Live updates: connected";
    });
    socket.addEventListener("message", function (event) {
      let message;
      try { message = JSON.parse(event.data); } catch (err) { return; }
      if (message.type === "agent") render(message.agent);
    });
    socket.addEventListener("close", function (event) {
      if (event.code === 4401) {
        $("live-status").textContent = "Live updates stopped: sign in again.";
        return;
      }
      $("live-status").textContent = "Live updates: reconnecting…";
      setTimeout(connect, retryDelay);
      retryDelay = Math.min(retryDelay * 2, 10000);
    });
  }

  render(agent);
  setInterval(tick, 1000);
  connect();
})();
