"""Planning: sample sizes, margins of error and minimum detectable effects, computed before a suite is built."""

from __future__ import annotations

import math

from . import _checks as chk


def _z_sum(alpha: float, power: float, two_sided: bool) -> float:
    alpha = chk.level("alpha", alpha)
    power = chk.level("power", power)
    z_alpha = chk.z_two_sided(1 - alpha) if two_sided else chk.z_one_sided(1 - alpha)
    return z_alpha + chk.z_one_sided(power)


def _paired_variance(omega2, sigma2_a, sigma2_b, K_a, K_b) -> float:
    omega2 = chk.real("omega2", omega2)
    sigma2_a = chk.real("sigma2_a", sigma2_a)
    sigma2_b = chk.real("sigma2_b", sigma2_b)
    K_a = chk.count("K_a", K_a, minimum=1)
    K_b = chk.count("K_b", K_b, minimum=1)
    if min(omega2, sigma2_a, sigma2_b) < 0:
        raise chk.StatsInputError("omega2, sigma2_a, sigma2_b: variances must be >= 0")
    variance = omega2 + sigma2_a / K_a + sigma2_b / K_b
    if variance == 0:
        raise chk.StatsInputError("omega2, sigma2_a, sigma2_b: at least one variance must be > 0")
    return variance


