"""Input validation shared by the statistics functions: bad input is a ValueError, never NaN."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
from statistics import NormalDist

# The standard library's quantile (Wichura AS241, ~1e-16 relative error): scipy's costs ~0.5 s of import.
_STANDARD_NORMAL = NormalDist()


class StatsInputError(ValueError):
    """Invalid input to a statistics function; the policy engine reports it as an ERROR outcome."""


def _fail(name: str, message: str) -> StatsInputError:
    return StatsInputError(f"{name}: {message}")


def count(name: str, value: Any, *, minimum: int = 0) -> int:
    """An integer count >= minimum (bools and fractional floats are rejected)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, f"must be an integer count, got {value!r}")
    if isinstance(value, numbers.Integral):
        result = int(value)
    else:
        as_float = float(value)
        if not math.isfinite(as_float) or as_float != int(as_float):
            raise _fail(name, f"must be an integer count, got {value!r}")
        result = int(as_float)
    if result < minimum:
        raise _fail(name, f"must be >= {minimum}, got {result}")
    return result


def k_of_n(k: Any, n: Any, k_name: str = "k", n_name: str = "n") -> tuple[int, int]:
    """Validated (k, n) with 0 <= k <= n."""
    n_i = count(n_name, n)
    k_i = count(k_name, k)
    if k_i > n_i:
        raise _fail(k_name, f"must be <= {n_name} ({k_i} > {n_i})")
    return k_i, n_i


def real(name: str, value: Any) -> float:
    """A finite real number."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _fail(name, f"must be a number, got {value!r}")
    result = float(value)
    if not math.isfinite(result):
        raise _fail(name, f"must be finite, got {value!r}")
    return result


def probability(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (ends excluded when asked)."""
    result = real(name, value)
    if result < 0 or result > 1 or (open_low and result == 0) or (open_high and result == 1):
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        raise _fail(name, f"must be in {lo}0, 1{hi}, got {value!r}")
    return result


def level(name: str, value: Any) -> float:
    """A confidence level, significance level or power strictly inside (0, 1)."""
    return probability(name, value, open_low=True, open_high=True)


def positive(name: str, value: Any) -> float:
    """A finite number > 0."""
    result = real(name, value)
    if result <= 0:
        raise _fail(name, f"must be > 0, got {value!r}")
    return result


def one_of(name: str, value: Any, allowed) -> str:
    """A value from a registry of named options."""
    if value not in allowed:
        raise _fail(name, f"must be one of {sorted(allowed)}, got {value!r}")
    return value


def array(name: str, values: Any, *, allow_empty: bool = True) -> np.ndarray:
    """A finite 1-d float array."""
    try:
        arr = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise _fail(name, f"must be a sequence of numbers ({exc})") from None
    if arr.ndim != 1:
        raise _fail(name, f"must be one-dimensional, got shape {arr.shape}")
    if not allow_empty and arr.size == 0:
        raise _fail(name, "must not be empty")
    if not np.all(np.isfinite(arr)):
        raise _fail(name, "contains NaN or infinite values")
    return arr


def z_two_sided(conf: float) -> float:
    """Normal quantile for a two-sided interval at level conf."""
    return _STANDARD_NORMAL.inv_cdf(0.5 + conf / 2.0)


def z_one_sided(conf: float) -> float:
    """Normal quantile for a one-sided bound at level conf."""
    return _STANDARD_NORMAL.inv_cdf(conf)


def clip01(x: float) -> float:
    return float(min(1.0, max(0.0, x)))


def ceil_count(x: float) -> int:
    """Round a planning size up, ignoring float noise just above an integer."""
    return int(math.ceil(x - 1e-9))


def one_sided_level(name: str, value: Any) -> float:
    """A one-sided confidence level in (0.5, 1): below 0.5 a lower bound would exceed the estimate."""
    result = level(name, value)
    if result <= 0.5:
        raise _fail(name, f"a one-sided confidence level must be in (0.5, 1), got {value!r}")
    return result
