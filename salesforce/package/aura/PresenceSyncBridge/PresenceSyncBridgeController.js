({
    onScriptsLoaded: function (component, event, helper) {
        helper.start(component);
    },

    onOmniEvent: function (component, event, helper) {
        helper.forward(component, event);
    },

    onSaveToken: function (component, event, helper) {
        helper.saveToken(component);
    },

    onForgetToken: function (component, event, helper) {
        helper.forgetToken(component);
    },

    onDestroy: function (component, event, helper) {
        helper.stop(component);
    }
});
