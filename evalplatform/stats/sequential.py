"""Repeated looks at accumulating data: peeking error, alpha spending, always-valid bounds, monitor alerts."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import numpy as np
from scipy import optimize, special

from . import _checks as chk
from .intervals import wilson_lower_bound, wilson_upper_bound

_GRID_POINTS = 1201  # odd, for Simpson weights


def _simpson_grid(low: float, high: float) -> tuple[np.ndarray, np.ndarray]:
    grid = np.linspace(low, high, _GRID_POINTS)
    weights = np.ones(_GRID_POINTS)
    weights[1:-1:2] = 4.0
    weights[2:-1:2] = 2.0
    return grid, weights * (grid[1] - grid[0]) / 3.0


def _crossing_probability(times: np.ndarray, bound: float, two_sided: bool) -> float:
    """P(|Z_j| > bound for some look j) for a standardized Brownian motion observed at `times`.

    Armitage-McPherson-Rowe recursion: carry the density of the running sum over the region that
    has not crossed yet, integrating against the Gaussian increment between looks. Each look's
    grid ends exactly at its boundary, so Simpson's rule sees a smooth integrand.
    """
    def normal_pdf(x: np.ndarray, sd: float) -> np.ndarray:
        return np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    grid = weights = density = None
    previous = 0.0
    for t in times:
        limit = bound * math.sqrt(t)
        new_grid, new_weights = _simpson_grid(-limit if two_sided else -limit - 10.0 * math.sqrt(t), limit)
        step_sd = math.sqrt(t - previous)
        if density is None:
            density = normal_pdf(new_grid, step_sd)
        else:
            density = normal_pdf(new_grid[:, None] - grid[None, :], step_sd) @ (weights * density)
        grid, weights, previous = new_grid, new_weights, t
    return float(min(1.0, max(0.0, 1.0 - weights @ density)))


def peeking_type1_error(
    looks: int,
    alpha_per_look: float = 0.05,
    two_sided: bool = True,
    equally_spaced: bool = True,
    information_fractions: Sequence[float] | None = None,
) -> float:
    """Real false-alarm rate when a fixed-level z-test is re-run at each of `looks` interim looks.

    Shows why a dashboard must not re-check a fixed-n interval (5 looks at 5% -> ~14%). Looks are
    equally spaced unless equally_spaced=False and information_fractions gives their times.
    """
    looks = chk.count("looks", looks, minimum=1)
    alpha = chk.level("alpha_per_look", alpha_per_look)
    if equally_spaced:
        times = np.arange(1, looks + 1) / looks
    else:
        if information_fractions is None or len(information_fractions) != looks:
            raise chk.StatsInputError("information_fractions: give one increasing time in (0, 1] per look")
        times = chk.array("information_fractions", information_fractions)
        if np.any(np.diff(times) <= 0) or times[0] <= 0 or times[-1] > 1:
            raise chk.StatsInputError("information_fractions: must increase strictly within (0, 1]")
    z = chk.z_two_sided(1 - alpha) if two_sided else chk.z_one_sided(1 - alpha)
    if looks == 1:
        return alpha
    return _crossing_probability(times, z, two_sided)


def alpha_spent_obrien_fleming(t: float, alpha: float = 0.05) -> float:
    """Cumulative alpha spent by information fraction t, O'Brien-Fleming type: 2 - 2*Phi(z_{1-a/2}/sqrt(t)).

    Spends almost nothing early; use for a planned look schedule where early stops need strong evidence.
    """
    t = chk.probability("t", t)
    alpha = chk.level("alpha", alpha)
    if t == 0:
        return 0.0
    return float(2.0 * special.ndtr(-chk.z_two_sided(1 - alpha) / math.sqrt(t)))


def alpha_spent_pocock(t: float, alpha: float = 0.05) -> float:
    """Cumulative alpha spent by information fraction t, Pocock type: alpha*ln(1 + (e-1)t).

    Spends evenly; use when early looks should be able to stop as easily as late ones.
    """
    t = chk.probability("t", t)
    alpha = chk.level("alpha", alpha)
    return alpha * math.log1p((math.e - 1) * t)


def alpha_for_look_open_ended(t: int, alpha: float = 0.05) -> float:
    """Level for look t of an unbounded look schedule: 6*alpha/(pi^2 t^2), which sums to alpha.

    Use when the number of looks is not known in advance (Bonferroni over a Basel series).
    """
    t = chk.count("t", t, minimum=1)
    alpha = chk.level("alpha", alpha)
    return 6.0 * alpha / (math.pi**2 * t * t)


SPENDING_FUNCTIONS = {"pocock": alpha_spent_pocock, "obrien_fleming": alpha_spent_obrien_fleming}


def alpha_per_look(information: Sequence[float], alpha: float = 0.05, spending: str = "pocock") -> list[float]:
    """The error each look may use: increments of a spending function over information fractions t_j.

    t_j = n_j / n_max, increasing, the last one 1 (the whole alpha is spent by the last look). Testing look
    j at level alpha_j = spent(t_j) - spent(t_{j-1}) keeps the chance of a false claim at any look below
    sum(alpha_j) = alpha by the union bound, whatever the correlation between looks: conservative, and
    valid for exact (Clopper-Pearson) bounds too. The schedule must be fixed before the first look.
    """
    alpha = chk.level("alpha", alpha)
    spent = SPENDING_FUNCTIONS[chk.one_of("spending", spending, SPENDING_FUNCTIONS)]
    times = chk.array("information", information, allow_empty=False)
    if np.any(np.diff(times) <= 0) or times[0] <= 0 or abs(times[-1] - 1.0) > 1e-12:
        raise chk.StatsInputError("information: fractions must increase strictly within (0, 1] and end at 1")
    cumulative = [spent(min(1.0, float(t)), alpha) for t in times]
    cumulative[-1] = alpha  # pocock's log form and Phi's tail both reach alpha at t = 1 only up to rounding
    return [b - a for a, b in zip([0.0, *cumulative[:-1]], cumulative)]


def group_sequential_levels(information: Sequence[float], alpha: float = 0.05, spending: str = "pocock",
                            ) -> list[float]:
    """Nominal one-sided level of each look of a group-sequential test (Lan & DeMets 1983), by spending function.

    Look j rejects at z >= c_j, the c_j chosen so that, for a standardized Brownian motion observed at
    information fractions t_j, P(first crossing at look j) = spent(t_j) - spent(t_{j-1}). Because the
    looks share their data, c_j after the first is much lower than the Bonferroni value z_{1 - alpha_j}:
    later looks stay useful. Returns 1 - Phi(c_j) per look; testing look j at that level (a one-sided
    bound at 1 - level) keeps the chance of a false claim at any look at alpha, to the normal
    approximation the statistic itself rests on (use alpha_per_look where only exact bounds will do).
    """
    return list(_group_sequential_levels(tuple(float(t) for t in information), float(alpha), spending))


@functools.lru_cache(maxsize=512)
def _group_sequential_levels(information: tuple[float, ...], alpha: float, spending: str) -> tuple[float, ...]:
    alpha = chk.level("alpha", alpha)
    spent = SPENDING_FUNCTIONS[chk.one_of("spending", spending, SPENDING_FUNCTIONS)]
    times = chk.array("information", information, allow_empty=False)
    if np.any(np.diff(times) <= 0) or times[0] <= 0 or abs(times[-1] - 1.0) > 1e-12:
        raise chk.StatsInputError("information: fractions must increase strictly within (0, 1] and end at 1")
    cumulative = [spent(min(1.0, float(t)), alpha) for t in times]
    cumulative[-1] = alpha

    def normal_sf(x):
        return special.ndtr(-x)

    def normal_pdf(x, sd):
        return np.exp(-0.5 * (x / sd) ** 2) / (sd * math.sqrt(2 * math.pi))

    levels: list[float] = []
    grid = weights = density = None  # density of W(t_j) on paths that have not crossed yet
    previous_t, previous_spent = 0.0, 0.0
    for t, total in zip(times, cumulative):
        t = float(t)
        target = total - previous_spent
        step_sd = math.sqrt(t - previous_t)
        if density is None:
            c = chk.z_one_sided(1 - target)
            crossing = lambda bound: float(normal_sf(bound))  # noqa: E731
        else:
            def crossing(bound: float, g=grid, w=weights, d=density, sd=step_sd, root_t=math.sqrt(t)) -> float:
                return float(np.sum(w * d * normal_sf((bound * root_t - g) / sd)))

            if target <= 0:
                c = math.inf
            else:
                hi = 20.0
                c = optimize.brentq(lambda b: crossing(b) - target, -10.0, hi, xtol=1e-10) \
                    if crossing(-10.0) > target else -10.0
        levels.append(float(normal_sf(c)))
        limit = min(c, 12.0) * math.sqrt(t)
        new_grid, new_weights = _simpson_grid(limit - 12.0 * math.sqrt(t), limit)
        if density is None:
            density = normal_pdf(new_grid, step_sd)
        else:
            density = normal_pdf(new_grid[:, None] - grid[None, :], step_sd) @ (weights * density)
        grid, weights, previous_t, previous_spent = new_grid, new_weights, t, total
    return tuple(levels)


def confidence_sequence_bernoulli(
    k: int, n: int, alpha: float = 0.05, prior_a: float = 1.0, prior_b: float = 1.0
) -> list[float]:
    """Always-valid confidence sequence for a pass rate: {p : M_n(p) < 1/alpha}, beta-binomial mixture.

    M_n(p) = [B(a+k, b+n-k)/B(a, b)] / [p^k (1-p)^(n-k)] (Robbins 1970); valid at every n at once
    (Ville's inequality), so a dashboard may check it after every trace. Wider than Wilson: that is
    the price of continuous monitoring. n = 0 gives [0, 1].
    """
    k, n = chk.k_of_n(k, n)
    alpha = chk.level("alpha", alpha)
    a = chk.positive("prior_a", prior_a)
    b = chk.positive("prior_b", prior_b)
    log_mix = special.betaln(a + k, b + n - k) - special.betaln(a, b)
    threshold = math.log(1 / alpha)

    def excess(p: float) -> float:
        return log_mix - special.xlogy(k, p) - special.xlog1py(n - k, -p) - threshold

    centre = k / n if n else 0.5
    eps = 1e-15
    lower = 0.0 if excess(eps) < 0 or k == 0 else optimize.brentq(excess, eps, centre, xtol=1e-14)
    upper = 1.0 if excess(1 - eps) < 0 or k == n else optimize.brentq(excess, centre, 1 - eps, xtol=1e-14)
    return [float(lower), float(upper)]


def monitor_alert(k_pass: int, n: int, threshold: float, conf: float = 0.95) -> dict:
    """Production monitor: alert iff the one-sided Wilson upper bound of the window's pass rate < SLO.

    Alerts only when the window is confidently below target. For continuous re-checking of a
    growing window use confidence_sequence_bernoulli instead. n = 0 never alerts (status NO_DATA).
    """
    k, n = chk.k_of_n(k_pass, n, "k_pass", "n")
    threshold = chk.probability("threshold", threshold)
    conf = chk.one_sided_level("conf", conf)
    if n == 0:
        return {"upper_bound": 1.0, "lower_bound": 0.0, "alert": False, "status": "NO_DATA", "estimate": None}
    upper = wilson_upper_bound(k, n, conf)
    return {
        "upper_bound": upper,
        "lower_bound": wilson_lower_bound(k, n, conf),
        "alert": upper < threshold,
        "status": "ALERT" if upper < threshold else "OK",
        "estimate": k / n,
    }
