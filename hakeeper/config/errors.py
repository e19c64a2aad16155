"""Config errors: each names the file, the line and what is wrong."""

from __future__ import annotations

from collections.abc import Sequence

from hakeeper.config.model import Origin, Warning_


class ConfigError(Exception):
    """One problem in a config file: `FILE:LINE: message`."""

    def __init__(self, origin: Origin, message: str) -> None:
        super().__init__(f"{origin}: {message}")
        self.origin = origin
        self.message = message


class ConfigErrors(Exception):
    """Every problem found in one read, so `hakeeper -t` can list them all at once."""

    def __init__(self, errors: list[ConfigError], warnings: Sequence[Warning_] = ()) -> None:
        super().__init__("\n".join(str(e) for e in errors))
        self.errors = errors
        self.warnings = tuple(warnings)  # so `-t` can show them beside the errors
