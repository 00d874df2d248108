"""`presencesync doctor`: a preflight of an account's Salesforce org and of this server.

``checks.py`` judges facts without I/O (``evaluate`` -> ``Report``); ``probe.py`` gathers them
(the org through the connector, the server over HTTP and the bridge WebSocket) and runs the
whole preflight (``run_doctor``, ``inputs_from_store``); ``presencesync.commands.doctor_cli``
is the CLI. The API (``POST /api/v1/omni/doctor``) and the admin page's "Preflight check" run
the same checks.

Nothing is imported here, so that building the CLI's parser stays cheap.
"""
