"""Before a gate runs: can a rule pass at its size, how often does it pass at a given rate, what does it detect.

Exact where it is cheap: the three-state absolute gate is enumerated over every pass count k of a binomial,
and the paired non-inferiority gate over every (improvements b, regressions c) of a trinomial, with the
rule's own bound (Wilson, Clopper-Pearson, Tango). Several looks at growing n (the adaptive extension of
an INCONCLUSIVE rule) are followed by carrying the undecided probability mass from look to look.

Model of a re-run (stats.md section 4): each case passes with its own probability; two runs of a case
disagree with probability psi_i = 2 p_i (1 - p_i), and psi = mean(psi_i) is the no-change discordance.
Given the baseline's rate p on the same cases, a re-run's pass count is k0 - Bin(k0, psi/(2p)) +
Bin(n - k0, psi/(2(1-p))) with k0 = n p: with psi at its largest, 2p(1-p) (every case equally likely to
pass), this is Binomial(n, p); a deterministic target (psi = 0) repeats k0 exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from . import _checks as chk
from .intervals import INTERVAL_METHODS

_TAIL = 1e-12  # probability mass left out of the enumerated grids, per side


@dataclass(frozen=True)
class GateProbabilities:
    """Chance of each final outcome of a gate (over all its looks) and where it decided."""

    passed: float
    failed: float
    inconclusive: float
    by_look: tuple[tuple[float, float], ...] = ()  # (P(PASS at look j), P(FAIL at look j))

    def blocked(self, inconclusive_blocks: bool = True) -> float:
        """Chance the rule stops the change: FAIL always, INCONCLUSIVE when the rule says it blocks."""
        return min(1.0, self.failed + (self.inconclusive if inconclusive_blocks else 0.0))


# -- absolute gates --------------------------------------------------------------------------------


def _method(method: str) -> str:
    return chk.one_of("method", method, {"wilson", "clopper_pearson"})


def absolute_outcomes(n: int, threshold: float, conf: float, method: str = "wilson",
                      kind: str = "min") -> tuple[np.ndarray, np.ndarray]:
    """For every count k = 0..n of the rule's units: (PASS, FAIL) masks of the three-state absolute gate.

    kind="min" bounds a rate from below (k counts passes): PASS iff the one-sided lower bound >= threshold,
    FAIL iff the upper bound < threshold. kind="max" bounds it from above (k counts bad units, e.g.
    errors): PASS iff the upper bound <= threshold, FAIL iff the lower bound > threshold.
    """
    n = chk.count("n", n, minimum=1)
    threshold = chk.probability("threshold", threshold)
    conf = chk.one_sided_level("conf", conf)
    kind = chk.one_of("kind", kind, {"min", "max"})
    lo, hi = INTERVAL_METHODS[_method(method)](np.arange(n + 1), n, 2 * conf - 1)
    if kind == "min":
        return lo >= threshold, hi < threshold
    return hi <= threshold, lo > threshold


def best_bound(n: int, conf: float, method: str = "wilson", kind: str = "min") -> float:
    """The most favourable bound n units can give (all pass for a floor, none bad for a ceiling)."""
    n = chk.count("n", n, minimum=1)
    conf = chk.one_sided_level("conf", conf)
    kind = chk.one_of("kind", kind, {"min", "max"})
    lo, hi = INTERVAL_METHODS[_method(method)](np.array([n if kind == "min" else 0]), n, 2 * conf - 1)
    return float(lo[0] if kind == "min" else hi[0])


def n_for_perfect_pass(threshold: float, conf: float, method: str = "wilson", kind: str = "min",
                       limit: int = 10_000_000) -> int | None:
    """Fewest units with which a perfect result passes the absolute gate; None when no n can.

    A floor of 1 (or a ceiling of 0) is never reached by a bound; a floor at 0.95 with Wilson at 95%
    needs 52 all-passing cases, with Clopper-Pearson 59 (the rule of three).
    """
    threshold = chk.probability("threshold", threshold)
    passes = (lambda n: best_bound(n, conf, method, kind) >= threshold) if kind == "min" else \
        (lambda n: best_bound(n, conf, method, kind) <= threshold)
    if (kind == "min" and threshold >= 1) or (kind == "max" and threshold <= 0):
        return None
    hi = 1
    while not passes(hi):
        hi *= 2
        if hi > limit:
            return None
    lo = hi // 2  # fails (or is 0): the best bound is monotone in n
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if passes(mid) else (mid, hi)
    return hi


_lgamma = np.frompyfunc(math.lgamma, 1, 1)


def _log_factorial(x: np.ndarray) -> np.ndarray:
    """log(x!) elementwise, exact to double precision (math.lgamma; scipy.special costs ~0.3 s of import).

    Counts are whole numbers: lgamma is evaluated once per distinct value up to the largest, then looked up."""
    x = np.asarray(x, dtype=float)
    top = float(x.max()) if x.size else 0.0
    if x.size and np.all(x == np.floor(x)) and 0 <= float(x.min()) and top <= 10_000_000:
        table = np.asarray(_lgamma(np.arange(int(top) + 1, dtype=float) + 1.0), dtype=float)
        return table[x.astype(np.int64)]
    return np.asarray(_lgamma(x + 1.0), dtype=float)


def _binom_terms(k: np.ndarray, n, p: float) -> np.ndarray:
    """Binomial(n, p) probabilities of k, n an int or an array like k (scipy.stats costs seconds to import)."""
    k = np.asarray(k, dtype=float)
    n = np.asarray(n, dtype=float)
    inside = (k >= 0) & (k <= n)
    k_in = np.where(inside, k, 0.0)
    rest = n - k_in
    with np.errstate(divide="ignore", invalid="ignore"):
        # xlogy / xlog1py: a zero count contributes 0 whatever p is (p = 0 or 1 included)
        log_p = np.where(k_in > 0, k_in * np.log(p) if p > 0 else -np.inf, 0.0)
        log_q = np.where(rest > 0, rest * np.log1p(-p) if p < 1 else -np.inf, 0.0)
    logs = _log_factorial(n) - _log_factorial(k_in) - _log_factorial(rest) + log_p + log_q
    return np.where(inside, np.exp(logs), 0.0)


def _binom_pmf(n: int, p: float) -> np.ndarray:
    return _binom_terms(np.arange(n + 1), n, p) if n > 0 else np.ones(1)


def _binom_upper(n: int, q: float) -> int:
    """A count Binomial(n, q) exceeds with probability far below _TAIL: 8 standard deviations and 30 above the mean."""
    if q <= 0:
        return 0
    return min(n, int(n * q + 8.0 * math.sqrt(n * q * (1 - q)) + 30))


def poisson_binomial(probabilities: Sequence[float]) -> np.ndarray:
    """Distribution of the number of successes of independent trials with these probabilities."""
    dist = np.ones(1)
    for p in probabilities:
        dist = np.convolve(dist, [1.0 - p, p])
    return dist


def rerun_distribution(n: int, rate: float, discordance: float | None = None,
                       observed: Sequence[float] | None = None) -> np.ndarray:
    """Distribution of a re-run's count on n cases whose baseline rate is `rate` (see the module docstring).

    `observed` gives, for (some of) these very cases, the rate the baseline saw on each (its mean over
    repeats); the others count at `rate`. A case seen passing fails a re-run with probability
    psi / (2 rate), a case seen failing passes with psi / (2 (1 - rate)), a case seen at 3/5 passes about
    3/5 of the time: the count is Poisson-binomial. discordance None (unknown) or above 2p(1-p) means
    2p(1-p), every case equally likely to pass: then the re-run is Binomial(n, rate) whatever was
    observed, the most spread out.
    """
    n = chk.count("n", n)
    p = chk.probability("rate", rate)
    psi_max = 2 * p * (1 - p)
    psi = psi_max if discordance is None else min(psi_max, chk.probability("discordance", discordance))
    if p in (0.0, 1.0) or psi >= psi_max:
        return _binom_pmf(n, p)
    loss, gain = psi / (2 * p), psi / (2 * (1 - p))
    seen = [min(1.0, max(0.0, chk.real("observed", r))) for r in (observed or [])][:n]
    rates = np.array(seen + [p] * (n - len(seen)))
    return poisson_binomial(rates * (1 - loss) + (1 - rates) * gain)


def absolute_gate_probabilities(
    looks: Sequence[int],
    confs: Sequence[float],
    threshold: float,
    rate: float,
    *,
    method: str = "wilson",
    kind: str = "min",
    discordance: float | None = None,
    extra_rate: float | None = None,
    outcomes: Callable[[int, float], tuple[np.ndarray, np.ndarray]] | None = None,
    observed: Sequence[Sequence[float] | None] | None = None,
) -> GateProbabilities:
    """Exact chance of PASS / FAIL / INCONCLUSIVE of an absolute gate judged at n = looks[0], looks[1], ...

    Look j uses the one-sided bound at confs[j] and is reached only when every earlier look was
    INCONCLUSIVE (the adaptive extension). The first look's count follows rerun_distribution(rate,
    discordance); so do the units added between looks, at extra_rate (default: rate): an extension adds
    the same cases every run, so what the baseline measured of them holds for them too.
    `rate` is the rate the rule bounds: the pass rate for kind="min", the bad-unit rate for "max".
    `outcomes(n, conf)` replaces the Wilson / Clopper-Pearson masks for a rule with a bound of its own
    (a judge-corrected rate); threshold, method and kind are then unused. observed[j], when given, holds
    the baseline's per-case rates of the units look j adds (look 0: its first n), see rerun_distribution.
    """
    looks, confs = _schedule(looks, confs)
    seen = list(observed) if observed is not None else []
    seen += [None] * (len(looks) - len(seen))
    dist = rerun_distribution(looks[0], rate, discordance, seen[0])
    fresh = chk.probability("extra_rate", rate if extra_rate is None else extra_rate)
    masks = outcomes or (lambda n, conf: absolute_outcomes(n, threshold, conf, method, kind))
    by_look = []
    for j, (n, conf) in enumerate(zip(looks, confs)):
        if j:
            added = rerun_distribution(n - looks[j - 1], fresh, discordance, seen[j])
            dist = np.convolve(dist, added)[: n + 1]
        pass_mask, fail_mask = masks(n, conf)
        p_pass, p_fail = float(dist[pass_mask].sum()), float(dist[fail_mask].sum())
        by_look.append((p_pass, p_fail))
        dist = np.where(pass_mask | fail_mask, 0.0, dist)
    passed, failed = sum(p for p, _ in by_look), sum(f for _, f in by_look)
    return GateProbabilities(min(1.0, passed), min(1.0, failed), max(0.0, 1.0 - passed - failed), tuple(by_look))


def _schedule(looks: Sequence[int], confs: Sequence[float]) -> tuple[list[int], list[float]]:
    looks = [chk.count("looks", n, minimum=1) for n in looks]
    confs = [chk.one_sided_level("confs", c) for c in confs]
    if not looks or len(looks) != len(confs):
        raise chk.StatsInputError("looks, confs: give one confidence per look, at least one look")
    if any(b <= a for a, b in zip(looks, looks[1:])):
        raise chk.StatsInputError("looks: the number of units must grow from look to look")
    return looks, confs


# -- paired non-inferiority gates ------------------------------------------------------------------


def tango_statistic_grid(b: np.ndarray, c: np.ndarray, n: int, delta0: float) -> np.ndarray:
    """Tango's score statistic T(delta0) for arrays of (b, c) on n pairs (paired._tango_statistic, vectorized).

    The gate's lower bound exceeds -margin exactly when T(-margin) > z, and its upper bound is below
    -margin exactly when T(-margin) < -z: the statistic at the margin decides the outcome.
    """
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    numerator = b - c - n * delta0
    a_coef = 2.0 * n
    b_coef = -b - c + (2.0 * n - b + c) * delta0
    c_coef = -c * delta0 * (1.0 - delta0)
    q21 = (np.sqrt(np.maximum(0.0, b_coef * b_coef - 4 * a_coef * c_coef)) - b_coef) / (2 * a_coef)
    variance = n * (2.0 * q21 + delta0 * (1.0 - delta0))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = numerator / np.sqrt(variance)
    t = np.where(variance > 0, t, np.copysign(np.inf, numerator))
    return np.where(numerator == 0, 0.0, t)


def _trinomial(m: int, q_b: float, q_c: float, b_max: int, c_max: int) -> np.ndarray:
    """P(x improvements, y regressions) among m new pairs, truncated to x <= b_max, y <= c_max."""
    x = np.arange(min(m, b_max) + 1)
    px = _binom_terms(x, m, q_b)
    rest = 1.0 - q_b
    q_cond = 0.0 if rest <= 0 else min(1.0, q_c / rest)
    y = np.arange(min(m, c_max) + 1)
    return px[:, None] * _binom_terms(y[None, :], (m - x)[:, None], q_cond)


def tango_lower_bound(b: int, c: int, n: int, conf: float) -> float:
    """Lower end of the two-sided (2 conf - 1) Tango interval (paired_diff_ci_tango's), by bisection on the
    statistic, which decreases in delta0: planning needs only this end, without scipy.stats' import."""
    b, c, n = chk.count("b", b), chk.count("c", c), chk.count("n", n, minimum=1)
    z = chk.z_one_sided(chk.one_sided_level("conf", conf))
    lo, hi = -1.0 + 1e-12, (b - c) / n
    if float(tango_statistic_grid(np.array([b]), np.array([c]), n, lo)[0]) <= z:
        return -1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if float(tango_statistic_grid(np.array([b]), np.array([c]), n, mid)[0]) > z else (lo, mid)
    return (lo + hi) / 2


def _convolve2d(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Full 2-d convolution by FFT, cut back to a's shape (counts beyond the grid carry < _TAIL mass)."""
    shape = (a.shape[0] + kernel.shape[0] - 1, a.shape[1] + kernel.shape[1] - 1)
    out = np.fft.irfft2(np.fft.rfft2(a, shape) * np.fft.rfft2(kernel, shape), shape)
    return np.clip(out[: a.shape[0], : a.shape[1]], 0.0, None)


def paired_gate_probabilities(
    looks: Sequence[int],
    confs: Sequence[float],
    margin: float,
    improve: float,
    regress: float,
) -> GateProbabilities:
    """Exact chance of PASS / FAIL / INCONCLUSIVE of the paired non-inferiority gate (Tango) over looks.

    Each pair independently improved with probability `improve`, regressed with `regress` (their sum is
    the discordance psi; their difference the true change). PASS iff the lower end of the two-sided
    (2 conf - 1) Tango interval > -margin, FAIL iff its upper end < -margin (stats.regression_gate_paired).
    """
    looks, confs = _schedule(looks, confs)
    margin = chk.probability("margin", margin, open_low=True, open_high=True)
    q_b = chk.probability("improve", improve)
    q_c = chk.probability("regress", regress)
    if q_b + q_c > 1 + 1e-12:
        raise chk.StatsInputError("improve + regress: cannot exceed 1")
    n_max = looks[-1]
    b_max, c_max = _binom_upper(n_max, q_b), _binom_upper(n_max, q_c)
    dist = _trinomial(looks[0], q_b, q_c, b_max, c_max)
    by_look = []
    for j, (n, conf) in enumerate(zip(looks, confs)):
        if j:
            dist = _convolve2d(dist, _trinomial(n - looks[j - 1], q_b, q_c, b_max, c_max))
        bb, cc = np.meshgrid(np.arange(dist.shape[0]), np.arange(dist.shape[1]), indexing="ij")
        feasible = bb + cc <= n
        t = tango_statistic_grid(bb, cc, n, -margin)
        z = chk.z_one_sided(conf)
        pass_mask, fail_mask = feasible & (t > z), feasible & (t < -z)
        p_pass, p_fail = float(dist[pass_mask].sum()), float(dist[fail_mask].sum())
        by_look.append((p_pass, p_fail))
        dist = np.where(pass_mask | fail_mask, 0.0, dist)
    passed, failed = sum(p for p, _ in by_look), sum(f for _, f in by_look)
    return GateProbabilities(min(1.0, passed), min(1.0, failed), max(0.0, 1.0 - passed - failed), tuple(by_look))


# -- what a gate detects -----------------------------------------------------------------------------


def _bisect(f: Callable[[float], float], lo: float, hi: float, target: float, iterations: int = 40) -> float | None:
    """x in [lo, hi] where the increasing function f crosses target; None when f(hi) < target."""
    if f(hi) < target:
        return None
    if f(lo) >= target:
        return lo
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if f(mid) >= target else (mid, hi)
    return hi


def absolute_detectable_change(
    looks: Sequence[int],
    confs: Sequence[float],
    threshold: float,
    rate: float,
    *,
    method: str = "wilson",
    kind: str = "min",
    power: float = 0.8,
    inconclusive_blocks: bool = True,
    extra_rate: float | None = None,
    outcomes: Callable[[int, float], tuple[np.ndarray, np.ndarray]] | None = None,
) -> float | None:
    """Smallest worsening of the true rate (down for kind="min", up for "max") that the gate blocks with
    probability >= power, over all its looks; None when even the worst rate is not blocked that often,
    0 when the gate already blocks the rate itself that often.

    A worse model is another model: its count on the cases is Binomial (flips at their largest); the
    cases added between looks worsen by the same amount from extra_rate.
    """
    rate = chk.probability("rate", rate)
    power = chk.level("power", power)
    sign = -1.0 if kind == "min" else 1.0
    fresh = rate if extra_rate is None else chk.probability("extra_rate", extra_rate)

    def blocked(change: float) -> float:
        def moved(r: float) -> float:
            return min(1.0, max(0.0, r + sign * change))

        return absolute_gate_probabilities(looks, confs, threshold, moved(rate), method=method, kind=kind,
                                           extra_rate=moved(fresh), outcomes=outcomes).blocked(inconclusive_blocks)

    return _bisect(blocked, 0.0, rate if kind == "min" else 1 - rate, power, iterations=24)


def paired_detectable_drop(
    looks: Sequence[int],
    confs: Sequence[float],
    margin: float,
    discordance: float,
    *,
    power: float = 0.8,
    inconclusive_blocks: bool = True,
) -> float | None:
    """Smallest true drop d that the paired gate blocks with probability >= power, over all its looks.

    A drop adds regressions on top of the no-change noise: improve = psi/2, regress = psi/2 + d.
    """
    psi = chk.probability("discordance", discordance)
    power = chk.level("power", power)

    def blocked(drop: float) -> float:
        return paired_gate_probabilities(looks, confs, margin, psi / 2, psi / 2 + drop).blocked(inconclusive_blocks)

    return _bisect(blocked, 0.0, 1.0 - psi, power, iterations=24)


def smallest_n(ok: Callable[[int], bool], start: int, limit: int = 100_000) -> int | None:
    """Smallest n >= start with ok(n), searching by doubling then bisection; None above limit.

    Probabilities of discrete gates wiggle with n, so the answer is approximate ("about n").
    """
    start = chk.count("start", start, minimum=1)
    if ok(start):
        return start
    lo, hi = start, start * 2
    while not ok(hi):
        lo, hi = hi, hi * 2
        if hi > limit:
            return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def pooled_discordance(runs_per_case: Sequence[int], passes_per_case: Sequence[int], *,
                       prior: float = 0.5, prior_pairs: float = 1.0) -> float | None:
    """No-change discordance psi from repeats: disagreeing pairs of runs over all pairs, over every case
    with two runs or more, as (disagreements + prior_pairs * prior) / (pairs + prior_pairs).

    The same estimate as stats.case_flip_probability pooled over cases, with prior_pairs pairs of prior
    disagreement at rate `prior`: by default half a disagreeing pair, so repeats that all agreed do not
    claim a case can never flip; a rule's few cases can instead borrow the suite's rate with more weight
    (partial pooling). None without any case run twice.
    """
    n = chk.array("runs_per_case", runs_per_case)
    c = chk.array("passes_per_case", passes_per_case)
    prior = chk.probability("prior", prior)
    prior_pairs = chk.positive("prior_pairs", prior_pairs)
    if n.shape != c.shape or np.any(c > n) or np.any(c < 0):
        raise chk.StatsInputError("passes_per_case: need 0 <= passes <= runs for every case")
    twice = n >= 2
    if not np.any(twice):
        return None
    pairs = float(np.sum(n[twice] * (n[twice] - 1) / 2))
    disagreements = float(np.sum(c[twice] * (n[twice] - c[twice])))
    return (disagreements + prior_pairs * prior) / (pairs + prior_pairs)


def smoothed_rate(successes: float, n: float) -> float:
    """(successes + 1/2) / (n + 1): a baseline's rate that is never exactly 0 or 1 (the Jeffreys mean),
    so an all-pass baseline does not claim its cases can never fail."""
    n = chk.real("n", n)
    successes = chk.real("successes", successes)
    if n < 0 or successes < 0 or successes > n:
        raise chk.StatsInputError("successes: need 0 <= successes <= n")
    return (successes + 0.5) / (n + 1.0)
