/*
 * The Omni-Channel utility widget of the emulated Salesforce console. Clicks go through the
 * emulator control API (an agent's manual change: reason OmniManualStatusChange); the widget
 * re-reads the agent's Omni state after every console event, so it updates live.
 */
(function () {
  "use strict";

  var config = window.OMNI_CONSOLE_CONFIG;
  var control = config.controlBaseUrl;
  var userId = config.userId;
  var select = document.getElementById("omni-status");
  var statusLine = document.getElementById("omni-status-line");
  var alertBox = document.getElementById("omni-alert");
  var incomingList = document.getElementById("omni-incoming");
  var openList = document.getElementById("omni-open");
  var capacity = document.getElementById("omni-capacity");
  var record = document.getElementById("record-area");
  var connection = document.getElementById("omni-connection");
  var refreshing = null;
  var again = false;

  function showError(message) {
    alertBox.textContent = message || "";
    alertBox.hidden = !message;
  }

  function request(method, path, body) {
    return fetch(control + path, {
      method: method,
      headers: body ? { "Content-Type": "application/json" } : {},
      body: body ? JSON.stringify(body) : undefined,
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) {
          throw new Error((data && data.error && data.error.message) || response.statusText);
        }
        return data;
      });
    });
  }

  function button(label, action, work) {
    var b = document.createElement("button");
    b.type = "button";
    b.textContent = label;
    b.setAttribute("aria-label", label + " " + (work.subject || work.channel || "work"));
    b.dataset.workId = work.id;
    b.addEventListener("click", function () {
      b.disabled = true;
      request("POST", "/work/" + encodeURIComponent(work.id) + "/" + action)
        .then(function () { showError(""); })
        .catch(function (err) { showError(err.message); })
        .then(refresh);
    });
    return b;
  }

  function workRow(work, buttons) {
    var li = document.createElement("li");
    li.className = "work work-" + work.status.toLowerCase();
    li.dataset.workId = work.id;
    var label = document.createElement("span");
    label.className = "work-label";
    label.textContent = work.channel + ": " + (work.subject || work.work_item_id);
    li.appendChild(label);
    buttons.forEach(function (b) { li.appendChild(b); });
    return li;
  }

  function render(omni) {
    select.value = omni.online ? omni.presence_status : "__offline__";
    var label = omni.online ? omni.presence_status_label : "Offline";
    statusLine.textContent = "Omni-Channel: " + label;
    document.body.dataset.omniStatus = omni.online ? omni.presence_status : "Offline";
    incomingList.replaceChildren();
    openList.replaceChildren();
    var opened = [];
    omni.work.forEach(function (work) {
      if (work.status === "Assigned") {
        incomingList.appendChild(
          workRow(work, [button("Accept", "accept", work), button("Decline", "decline", work)])
        );
      } else if (work.status === "Opened") {
        opened.push(work);
        openList.appendChild(workRow(work, [button("Close", "close", work)]));
      }
    });
    document.getElementById("omni-incoming-empty").hidden = incomingList.children.length > 0;
    document.getElementById("omni-open-empty").hidden = openList.children.length > 0;
    capacity.textContent = omni.capacity.used + " / " + omni.capacity.configured;
    capacity.setAttribute("aria-valuenow", String(omni.capacity.used));
    capacity.setAttribute("aria-valuemax", String(omni.capacity.configured));
    record.textContent = opened.length
      ? opened.map(function (w) { return w.channel + " — " + (w.subject || w.work_item_id); }).join("\n")
      : "No record open.";
  }

  function refresh() {
    // Coalesce bursts of events into one read, and never let an older read win.
    if (refreshing) { again = true; return refreshing; }
    refreshing = request("GET", "/users/" + encodeURIComponent(userId) + "/omni")
      .then(render)
      .catch(function (err) { showError(err.message); })
      .then(function () {
        refreshing = null;
        if (again) { again = false; refresh(); }
      });
    return refreshing;
  }

  select.addEventListener("change", function () {
    var value = select.value;
    var current = document.body.dataset.omniStatus;
    var call;
    if (value === "__offline__") {
      call = request("POST", "/users/" + encodeURIComponent(userId) + "/omni/logout");
    } else if (current === "Offline") {
      call = request("POST", "/users/" + encodeURIComponent(userId) + "/omni/login",
        { presence_status: value });
    } else {
      call = request("PUT", "/users/" + encodeURIComponent(userId) + "/omni/status",
        { presence_status: value });
    }
    call.then(function () { showError(""); })
      .catch(function (err) { showError(err.message); })
      .then(refresh);
  });

  document.addEventListener("omni:hello", function () {
    connection.textContent = "Connected";
    refresh();
  });
  document.addEventListener("omni:event", refresh);
  document.addEventListener("omni:disconnected", function () {
    connection.textContent = "Reconnecting…";
  });
})();
