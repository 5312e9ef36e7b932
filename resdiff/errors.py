"""Errors meant for the user: the CLI prints them as one line and exits with code 2."""


class UserError(Exception):
    """Bad input or an environment problem the user can fix (missing data, no space)."""


class AllDiverged(UserError):
    """Every draw of a simulation diverged, so no statistic can be computed."""
