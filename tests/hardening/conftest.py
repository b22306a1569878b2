"""Fixtures for the issue-12 attack tests."""

from gateway.support import live  # noqa: F401 - the fixture
