"""Errors of the simulated market."""

from __future__ import annotations


class SimError(Exception):
    """A bad world, schedule or query: the message is one line meant for the user."""
