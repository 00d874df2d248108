// Preflight check on the admin page: run POST /api/v1/omni/doctor and list every check, its
// verdict and what to do; the summary goes to role="status", the problems to role="alert".
"use strict";

(function () {
  const api = window.presencesync;
  const WORDS = { ok: "OK", warning: "Warning", problem: "Problem", skipped: "Skipped" };

  function item(check) {
    const li = document.createElement("li");
    li.dataset.check = check.id;
    li.dataset.status = check.status;
    const badge = document.createElement("span");
    badge.className = "verdict";
    badge.textContent = WORDS[check.status] || check.status;
    const title = document.createElement("strong");
    title.textContent = " " + check.title + ": ";
    li.append(badge, title, document.createTextNode(check.message));
    if (check.fix && (check.status === "problem" || check.status === "warning")) {
      const fix = document.createElement("p");
      fix.className = "fix";
      fix.textContent = check.fix;
      li.appendChild(fix);
    }
    return li;
  }

  async function run(event) {
    const button = event.currentTarget;
    const list = document.getElementById("preflight-results");
    button.disabled = true;
    api.showProblems("preflight-problems", "", []);
    list.textContent = "";
    list.hidden = true;
    api.setText("preflight-status", "Checking the org and this server…");
    const result = await api.call("POST", "/omni/doctor", {});
    button.disabled = false;
    if (!result.ok) {
      api.setText("preflight-status", "");
      api.showProblems("preflight-problems", "The preflight check could not run:", [
        { text: result.error.message + " (" + result.error.code + ")" },
      ]);
      return;
    }
    const report = result.data;
    for (const check of report.checks) list.appendChild(item(check));
    list.hidden = false;
    api.setText(
      "preflight-status",
      "Preflight check: " + report.summary + (report.ok ? ". Ready." : ".")
    );
    const problems = report.checks.filter(function (c) { return c.status === "problem"; });
    api.showProblems(
      "preflight-problems",
      "Fix these before agents rely on presencesync:",
      problems.map(function (c) { return { text: c.title + ": " + c.message + "." + (c.fix ? " " + c.fix : "") }; })
    );
  }

  const button = document.getElementById("preflight-button");
  if (button) button.addEventListener("click", run);
})();
