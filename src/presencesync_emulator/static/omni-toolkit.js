/*
 * The emulated Omni-Channel toolkit of the Salesforce console.
 *
 * Exposes, with Lightning's `lightning:omniToolkitAPI` method names and promise results:
 *   window.omniToolkitAPI.login({statusId}), logout(), setServicePresenceStatus({statusId}),
 *   getServicePresenceStatusId(), getServicePresenceStatusChannels(), getAgentWorks(),
 *   acceptAgentWork({workId}), declineAgentWork({workId, declineReason}),
 *   closeAgentWork({workId}), getAgentWorkload()
 * and the console's Omni events (`lightning:omniChannelStatusChanged`, ...):
 *   window.omniEvents.on(name, handler) / off(name, handler); `name` may omit the
 *   "lightning:" prefix, "*" receives every event. A handler gets an Aura-like event object
 *   with getName(), getParam(name) and getParams().
 * Everything travels over the console WebSocket of the emulator; it reconnects by itself.
 * Once the first "hello" arrived, the page's bridge script (if configured) is loaded.
 */
(function () {
  "use strict";

  var config = window.OMNI_CONSOLE_CONFIG || {};
  var listeners = new Map();
  var pending = new Map();
  var socket = null;
  var nextId = 1;
  var backoff = 250;
  var helloCount = 0;
  var state = { connected: false, online: false, status: null, lastSeq: 0 };
  var resolveReady;
  var ready = new Promise(function (resolve) { resolveReady = resolve; });

  function fullName(name) {
    return name === "*" || name.indexOf("lightning:") === 0 ? name : "lightning:" + name;
  }

  function makeEvent(name, params) {
    var copy = Object.assign({}, params || {});
    return {
      getName: function () { return name; },
      getParam: function (key) { return copy[key]; },
      getParams: function () { return Object.assign({}, copy); },
    };
  }

  function emit(name, params) {
    [name, "*"].forEach(function (key) {
      var handlers = listeners.get(key);
      if (!handlers) return;
      Array.from(handlers).forEach(function (handler) {
        try {
          handler(makeEvent(name, params));
        } catch (err) {
          console.error("omni event handler failed", name, err);
        }
      });
    });
  }

  function track(name, params) {
    if (name === "lightning:omniChannelStatusChanged") {
      state.online = true;
      state.status = {
        statusId: params.statusId,
        statusName: params.statusName,
        statusApiName: params.statusApiName,
      };
    } else if (name === "lightning:omniChannelLogout") {
      state.online = false;
      state.status = null;
    }
  }

  function rejectPending(reason) {
    pending.forEach(function (entry) { entry.reject(reason); });
    pending.clear();
  }

  function toolkitError(error) {
    var err = new Error((error && error.message) || "toolkit call failed");
    err.errorCode = (error && error.errorCode) || "UNKNOWN";
    return err;
  }

  /* One id per browser (shared by its tabs through local storage): a second console of the
   * same user takes Omni over with DuplicateLogin, or DuplicateLoginInSameBrowser when both
   * are tabs of this browser. */
  function browserId() {
    var key = "omni-emulator-browser";
    try {
      var id = window.localStorage.getItem(key);
      if (!id) {
        id = String(Date.now()) + Math.random().toString(16).slice(2);
        window.localStorage.setItem(key, id);
      }
      return id;
    } catch (err) {
      return "no-storage";
    }
  }

  function socketUrl() {
    var query = "?widget=1&browser=" + encodeURIComponent(browserId());
    if (!config.consoleSocketPath) return config.consoleSocketUrl + query;
    var scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + window.location.host + config.consoleSocketPath + query;
  }

  function connect() {
    socket = new WebSocket(socketUrl());
    socket.onopen = function () {
      backoff = 250;
      state.connected = true;
    };
    socket.onmessage = function (message) {
      var msg;
      try { msg = JSON.parse(message.data); } catch (err) { return; }
      if (msg.type === "hello") {
        helloCount += 1;
        state.online = !!msg.online;
        state.status = msg.status;
        document.dispatchEvent(new CustomEvent("omni:hello", { detail: msg }));
        resolveReady(msg);
      } else if (msg.type === "event") {
        state.lastSeq = msg.seq;
        track(msg.name, msg.params || {});
        emit(msg.name, msg.params || {});
        document.dispatchEvent(new CustomEvent("omni:event", { detail: msg }));
      } else if (msg.type === "result" || msg.type === "error") {
        var entry = pending.get(msg.id);
        if (!entry) {
          if (msg.type === "error") console.warn("omni console error", msg.error);
          return;
        }
        pending.delete(msg.id);
        if (msg.type === "result") entry.resolve(msg.result);
        else entry.reject(toolkitError(msg.error));
      }
    };
    socket.onclose = function () {
      state.connected = false;
      rejectPending(toolkitError({ message: "console connection lost", errorCode: "DISCONNECTED" }));
      document.dispatchEvent(new CustomEvent("omni:disconnected"));
      setTimeout(connect, backoff);
      backoff = Math.min(backoff * 2, 5000);
    };
  }

  function call(method, params) {
    return ready.then(function () {
      return new Promise(function (resolve, reject) {
        if (!socket || socket.readyState !== WebSocket.OPEN) {
          reject(toolkitError({ message: "console is not connected", errorCode: "DISCONNECTED" }));
          return;
        }
        var id = "c" + nextId++;
        pending.set(id, { resolve: resolve, reject: reject });
        socket.send(JSON.stringify({ type: "call", id: id, method: method, params: params || {} }));
      });
    });
  }

  function method(name) {
    return function (params) { return call(name, params || {}); };
  }

  window.omniToolkitAPI = {
    login: method("login"),
    logout: method("logout"),
    setServicePresenceStatus: method("setServicePresenceStatus"),
    getServicePresenceStatusId: method("getServicePresenceStatusId"),
    getServicePresenceStatusChannels: method("getServicePresenceStatusChannels"),
    getAgentWorks: method("getAgentWorks"),
    getAgentWorkload: method("getAgentWorkload"),
    acceptAgentWork: method("acceptAgentWork"),
    declineAgentWork: method("declineAgentWork"),
    closeAgentWork: method("closeAgentWork"),
  };

  window.omniEvents = {
    on: function (name, handler) {
      var key = fullName(name);
      if (!listeners.has(key)) listeners.set(key, new Set());
      listeners.get(key).add(handler);
    },
    off: function (name, handler) {
      var handlers = listeners.get(fullName(name));
      if (handlers) handlers.delete(handler);
    },
  };

  window.omniConsole = {
    config: config,
    ready: ready,
    state: function () { return Object.assign({}, state, { hellos: helloCount }); },
  };

  function loadBridge() {
    if (!config.bridgeUrl) return;
    window.presencesyncBridgeConfig = {
      server: config.bridgeServer,
      salesforceUserId: config.userId,
      orgId: config.orgId,
    };
    var script = document.createElement("script");
    script.src = config.bridgeUrl;
    script.async = false;
    script.id = "presencesync-bridge";
    if (config.bridgeServer) script.dataset.server = config.bridgeServer;
    script.dataset.salesforceUserId = config.userId;
    script.onload = function () { document.dispatchEvent(new CustomEvent("omni:bridge-loaded")); };
    script.onerror = function () {
      console.error("could not load the bridge from", config.bridgeUrl);
      document.dispatchEvent(new CustomEvent("omni:bridge-failed"));
    };
    document.head.appendChild(script);
  }

  ready.then(loadBridge);
  connect();
})();
