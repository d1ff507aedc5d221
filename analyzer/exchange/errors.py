"""Errors raised by the local exchange."""

from __future__ import annotations


class ExchangeError(Exception):
    """A bad argument or recording: the message is one line meant for the user, not a traceback."""
