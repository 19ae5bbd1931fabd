"""Reading a guardrail's `settings` mapping with messages an operator can act on: every problem is
collected, so `gateway_apply` and the admin report them all at once."""
from __future__ import annotations

from typing import Any

from guardrails.kinds.base import SettingsError

_MISSING = object()


class Reader:
    def __init__(self, settings: Any, known: set[str]) -> None:
        self.problems: list[str] = []
        if not isinstance(settings, dict):
            self.problems.append("must be a mapping")
            settings = {}
        self.settings = settings
        self.problems += [f"{key}: unknown setting" for key in sorted(set(map(str, settings)) - known)]

    def _get(self, key: str, default: Any, required: bool) -> Any:
        value = self.settings.get(key, _MISSING)
        if value is _MISSING or value is None:
            if required:
                self.problems.append(f"{key}: required")
            return _MISSING
        return value

    def string(self, key: str, default: str, *, required: bool = False) -> str:
        value = self._get(key, default, required)
        if value is _MISSING:
            return default
        if not isinstance(value, str):
            self.problems.append(f"{key}: must be a string")
            return default
        return value

    def boolean(self, key: str, default: bool) -> bool:
        value = self._get(key, default, False)
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problems.append(f"{key}: must be true or false")
            return default
        return value

    def number(self, key: str, default: float | None, *, minimum: float, maximum: float,
               integer: bool = False) -> float | None:
        value = self._get(key, default, False)
        if value is _MISSING:
            return default
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds):
            self.problems.append(f"{key}: must be {'an integer' if integer else 'a number'}")
            return default
        if not minimum <= value <= maximum:
            self.problems.append(f"{key}: must be between {minimum:g} and {maximum:g}")
            return default
        return value

    def integer(self, key: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        value = self.number(key, default, minimum=minimum, maximum=maximum, integer=True)
        return None if value is None else int(value)

    def string_list(self, key: str, *, required: bool = False, choices: frozenset[str] | None = None) -> list[str]:
        value = self._get(key, None, required)
        if value is _MISSING:
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problems.append(f"{key}: must be a list of strings")
            return []
        if required and not value:
            self.problems.append(f"{key}: must not be empty")
        if choices is not None:
            unknown = sorted(set(value) - choices)
            if unknown:
                self.problems.append(f"{key}: unknown value(s) {', '.join(unknown)}; "
                                     f"choose from {', '.join(sorted(choices))}")
                return [v for v in value if v in choices]
        return value

    def done(self) -> None:
        """Raise with every problem found so far; a kind calls it before its own cross-field checks."""
        if self.problems:
            raise SettingsError(self.problems)
