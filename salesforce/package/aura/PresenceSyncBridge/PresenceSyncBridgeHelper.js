({
    // One bridge per component instance, kept out of Aura attributes (they would proxy it).
    bridges: {},

    tokenKey: function (component) {
        return "presencesync.token." + component.get("v.userId");
    },

    toolkit: function (component) {
        // The bridge core calls these with the real toolkit's names; each returns a promise.
        var omni = component.find("omniToolkit");
        return {
            login: function (params) { return omni.login(params); },
            logout: function () { return omni.logout(); },
            setServicePresenceStatus: function (params) { return omni.setServicePresenceStatus(params); },
            getServicePresenceStatusId: function () { return omni.getServicePresenceStatusId(); },
            getAgentWorks: function () { return omni.getAgentWorks(); }
        };
    },

    start: function (component) {
        var server = component.get("v.serverUrl");
        if (!server) {
            component.set("v.statusText", "presencesync: set the server URL in the utility item's properties");
            return;
        }
        var token = window.localStorage.getItem(this.tokenKey(component));
        if (!token) {
            component.set("v.needsToken", true);
            component.set("v.statusText", "presencesync: enter your access token");
            return;
        }
        component.set("v.needsToken", false);
        this.stop(component);
        var bridge = window.PresenceSyncBridge.create({
            server: server,
            token: token,
            salesforceUserId: component.get("v.userId"),
            toolkit: this.toolkit(component),
            // Socket callbacks run outside Aura's lifecycle: re-enter it to update the view.
            onChange: $A.getCallback(function (state) {
                if (!component.isValid()) return;
                var text = state.refused
                    ? "presencesync: stopped (" + state.refused.code + ")"
                    : state.ready ? "presencesync: connected" : "presencesync: connecting…";
                if (state.degraded && !state.refused) {
                    text += " (" + ({
                        connection_error: "Omni-Channel connection error",
                        toolkit_unresponsive: "Omni-Channel not answering",
                        displaced: "Omni-Channel is open in another window"
                    }[state.degraded] || state.degraded) + ")";
                }
                component.set("v.statusText", text);
                if (state.refused && (state.refused.code === 4401 || state.refused.code === 4403)) {
                    component.set("v.needsToken", true);
                }
            })
        });
        this.bridges[component.getGlobalId()] = bridge;
        bridge.start();
    },

    forward: function (component, event) {
        // Events before the bridge exists are not lost: its hello reads the toolkit's state.
        var bridge = this.bridges[component.getGlobalId()];
        if (bridge) {
            bridge.handleEvent(event.getName(), event.getParams());
        }
    },

    saveToken: function (component) {
        var token = (component.get("v.tokenInput") || "").trim();
        if (!token) return;
        window.localStorage.setItem(this.tokenKey(component), token);
        component.set("v.tokenInput", "");
        this.start(component);
    },

    forgetToken: function (component) {
        window.localStorage.removeItem(this.tokenKey(component));
        this.stop(component);
        this.start(component);
    },

    stop: function (component) {
        var id = component.getGlobalId();
        if (this.bridges[id]) {
            this.bridges[id].stop();
            delete this.bridges[id];
        }
    }
});
