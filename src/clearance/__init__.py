"""Clearance: prove, instead of promise, that privileged endpoint software carries no hidden access."""

__version__ = "0.1.0"
