// Omni-channel Configuration: fetch statuses, save the mappings and settings through the API,
// show each problem next to its row and all of them in the role="alert" summary.
"use strict";

(function () {
  const api = window.presencesync;
  const FLASH_KEY = "presencesync.admin.flash";

  // A message to show (in the status region `target`) once the page has reloaded.
  function flashOnReload(target, text) {
    sessionStorage.setItem(FLASH_KEY, JSON.stringify({ target: target, text: text }));
    location.reload();
  }

  function showFlash() {
    const raw = sessionStorage.getItem(FLASH_KEY);
    if (!raw) return;
    sessionStorage.removeItem(FLASH_KEY);
    try {
      const flash = JSON.parse(raw);
      api.setText(flash.target, flash.text);
    } catch (err) { /* an old or foreign value: ignore it */ }
  }

  // --- Fetch Omni-channel configuration -------------------------------------------------

  async function fetchConfiguration(event) {
    const button = event.currentTarget;
    button.disabled = true;
    api.setText("fetch-status", "Fetching presence statuses from Salesforce…");
    const result = await api.call("POST", "/omni/fetch");
    button.disabled = false;
    if (result.ok) {
      const n = result.data.presence_statuses.length;
      flashOnReload("fetch-status", "Fetched " + n + " presence status" + (n === 1 ? "" : "es") + " from Salesforce.");
      return;
    }
    api.setText("fetch-status", "");
    api.showProblems("config-problems", "The Omni-channel configuration could not be fetched:", [
      { text: result.error.message + " (" + result.error.code + ")" },
    ]);
  }

  // --- Save Configuration ---------------------------------------------------------------

  function rows(tableId) {
    const table = document.getElementById(tableId);
    return table ? Array.from(table.querySelectorAll("tbody tr")) : [];
  }

  function collectConfig() {
    return {
      enabled: document.getElementById("omni-enabled").checked,
      presence_mappings: rows("presence-table").map(function (tr) {
        return {
          presence_status: tr.dataset.key,
          busy: tr.querySelector("input[name=busy]").checked,
          maps_to: tr.querySelector("select[name=maps_to]").value || null,
        };
      }),
      state_mappings: rows("state-table").map(function (tr) {
        return {
          state: tr.dataset.key,
          presence_status: tr.querySelector("select[name=presence_status]").value || null,
        };
      }),
    };
  }

  function clearRowProblems() {
    for (const tr of rows("presence-table").concat(rows("state-table"))) {
      tr.classList.remove("has-problem");
      tr.querySelector(".row-problems").textContent = "";
      for (const control of tr.querySelectorAll("input, select")) control.removeAttribute("aria-invalid");
    }
  }

  function rowFor(finding) {
    const prefix = { presence_mappings: "pm", state_mappings: "sm" }[finding.section];
    if (!prefix) return null;
    if (finding.index !== null && finding.index !== undefined) {
      const byIndex = document.getElementById(prefix + "-row-" + finding.index);
      if (byIndex) return byIndex;
    }
    const table = prefix === "pm" ? "presence-table" : "state-table";
    return rows(table).find(function (tr) { return tr.dataset.key === finding.key; }) || null;
  }

  function showConfigProblems(findings) {
    const summary = [];
    for (const finding of findings) {
      const tr = rowFor(finding);
      if (tr) {
        tr.classList.add("has-problem");
        const cell = tr.querySelector(".row-problems");
        const p = document.createElement("p");
        p.textContent = finding.message;
        cell.appendChild(p);
        for (const control of tr.querySelectorAll("input, select")) control.setAttribute("aria-invalid", "true");
        summary.push({ text: tr.dataset.key + ": " + finding.message, href: "#" + tr.id });
      } else {
        summary.push({ text: (finding.key ? finding.key + ": " : "") + finding.message });
      }
    }
    const n = findings.length;
    api.showProblems("config-problems",
      "The configuration was not saved: " + n + " problem" + (n === 1 ? "" : "s") + " to fix.", summary, true);
  }

  function showWarnings(warnings) {
    const section = document.getElementById("warnings-section");
    const list = document.getElementById("config-warnings");
    list.textContent = "";
    for (const w of warnings) {
      const li = document.createElement("li");
      if (w.round_trip) {
        const strong = document.createElement("strong");
        strong.className = "round-trip";
        strong.textContent = w.round_trip.join(" -> ");
        li.appendChild(strong);
        li.appendChild(document.createTextNode(": "));
      }
      li.appendChild(document.createTextNode(w.message));
      list.appendChild(li);
    }
    section.hidden = warnings.length === 0;
  }

  async function saveConfiguration(event) {
    event.preventDefault();
    clearRowProblems();
    api.showProblems("config-problems", "", []);
    api.setText("save-status", "Saving…");
    const result = await api.call("PUT", "/omni/config", collectConfig());
    if (result.ok) {
      const w = result.data.warnings.length;
      api.setText("save-status", "Configuration saved (version " + result.data.version + ")" +
        (w ? ", with " + w + " warning" + (w === 1 ? "" : "s") + " below." : "."));
      showWarnings(result.data.warnings);
      return;
    }
    api.setText("save-status", "");
    if (Array.isArray(result.error.details) && result.error.code === "INVALID_CONFIG") {
      showConfigProblems(result.error.details);
    } else {
      api.showProblems("config-problems", "The configuration was not saved:", [
        { text: result.error.message + " (" + result.error.code + ")" },
      ], true);
    }
  }

  // --- Settings and minor states ----------------------------------------------------------

  function showFieldProblems(regionId, formId, details, fieldKey, title) {
    const form = document.getElementById(formId);
    for (const el of form.querySelectorAll(".field-problem")) el.textContent = "";
    for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
    const summary = [];
    for (const d of details) {
      const name = d[fieldKey] || d.field;
      const problemId = (fieldKey === "major" ? "minors-" + name : name) + "-problem";
      const slot = document.getElementById(problemId);
      if (slot) {
        slot.textContent = d.message;
        const control = document.getElementById(fieldKey === "major" ? "minors-" + name : name);
        if (control) control.setAttribute("aria-invalid", "true");
        summary.push({ text: name + ": " + d.message, href: "#" + (control ? control.id : problemId) });
      } else {
        summary.push({ text: (name ? name + ": " : "") + d.message });
      }
    }
    api.showProblems(regionId, details.length ? title : "", summary, details.length > 0);
  }

  function numberOrNull(id) {
    const value = document.getElementById(id).value.trim();
    return value === "" ? null : Number(value);
  }

  async function saveSettings(event) {
    event.preventDefault();
    api.setText("settings-status", "Saving…");
    const body = {
      wrap_seconds: numberOrNull("wrap_seconds"),
      session_grace_seconds: numberOrNull("session_grace_seconds"),
      offer_timeout_seconds: numberOrNull("offer_timeout_seconds"),
      session_end_policy: document.getElementById("session_end_policy").value,
      busy_status_means_busy_inbound: document.getElementById("busy_status_means_busy_inbound").checked,
      change_data_capture: document.getElementById("change_data_capture").checked,
    };
    document.querySelectorAll("select[data-logout-policy]").forEach(function (select) {
      body[select.name] = select.value;
    });
    const result = await api.call("PUT", "/settings", body);
    if (result.ok) {
      showFieldProblems("settings-problems", "settings-form", [], "field", "");
      api.setText("settings-status", "Settings saved.");
      return;
    }
    api.setText("settings-status", "");
    const details = Array.isArray(result.error.details) ? result.error.details
      : [{ message: result.error.message }];
    showFieldProblems("settings-problems", "settings-form", details, "field", "The settings were not saved:");
  }

  async function saveStates(event) {
    event.preventDefault();
    const minor = {};
    for (const input of document.querySelectorAll("#states-form input[type=text]")) {
      minor[input.name] = input.value.split(",").map(function (s) { return s.trim(); })
        .filter(function (s) { return s.length > 0; });
    }
    const result = await api.call("PUT", "/states", { minor_states: minor });
    if (result.ok) {
      flashOnReload("states-status", "Minor states saved.");
      return;
    }
    const details = Array.isArray(result.error.details) ? result.error.details
      : [{ message: result.error.message }];
    showFieldProblems("states-problems", "states-form", details, "major", "The minor states were not saved:");
  }

  function on(id, type, handler) {
    const el = document.getElementById(id);
    if (el) el.addEventListener(type, handler);
  }

  showFlash();
  on("fetch-button", "click", fetchConfiguration);
  on("omni-form", "submit", saveConfiguration);
  on("settings-form", "submit", saveSettings);
  on("states-form", "submit", saveStates);
})();
