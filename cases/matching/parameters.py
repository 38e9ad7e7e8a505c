"""The parameters of the matching model: for each part of a record and each level at which two records
agree on it, m (how often one child's two records agree so) and u (how often two different children's
records do), the prior chance of a match, and the operating thresholds.

They are estimated from the register itself (`cases.matching.estimate`, run by
`manage.py estimate_match_parameters`) and kept in `parameters.json` beside this module, so that
every process judges with the same figures and a change of them is a reviewed commit.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

PARAMETERS_FILE = Path(__file__).with_name("parameters.json")

# A probability never reaches 0 or 1 in the weights: one level never seen in the sample is
# unlikely, not impossible.
_FLOOR = 1e-6


@dataclass(frozen=True)
class ModelParameters:
    """m and u per part and level, the prior's log2 odds and the thresholds on the match weight."""

    m: dict[str, dict[str, float]]
    u: dict[str, dict[str, float]]
    prior_weight: float
    same_weight: float
    possible_weight: float
    # A part weighing less than this contradicts: two records so at odds keep their groups apart.
    contradiction_weight: float
    # The largest correction the names' frequencies may make, in bits either way.
    frequency_cap: float
    # A register smaller than this says nothing about how common a name is.
    frequency_min_records: int
    source: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def weights(self) -> dict[tuple[str, str], float]:
        return {(part, level): math.log2(max(probability, _FLOOR) / self.u_of(part, level))
                for part, levels in self.m.items() for level, probability in levels.items()}

    @cached_property
    def best_weights(self) -> dict[str, float]:
        """The most each part can add to a match weight: its strongest level's, or nothing (a part one
        record does not give, or a level the model has no weight for, adds 0)."""
        best: dict[str, float] = {}
        for (part, _level), weight in self.weights.items():
            best[part] = max(best.get(part, 0.0), weight)
        return best

    def weight(self, part: str, level: str) -> float:
        """log2(m/u) of a part's level: how much more often one child's records agree so."""
        return self.weights.get((part, level), 0.0)

    def u_of(self, part: str, level: str) -> float:
        return max(self.u.get(part, {}).get(level, _FLOOR), _FLOOR)

    def as_json(self) -> dict[str, Any]:
        return {"prior_weight": self.prior_weight, "same_weight": self.same_weight,
                "possible_weight": self.possible_weight, "contradiction_weight": self.contradiction_weight,
                "frequency_cap": self.frequency_cap,
                "frequency_min_records": self.frequency_min_records, "m": self.m, "u": self.u,
                "source": self.source}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelParameters:
        return cls(m=data["m"], u=data["u"], prior_weight=float(data["prior_weight"]),
                   same_weight=float(data["same_weight"]), possible_weight=float(data["possible_weight"]),
                   contradiction_weight=float(data["contradiction_weight"]),
                   frequency_cap=float(data["frequency_cap"]),
                   frequency_min_records=int(data["frequency_min_records"]), source=data.get("source", {}))


@cache
def _stored_parameters() -> ModelParameters:
    with PARAMETERS_FILE.open(encoding="utf-8") as parameters_file:
        return ModelParameters.from_json(json.load(parameters_file))


_in_force: list[ModelParameters] = []


def model_parameters() -> ModelParameters:
    """The parameters in force: those of `parameters.json` (read once per process), unless an
    evaluation has put others in force with `use_parameters`."""
    return _in_force[-1] if _in_force else _stored_parameters()


@contextmanager
def use_parameters(parameters: ModelParameters) -> Iterator[ModelParameters]:
    """Judge with other parameters inside the block: for measuring thresholds and estimates side by side."""
    _in_force.append(parameters)
    try:
        yield parameters
    finally:
        _in_force.pop()


def save_parameters(parameters: ModelParameters, path: Path = PARAMETERS_FILE) -> None:
    path.write_text(json.dumps(parameters.as_json(), indent=1, ensure_ascii=False, sort_keys=True) + "\n",
                    encoding="utf-8")
