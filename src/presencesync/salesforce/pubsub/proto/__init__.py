"""Generated from proto/pubsub_api.proto (see tests/pubsub/stubs.py)."""
