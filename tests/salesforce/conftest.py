"""Fixtures of the connector tests."""

from __future__ import annotations

import pytest

from .sf_testkit import KeyPair, generate_key_pair


@pytest.fixture(scope="session")
def key_pair() -> KeyPair:
    return generate_key_pair()
