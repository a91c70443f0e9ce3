"""Model prices as data: the bundled ``prices.json``, optionally overridden by a user file.

Cost is computed from the usage the endpoint reports. A model that is not in the table
costs nothing, and `PriceTable.cost` says so once per model (so budgets in USD are known
to be blind for it).
"""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

from longshot.errors import ConfigError


class PriceTable:
    """USD per million input and output tokens, by model name (exact, then longest prefix)."""

    def __init__(self, override: Path | None = None) -> None:
        self.prices: dict[str, tuple[float, float]] = _load(files("longshot.llm").joinpath("prices.json").read_text())
        if override is not None:
            try:
                self.prices.update(_load(override.read_text()))
            except (OSError, ValueError) as e:
                raise ConfigError(f"LLM_PRICES_FILE: cannot use {override}: {e}. Fix: give a JSON object "
                                  'like {"my-model": [0.5, 1.5]} (USD per million input, output tokens).') from e
        self._unknown_reported: set[str] = set()

    def lookup(self, model: str) -> tuple[float, float] | None:
        if model in self.prices:
            return self.prices[model]
        matches = [name for name in self.prices if model.startswith(name)]
        return self.prices[max(matches, key=len)] if matches else None

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> tuple[float, bool]:
        """(USD, first_time_unknown): the second is True once for a model with no price."""
        price = self.lookup(model)
        if price is None:
            first = model not in self._unknown_reported
            self._unknown_reported.add(model)
            return 0.0, first
        return (prompt_tokens * price[0] + completion_tokens * price[1]) / 1_000_000, False


def _load(text: str) -> dict[str, tuple[float, float]]:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the prices file must be a JSON object")
    table: dict[str, tuple[float, float]] = {}
    for name, value in data.items():
        if name.startswith("_"):
            continue
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) and v >= 0 for v in value)):
            raise ValueError(f"{name}: expected [input, output] USD per million tokens, got {value!r}")
        table[name] = (float(value[0]), float(value[1]))
    return table
