/*
 * presencesync bridge: runs inside the agent's Salesforce console.
 *
 * It forwards the Omni-Channel toolkit's events to the presencesync server over a WebSocket and
 * runs the server's commands (set status, log in, log out) through the toolkit. Protocol:
 * docs/bridge-protocol.md. No build step, no dependencies.
 *
 * Two ways to use it:
 * 1. As a page script next to a toolkit that is exposed as `window.omniToolkitAPI` with its
 *    events on `window.omniEvents.on(name, handler)` (the emulator's console page does this).
 *    It starts by itself; configuration comes from `window.presencesyncBridgeConfig`, the
 *    script tag's data attributes (`data-server`, `data-token`) or the page URL's query
 *    (`server`, `token`); the server defaults to the origin the script was loaded from.
 * 2. From the Lightning (Aura) wrapper in salesforce/package/: it calls
 *    `PresenceSyncBridge.create({server, token, salesforceUserId, toolkit})`, feeds every
 *    lightning:omniChannel* event to `bridge.handleEvent(name, params)` and calls `start()`.
 */
(function (root) {
  "use strict";

  var PREFIX = "lightning:omniChannel";
  var FORWARDED = ["LoginSuccess", "StatusChanged", "Logout", "WorkAssigned", "WorkAccepted",
    "WorkDeclined", "WorkClosed"];
  var TOOLKIT_REASONS = ["OmniToolkitStatusChange", "OmniLoginStatusChange"];
  // lightning:omniChannelLogout reasons that mean another console of this user took Omni over.
  var DUPLICATE_LOGIN = ["DuplicateLogin", "DuplicateLoginInSameBrowser"];
  // A bridge-made event: work seen here that getAgentWorks no longer lists, and no toolkit
  // event said why (push time-out, cancel, transfer: Salesforce documents none for those).
  var WORK_GONE = "presencesync:workGone";
  var FATAL_CODES = [4401, 4403, 4404, 4409];
  var MAX_UNACKED = 1000;
  var MAX_REMEMBERED = 256;
  // Browsers answer the server's pings but never ping themselves: without our own heartbeat a
  // server that vanished without closing would go unnoticed for minutes.
  var HEARTBEAT_MS = 20000;
  var HEARTBEAT_TIMEOUT_MS = 10000;

  function sameId(a, b) {
    return typeof a === "string" && typeof b === "string" && a.length > 0 &&
      a.slice(0, 15) === b.slice(0, 15);
  }

  function randomId() {
    if (root.crypto && root.crypto.randomUUID) return root.crypto.randomUUID();
    return String(Date.now()) + "-" + Math.random().toString(16).slice(2);
  }

  function bridgeUrl(server) {
    var url = String(server).replace(/\/+$/, "");
    url = url.replace(/^http(s?):/, "ws$1:");
    return /\/api\/v1\/bridge$/.test(url) ? url : url + "/api/v1/bridge";
  }

  /* getAgentWorks resolves to {works: "<JSON list>"} in Lightning; accept a list as well. */
  function parseWorks(result) {
    var works = result && result.works !== undefined ? result.works : result;
    if (typeof works === "string") {
      try { works = JSON.parse(works); } catch (err) { works = []; }
    }
    if (!Array.isArray(works)) return [];
    return works.filter(function (w) { return w && typeof w.workId === "string"; })
      .map(function (w) {
        return {
          work_id: w.workId,
          work_item_id: w.workItemId || null,
          accepted: !!(w.isEngaged || w.isAccepted || w.status === "Opened"),
        };
      });
  }

  /* A toolkit call that neither resolves nor rejects within `ms` rejects with TIMEOUT. */
  function bounded(promise, ms) {
    return new Promise(function (resolve, reject) {
      var timer = setTimeout(function () {
        var err = new Error("the Omni-Channel toolkit did not answer");
        err.errorCode = "TIMEOUT";
        reject(err);
      }, ms);
      Promise.resolve(promise).then(
        function (value) { clearTimeout(timer); resolve(value); },
        function (err) { clearTimeout(timer); reject(err); }
      );
    });
  }

  function Bridge(options) {
    this.server = bridgeUrl(options.server);
    this.toolkitTimeoutMs = options.toolkitTimeoutMs || 5000;
    this.probeIntervalMs = options.probeIntervalMs || 5000;
    this.workCheckDelayMs = options.workCheckDelayMs || 300;
    // Why this console cannot drive Omni now (null: it can): "connection_error",
    // "toolkit_unresponsive", "displaced".
    this.degraded = null;
    this.work = new Map(); // open work seen: work id -> accepted
    this.probeTimer = null;
    this.workTimer = null;
    this.token = options.token;
    this.salesforceUserId = options.salesforceUserId || null;
    this.toolkit = options.toolkit;
    this.onChange = options.onChange || function () {};
    this.session = options.session || randomId();
    this.seq = 0;
    this.unacked = new Map(); // seq -> event message, until the server acknowledges it
    this.executed = new Map(); // command_id -> {ok, error}: commands are idempotent
    this.queued = new Set();
    this.commandChain = Promise.resolve();
    this.expect = null; // the echo we expect from the command being run
    this.statusIds = new Map(); // developer name -> id
    this.statusNames = new Map(); // id (15 chars) -> developer name
    this.online = false;
    this.socket = null;
    this.ready = false;
    this.stopped = false;
    this.refused = null;
    this.backoff = 250;
    this.timer = null;
    this.heartbeat = null;
    this.lastHeard = 0;
    this.stats = { connects: 0, eventsSent: 0, eventsAcked: 0, commands: 0, failures: 0 };
    (options.statuses || []).forEach(this.learnStatus, this);
  }

  Bridge.prototype.state = function () {
    return {
      session: this.session,
      ready: this.ready,
      refused: this.refused,
      unacked: this.unacked.size,
      online: this.online,
      degraded: this.degraded,
      stats: Object.assign({}, this.stats),
    };
  };

  Bridge.prototype.changed = function () {
    try { this.onChange(this.state()); } catch (err) { console.error(err); }
  };

  Bridge.prototype.learnStatus = function (info) {
    if (!info) return;
    var id = info.statusId || info.id;
    var name = info.statusApiName || info.developer_name;
    if (typeof id === "string" && typeof name === "string") {
      this.statusIds.set(name, id);
      this.statusNames.set(id.slice(0, 15), name);
    }
  };

  /* --- toolkit events --------------------------------------------------------------- */

  Bridge.prototype.handleEvent = function (name, params) {
    var short = String(name).replace(/^lightning:/, "").replace(/^omniChannel/, "");
    params = Object.assign({}, params || {});
    if (short === "ConnectionError") {
      this.setDegraded("connection_error");
      return;
    }
    if (short === "WorkloadChanged") {
      if (Number(params.newWorkload) < Number(params.previousWorkload)) this.checkWorkSoon();
      return;
    }
    if (FORWARDED.indexOf(short) < 0) return;
    this.trackWork(short, params);
    if (short === "StatusChanged") {
      this.learnStatus(params);
      this.online = true;
    } else if (short === "LoginSuccess") {
      this.online = true;
      var known = this.statusNames.get(String(params.statusId || "").slice(0, 15));
      if (known && !params.statusApiName) params.statusApiName = known; // the real event has only the id
    } else if (short === "Logout") {
      this.online = false;
    }
    if (short === "StatusChanged" && params.reason === "OmniPushTimeout") this.checkWorkSoon();
    this.forward(PREFIX + short, params, this.tag(short, params));
    if (short === "Logout" && DUPLICATE_LOGIN.indexOf(params.reason) >= 0) {
      // Another console of this user took Omni over and is in charge now: running our
      // commands here would take Omni back and log that one out in turn.
      this.setDegraded("displaced");
    }
    this.changed();
  };

  Bridge.prototype.forward = function (name, params, commandId) {
    this.seq += 1;
    var message = { type: "event", seq: this.seq, name: name, params: params };
    if (commandId) message.command_id = commandId;
    this.unacked.set(this.seq, message);
    if (this.unacked.size > MAX_UNACKED) {
      this.unacked.delete(this.unacked.keys().next().value); // the next hello covers it
    }
    if (this.ready) this.send(message);
  };

  /* --- work that goes away without an event --------------------------------------------- */

  Bridge.prototype.trackWork = function (short, params) {
    var self = this;
    var id = params.workId;
    if (short === "Logout") {
      self.work.forEach(function (accepted, workId) { if (!accepted) self.work.delete(workId); });
    } else if (typeof id !== "string") {
      return;
    } else if (short === "WorkAssigned") {
      if (!self.work.has(id)) self.work.set(id, false);
    } else if (short === "WorkAccepted") {
      self.work.set(id, true);
    } else if (short === "WorkDeclined" || short === "WorkClosed") {
      self.work.delete(id);
    }
  };

  Bridge.prototype.checkWorkSoon = function () {
    var self = this;
    if (!self.work.size || self.workTimer) return;
    // Let a WorkClosed or WorkDeclined that explains the change arrive first.
    self.workTimer = setTimeout(function () {
      self.workTimer = null;
      bounded(self.toolkit.getAgentWorks(), self.toolkitTimeoutMs).then(parseWorks).then(
        function (listed) {
          var present = new Set(listed.map(function (w) { return w.work_id; }));
          self.work.forEach(function (accepted, workId) {
            if (present.has(workId)) return;
            self.work.delete(workId);
            self.forward(WORK_GONE, { workId: workId, accepted: accepted }, null);
          });
          self.changed();
        },
        function () {} // the next hello reconciles
      );
    }, self.workCheckDelayMs);
  };

  /* --- a console that cannot drive Omni for now ------------------------------------------ */

  Bridge.prototype.setDegraded = function (reason) {
    if (this.degraded === reason) return;
    this.degraded = reason;
    if (this.ready) this.send({ type: "degraded", reason: reason });
    if (reason !== "displaced") this.probe();
    this.changed();
  };

  /* While degraded, ask the toolkit now and then; once it answers, a fresh hello reconciles. */
  Bridge.prototype.probe = function () {
    var self = this;
    if (self.probeTimer || self.stopped) return;
    self.probeTimer = setTimeout(function () {
      self.probeTimer = null;
      if (self.degraded !== "connection_error" && self.degraded !== "toolkit_unresponsive") return;
      bounded(self.toolkit.getServicePresenceStatusId(), self.toolkitTimeoutMs).then(
        function () { self.recovered(); },
        function (err) {
          var code = err && err.errorCode;
          if (code === "TIMEOUT" || code === "DISCONNECTED" || code === "CONNECTION_ERROR") {
            self.probe(); // still cut off
          } else {
            self.recovered(); // it answers ("offline" is an answer)
          }
        }
      );
    }, self.probeIntervalMs);
  };

  Bridge.prototype.recovered = function () {
    this.degraded = null;
    this.resync();
  };

  /* Rule 7: an event is the echo of our command when the toolkit says a toolkit call (or the
   * login it made) caused it AND it lands where the command was going. Never a timing guess. */
  Bridge.prototype.tag = function (short, params) {
    var expect = this.expect;
    if (!expect || ["LoginSuccess", "StatusChanged", "Logout"].indexOf(short) < 0) return null;
    var setsStatus = expect.kind === "set_presence" || expect.kind === "omni_login";
    if (short === "LoginSuccess" && setsStatus && sameId(params.statusId, expect.statusId)) {
      return expect.commandId; // a login: the StatusChanged that follows is ours too
    }
    if (short === "StatusChanged" && setsStatus &&
        TOOLKIT_REASONS.indexOf(params.reason) >= 0 && sameId(params.statusId, expect.statusId)) {
      this.expect = null;
      return expect.commandId;
    }
    if (short === "Logout" && expect.kind === "omni_logout" && !params.reason) {
      this.expect = null;
      return expect.commandId;
    }
    this.expect = null; // somebody else changed presence: our echo is not coming
    return null;
  };

  /* --- the server connection --------------------------------------------------------- */

  Bridge.prototype.start = function () {
    this.stopped = false;
    if (!this.socket) this.connect();
    return this;
  };

  Bridge.prototype.stop = function () {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.probeTimer);
    clearTimeout(this.workTimer);
    clearInterval(this.heartbeat);
    if (this.socket) this.socket.close(1000, "console closed");
  };

  /* Re-read the toolkit and say hello again (e.g. the console's own connection came back). */
  Bridge.prototype.resync = function () {
    if (this.degraded === "displaced") return; // the other console is in charge
    if (this.socket) this.socket.close(1000, "resync");
    else if (!this.stopped) this.connect();
  };

  Bridge.prototype.send = function (message) {
    if (this.socket && this.socket.readyState === 1) {
      this.socket.send(JSON.stringify(message));
      if (message.type === "event") this.stats.eventsSent += 1;
    }
  };

  /* What the hello says, from bounded toolkit calls: getServicePresenceStatusId rejecting means
   * offline; getAgentWorks rejecting, or a call that never answers, means unknown (open_work
   * null, presence_unknown): the hello goes out with what is known, never waits for ever. */
  Bridge.prototype.readToolkit = function () {
    var self = this;
    var read = { presence_status: null, status_id: null, open_work: null, unresponsive: false };
    function unreachable(err) { return err && err.errorCode === "DISCONNECTED"; }
    var status = Promise.resolve().then(function () {
      return bounded(self.toolkit.getServicePresenceStatusId(), self.toolkitTimeoutMs);
    }).then(function (result) {
      self.learnStatus(result);
      if (result) {
        read.presence_status = result.statusApiName || null;
        read.status_id = result.statusId || null;
      }
    }, function (err) {
      if (unreachable(err)) throw err; // the console itself is cut off: not "offline"
      if (err && err.errorCode === "TIMEOUT") {
        read.unresponsive = true;
        read.presence_unknown = true;
      } // otherwise the promise rejected because the agent is offline
    });
    var works = Promise.resolve().then(function () {
      return bounded(self.toolkit.getAgentWorks(), self.toolkitTimeoutMs);
    }).then(function (result) { read.open_work = parseWorks(result); }, function (err) {
      if (unreachable(err)) throw err;
      if (err && err.errorCode === "TIMEOUT") read.unresponsive = true;
      // rejected: unknown, not "no work" (open_work stays null)
    });
    return Promise.all([status, works]).then(function () { return read; });
  };

  Bridge.prototype.connect = function () {
    var self = this;
    var snapshotSeq = self.seq; // everything seen so far is in what we are about to read
    var socket = new WebSocket(self.server);
    self.socket = socket;
    self.ready = false;
    var reading = self.readToolkit();
    reading.catch(function () {}); // handled below, once the socket is open
    socket.onopen = function () {
      reading.catch(function (err) {
        // No truthful hello without the toolkit: try again later.
        console.warn("presencesync bridge: cannot read the toolkit", err);
        if (self.socket === socket) socket.close(1000, "toolkit unavailable");
      });
      reading.then(function (read) {
        if (self.socket !== socket) return;
        if (!read.presence_unknown) self.online = !!read.presence_status;
        if (read.open_work) {
          self.work = new Map(read.open_work.map(function (w) { return [w.work_id, w.accepted]; }));
        }
        self.unresponsive = read.unresponsive;
        var hello = {
          type: "hello",
          token: self.token,
          session: self.session,
          seq: snapshotSeq,
          salesforce_user_id: self.salesforceUserId,
          presence_status: read.presence_status,
          status_id: read.status_id,
          open_work: read.open_work,
          client: "presencesync-bridge.js/1",
        };
        if (read.presence_unknown) hello.presence_unknown = true;
        self.send(hello);
      });
    };
    socket.onmessage = function (message) {
      var msg;
      try { msg = JSON.parse(message.data); } catch (err) { return; }
      self.lastHeard = Date.now();
      if (msg.type === "welcome") {
        (msg.presence_statuses || []).forEach(self.learnStatus, self);
        self.ready = true;
        self.backoff = 250;
        self.stats.connects += 1;
        self.unacked.forEach(function (event) { self.send(event); }); // replay, in order
        self.startHeartbeat(socket);
        if (self.unresponsive) {
          self.degraded = null;
          self.setDegraded("toolkit_unresponsive");
        } else if (self.degraded === "displaced") {
          self.send({ type: "degraded", reason: self.degraded });
        } else {
          self.degraded = null; // this hello read the toolkit: whatever was wrong is over
        }
        self.changed();
      } else if (msg.type === "event_ack") {
        if (self.unacked.delete(msg.seq)) self.stats.eventsAcked += 1;
        self.changed();
      } else if (msg.type === "command") {
        self.receiveCommand(msg);
      } else if (msg.type === "error") {
        console.warn("presencesync bridge:", msg.code, msg.message);
      }
    };
    socket.onclose = function (event) { self.lost(socket, event.code, event.reason); };
  };

  /* The connection is gone (closed, or silent too long): reconnect unless told not to. */
  Bridge.prototype.lost = function (socket, code, reason) {
    var self = this;
    if (self.socket !== socket) return;
    clearInterval(self.heartbeat);
    self.socket = null;
    self.ready = false;
    if (FATAL_CODES.indexOf(code) >= 0) {
      self.refused = { code: code, reason: reason };
      self.stopped = true; // a bad token or another console: retrying cannot help
    }
    self.changed();
    if (self.stopped) return;
    var delay = self.backoff * (0.75 + Math.random() * 0.5);
    self.backoff = Math.min(self.backoff * 2, 10000);
    self.timer = setTimeout(function () { self.connect(); }, delay);
  };

  Bridge.prototype.startHeartbeat = function (socket) {
    var self = this;
    clearInterval(self.heartbeat);
    self.heartbeat = setInterval(function () {
      if (self.socket !== socket) return;
      if (Date.now() - self.lastHeard > HEARTBEAT_MS + HEARTBEAT_TIMEOUT_MS) {
        // A dead peer may never complete the close handshake: do not wait for onclose.
        self.lost(socket, 4000, "no answer from the server");
        socket.close(4000, "no answer from the server");
        return;
      }
      self.send({ type: "ping" });
    }, HEARTBEAT_MS);
  };

  /* --- commands ------------------------------------------------------------------------ */

  Bridge.prototype.receiveCommand = function (msg) {
    var self = this;
    var id = msg.command_id;
    if (typeof id !== "string") return;
    if (self.executed.has(id)) {
      var done = self.executed.get(id);
      self.ack(id, done.ok, done.error);
      return;
    }
    if (self.queued.has(id)) return;
    self.queued.add(id);
    // One at a time, so that the toolkit's events can be matched to the command.
    self.commandChain = self.commandChain.then(function () {
      return self.execute(msg).then(function (result) {
        self.queued.delete(id);
        self.executed.set(id, result);
        if (self.executed.size > MAX_REMEMBERED) {
          self.executed.delete(self.executed.keys().next().value);
        }
        self.stats.commands += 1;
        if (!result.ok) self.stats.failures += 1;
        self.ack(id, result.ok, result.error);
        self.changed();
      });
    });
  };

  Bridge.prototype.ack = function (commandId, ok, error) {
    var message = { type: "ack", command_id: commandId, ok: ok };
    if (error) message.error = error;
    this.send(message);
  };

  Bridge.prototype.execute = function (msg) {
    var self = this;
    var kind = msg.kind;
    var statusId = msg.status_id || self.statusIds.get(msg.presence_status);
    var call;
    if (self.degraded === "displaced") {
      return Promise.resolve({
        ok: false, error: "DISPLACED: another console of this user took Omni-Channel over",
      });
    }
    if (kind === "omni_logout") {
      if (!self.online) return Promise.resolve({ ok: true }); // already offline
      self.expect = { commandId: msg.command_id, kind: kind, statusId: null };
      call = function () { return self.toolkit.logout(); };
    } else if (kind === "set_presence" || kind === "omni_login") {
      if (!statusId) {
        return Promise.resolve({ ok: false, error: "UNKNOWN_STATUS: " + msg.presence_status });
      }
      self.expect = { commandId: msg.command_id, kind: kind, statusId: statusId };
      call = function () {
        return kind === "omni_login"
          ? self.toolkit.login({ statusId: statusId })
          : self.toolkit.setServicePresenceStatus({ statusId: statusId });
      };
    } else {
      return Promise.resolve({ ok: false, error: "UNKNOWN_COMMAND: " + kind });
    }
    return Promise.resolve().then(function () {
      return bounded(call(), self.toolkitTimeoutMs);
    }).then(
      function () { return { ok: true }; },
      function (err) {
        self.expect = null;
        var code = (err && err.errorCode) || "TOOLKIT_ERROR";
        return { ok: false, error: code + ": " + ((err && err.message) || String(err)) };
      }
    );
  };

  var api = {
    create: function (options) { return new Bridge(options); },
    parseWorks: parseWorks,
    bridgeUrl: bridgeUrl,
    bounded: bounded,
  };
  root.PresenceSyncBridge = api;

  /* --- self-start next to a page-level toolkit (the emulator's console) ----------------- */

  var script = root.document && root.document.currentScript;

  function setting(name) {
    var config = root.presencesyncBridgeConfig || {};
    if (config[name]) return config[name];
    if (script && script.dataset && script.dataset[name]) return script.dataset[name];
    try {
      return new URL(root.location.href).searchParams.get(name);
    } catch (err) {
      return null;
    }
  }

  function showStatus(state) {
    var doc = root.document;
    var text = state.refused
      ? "presencesync: stopped (" + state.refused.code + " " + (state.refused.reason || "") + ")"
      : state.ready ? "presencesync: connected" : "presencesync: connecting…";
    if (state.degraded && !state.refused) text += " (degraded: " + state.degraded + ")";
    doc.body.dataset.presencesyncBridge = state.refused ? "refused" : state.ready ? "connected" : "connecting";
    doc.body.dataset.presencesyncDegraded = state.degraded || "";
    var line = doc.getElementById("presencesync-bridge-status");
    if (!line) {
      line = doc.createElement("p");
      line.id = "presencesync-bridge-status";
      line.setAttribute("role", "status");
      var widget = doc.querySelector(".omni-widget") || doc.body;
      widget.appendChild(line);
    }
    line.textContent = text;
  }

  function autoStart() {
    if (!root.omniToolkitAPI || !root.omniEvents || root.presencesyncBridge) return;
    var token = setting("token");
    if (!token) {
      console.warn("presencesync bridge: no token (add ?token=... to the console URL)");
      return;
    }
    var server = setting("server") || (script && script.src ? new URL(script.src).origin : null);
    if (!server) return;
    var console_ = root.omniConsole && root.omniConsole.config ? root.omniConsole.config : {};
    var bridge = api.create({
      server: server,
      token: token,
      salesforceUserId: setting("salesforceUserId") || console_.userId || null,
      toolkit: root.omniToolkitAPI,
      statuses: console_.statuses || [],
      onChange: showStatus,
    });
    root.presencesyncBridge = bridge;
    root.omniEvents.on("*", function (event) {
      bridge.handleEvent(event.getName(), event.getParams());
    });
    // The console's own link to Salesforce went away and came back: events may have been
    // missed, so say hello again (rule 12 reconciles).
    root.document.addEventListener("omni:hello", function () { bridge.resync(); });
    showStatus(bridge.state());
    bridge.start();
  }

  if (root.document) autoStart();
})(typeof window !== "undefined" ? window : this);