def required_n_paired(
    delta: float,
    omega2: float,
    sigma2_a: float = 0.0,
    sigma2_b: float = 0.0,
    K_a: int = 1,
    K_b: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Cases needed to detect a paired mean difference delta (Miller 2024 Eq. 9), unrounded.

    n = (z_{a/2} + z_b)^2 (omega2 + sigma2_a/K_a + sigma2_b/K_b) / delta^2, with omega2 the variance
    of the true per-case difference and sigma2 the within-case run variance. Round up to plan.
    """
    delta = chk.positive("delta", abs(chk.real("delta", delta)))
    variance = _paired_variance(omega2, sigma2_a, sigma2_b, K_a, K_b)
    return _z_sum(alpha, power, two_sided=True) ** 2 * variance / delta**2


def mde_paired(
    n: int,
    omega2: float,
    sigma2_a: float = 0.0,
    sigma2_b: float = 0.0,
    K_a: int = 1,
    K_b: int = 1,
    alpha: float = 0.05,
    power: float = 0.8,
) -> float:
    """Minimum detectable paired mean difference with n cases (Miller 2024 Eq. 10).

    Report it next to every "not significant" comparison: it says what the suite could have seen.
    """
    n = chk.count("n", n, minimum=1)
    variance = _paired_variance(omega2, sigma2_a, sigma2_b, K_a, K_b)
    return _z_sum(alpha, power, two_sided=True) * math.sqrt(variance / n)


def margin_of_error(n: int, p: float, conf: float = 0.95) -> float:
    """Normal-approximation margin of error z*sqrt(p(1-p)/n) for a sampled pass rate near p."""
    n = chk.count("n", n, minimum=1)
    p = chk.probability("p", p)
    return chk.z_two_sided(chk.level("conf", conf)) * math.sqrt(p * (1 - p) / n)


def implied_pass_rate_for_margin(n: int, moe: float, conf: float = 0.95) -> list[float]:
    """The two pass rates [p, 1-p] at which n samples give margin of error moe.

    Checks quoted rules of thumb ("200 traces -> +/-2.4%" only holds near a 97% pass rate).
    """
    n = chk.count("n", n, minimum=1)
    moe = chk.positive("moe", moe)
    z = chk.z_two_sided(chk.level("conf", conf))
    variance = n * moe * moe / (z * z)
    if variance > 0.25:
        raise chk.StatsInputError(f"moe: {moe} is wider than the worst case (p = 0.5) for n = {n}")
    root = math.sqrt(1 - 4 * variance)
    return [(1 - root) / 2, (1 + root) / 2]


def sample_size_for_margin(moe: float, p: float = 0.5, conf: float = 0.95, population: int | None = None) -> int:
    """Samples needed for margin of error moe at pass rate p: ceil(z^2 p(1-p)/moe^2).

    With a finite population N, applies the correction n0/(1 + (n0-1)/N). Use to size production
    trace samples; p = 0.5 is the worst case.
    """
    moe = chk.probability("moe", moe, open_low=True, open_high=True)
    p = chk.probability("p", p)
    z = chk.z_two_sided(chk.level("conf", conf))
    n0 = z * z * p * (1 - p) / moe**2
    if population is None:
        return max(1, chk.ceil_count(n0))
    big_n = chk.count("population", population, minimum=1)
    return max(1, min(big_n, chk.ceil_count(n0 / (1 + (n0 - 1) / big_n))))


def n_for_absolute_gate(p_expected: float, threshold: float, alpha_one_sided: float = 0.05, power: float = 0.8) -> int:
    """Cases needed so a model with true pass rate p_expected passes a gate at threshold with the given power.

    n = ceil(((z_{1-a} sqrt(T(1-T)) + z_{1-b} sqrt(p(1-p))) / (p - T))^2) (Fleiss, Levin & Paik 2003).
    """
    p1 = chk.probability("p_expected", p_expected)
    p0 = chk.probability("threshold", threshold)
    if p1 <= p0:
        raise chk.StatsInputError(f"p_expected: must exceed threshold ({p1} <= {p0}); no n can show it")
    z_a = chk.z_one_sided(1 - chk.level("alpha_one_sided", alpha_one_sided))
    z_b = chk.z_one_sided(chk.level("power", power))
    root_n = (z_a * math.sqrt(p0 * (1 - p0)) + z_b * math.sqrt(p1 * (1 - p1))) / (p1 - p0)
    return chk.ceil_count(root_n**2)


def n_for_noninferiority_paired(
    discordant_rate: float, margin: float, true_delta: float = 0.0, alpha_one_sided: float = 0.05, power: float = 0.8
) -> int:
    """Paired cases needed for the non-inferiority gate (Connor 1987, shifted to a margin as in Nam 1997).

    n = ceil(((z_{1-a} sqrt(psi - m^2) + z_{1-b} sqrt(psi - d^2)) / (d + m))^2), where psi is the
    share of cases whose verdict differs between runs (estimate it from an A/A run), not the pass rate.
    """
    psi = chk.probability("discordant_rate", discordant_rate, open_low=True)
    margin = chk.probability("margin", margin, open_low=True, open_high=True)
    delta = chk.real("true_delta", true_delta)
    if delta + margin <= 0:
        raise chk.StatsInputError("true_delta: must be > -margin, or no n can show non-inferiority")
    if psi < margin**2 or psi < delta**2:
        raise chk.StatsInputError("discordant_rate: must be at least margin^2 and true_delta^2")
    z_a = chk.z_one_sided(1 - chk.level("alpha_one_sided", alpha_one_sided))
    z_b = chk.z_one_sided(chk.level("power", power))
    root_n = (z_a * math.sqrt(psi - margin**2) + z_b * math.sqrt(psi - delta**2)) / (delta + margin)
    return chk.ceil_count(root_n**2)


def n_all_pass_needed(max_fail_rate: float, conf: float = 0.95) -> int:
    """Consecutive passes needed to claim "failure rate <= f" at confidence conf with zero failures.

    Smallest n with (1-f)^n <= 1-conf (Clopper-Pearson at k = n): 299 for 1%, 59 for 5%.
    """
    f = chk.probability("max_fail_rate", max_fail_rate, open_low=True, open_high=True)
    alpha = 1 - chk.level("conf", conf)
    n = max(1, chk.ceil_count(math.log(alpha) / math.log1p(-f)))
    # Guard the log ratio against rounding on either side of an integer.
    while n > 1 and (1 - f) ** (n - 1) <= alpha:
        n -= 1
    while (1 - f) ** n > alpha:
        n += 1
    return n
