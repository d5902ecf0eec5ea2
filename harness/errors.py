"""Errors every layer may raise (torch-free, imports nothing of the harness).

``UserError``: a mistake in what the user gave (a file, a flag, a cluster setting). The CLI prints
it without a traceback and exits with code 2; a library layer (dispatch, rehearsal) raises it
without importing the CLI.
"""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave: printed without a traceback, exit code 2."""
