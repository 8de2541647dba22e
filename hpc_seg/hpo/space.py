"""Search spaces as plain TOML-friendly dicts, and their Optuna distributions (study-agnostic).

A space has one key per field of the trained config that the search varies:

- a list is a categorical choice: ``encoder = ["resnet34", "resnet50", "vgg16_bn"]``;
- a table is a range: ``lr = {low = 1e-5, high = 1e-3, log = true}`` (float), or
  ``batch_size = {low = 8, high = 32, step = 8}`` (int, because both ends are integers).

:func:`to_distributions` turns it into Optuna distributions, which the searcher hands to
``study.ask`` (Optuna's define-and-run mode), so the stored study carries the real distributions and
``optuna-dashboard`` can plot them. A study's own default space and fixed grid live with the study
(the cardiac ones in :mod:`hpc_seg.cardiac.search_space`) and are named in ``[search]``.
"""

from __future__ import annotations

from typing import Any

from optuna.distributions import (BaseDistribution, CategoricalDistribution, FloatDistribution,
                                  IntDistribution)

from hpc_seg.errors import ConfigError

_SCALARS = (str, int, float, bool)


def to_distributions(space: dict[str, Any], where: str = "space") -> dict[str, BaseDistribution]:
    """Optuna distributions for ``space``; a bad entry raises :class:`ConfigError` naming its key."""
    if not space:
        raise ConfigError(f"{where}: the search space is empty")
    return {name: _distribution(spec, f"{where}.{name}") for name, spec in space.items()}


def _distribution(spec: Any, where: str) -> BaseDistribution:
    if isinstance(spec, list):
        if not spec:
            raise ConfigError(f"{where}: a choice list needs at least one value")
        bad = [v for v in spec if not isinstance(v, _SCALARS)]
        if bad:
            raise ConfigError(f"{where}: choices must be strings, numbers or booleans, but got {bad}")
        if len(set(map(repr, spec))) != len(spec):
            raise ConfigError(f"{where}: repeated choices in {spec}")
        return CategoricalDistribution(spec)
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"low", "high", "log", "step"})
        if unknown or "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: a range is {{low, high, log?, step?}}, but got {spec}")
        low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (low, high)):
            raise ConfigError(f"{where}: low and high must be numbers, but got {low!r}, {high!r}")
        if not isinstance(log, bool):
            raise ConfigError(f"{where}.log: expected true or false, but got {log!r}")
        if low > high or (log and low <= 0):
            raise ConfigError(f"{where}: need 0 < low <= high for a log range and low <= high "
                              f"otherwise, but got low={low}, high={high}, log={log}")
        if log and step is not None:
            raise ConfigError(f"{where}: step and log cannot be combined")
        if isinstance(low, int) and isinstance(high, int) and isinstance(step, (int, type(None))):
            return IntDistribution(low, high, log=log, step=step or 1)
        return FloatDistribution(float(low), float(high), log=log,
                                 step=None if step is None else float(step))
    raise ConfigError(f"{where}: expected a list of choices or a {{low, high}} table, "
                      f"but got {spec!r}")


def check_params_in_space(params: dict[str, Any], dists: dict[str, BaseDistribution],
                          where: str) -> None:
    """Raise :class:`ConfigError` unless ``params`` sets every space key to a value it allows."""
    unknown = sorted(set(params) - set(dists))
    if unknown:
        raise ConfigError(f"{where}: key(s) {unknown} are not in the search space {sorted(dists)}")
    missing = sorted(set(dists) - set(params))
    if missing:
        raise ConfigError(f"{where}: missing value(s) for {missing}")
    for name, value in params.items():
        dist = dists[name]
        if isinstance(dist, CategoricalDistribution):
            ok = value in dist.choices
        else:
            ok = isinstance(value, (int, float)) and dist.low <= value <= dist.high
        if not ok:
            raise ConfigError(f"{where}.{name}: {value!r} is outside the search space ({dist})")
