"""The emulated org's Pub/Sub API: Change Data Capture for UserServicePresence and AgentWork,
an event bus with replay, and the `eventbus.v1.PubSub` gRPC service (see the emulator README).

Modules: `schemas` (Avro schemas and ids), `capture` (record changes -> change events, topics),
`bus` (durable event bus, retention, waiters, test faults), `service` (gRPC servicer),
`server` (start/stop on a port), `control` (HTTP control routes), `proto` (generated stubs).
"""
