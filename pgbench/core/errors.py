"""The one exception type for mistakes a user can make (bad config, unknown env, missing files)."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input. The CLI prints its message on one line and exits 2."""


def choice_error(what: str, value: object, accepted) -> UserError:
    """A UserError naming the bad value and listing the accepted ones."""
    listed = ", ".join(str(a) for a in accepted)
    return UserError(f"unknown {what} {value!r}; accepted: {listed}")
