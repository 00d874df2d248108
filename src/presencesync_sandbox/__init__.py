"""presencesync's sandbox: the product and the Salesforce org emulator run together, without a
real org or a browser.

- `demo`: `presencesync demo` (server + emulator + seed data + one headless console per agent);
  `start_stack()` is what the bridge, browser and end-to-end tests and the benchmarks start.
- `headless_console`: the agent's Salesforce console tab with our bridge in it, in Python
  (`HeadlessConsole`), built on the emulator's console-WebSocket client.
- `cli`: the `demo` command, contributed to `presencesync`'s command line (entry point group
  `presencesync.commands`).

It depends on both `presencesync` and `presencesync_emulator`; neither depends on it.
"""
