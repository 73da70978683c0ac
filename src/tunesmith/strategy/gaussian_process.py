"""A small exact Gaussian process in numpy/scipy: Matérn-5/2 kernel with one length scale per input (ARD).

Hyperparameters are fitted by maximising the log marginal likelihood plus log priors (L-BFGS-B, analytic
gradients). The length-scale prior is Optuna's GPSampler's (on the inverse squared length scale lambda,
``-(0.1 / lambda + 0.1 * lambda)``, most likely at a length scale of 1 in unit-cube inputs): on this project's
search-quality suite it beat the dimension-scaled log-normal of Hvarfner et al. (2024) at 48-128 trials.
Inputs are expected in the unit cube and outputs standardised (``bayes`` warps them to normal scores first).

It exists so that ``auto`` can use Bayesian optimisation without torch: at the 10-300 points a tuning run holds,
a Cholesky factorisation in numpy costs well under a millisecond.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.optimize import minimize
from scipy.special import erfcx, ndtr

SQRT5 = math.sqrt(5.0)
JITTER = 1e-8
_LOG_LENGTH_BOUNDS = (math.log(5e-3), math.log(1e2))
_LOG_SIGNAL_BOUNDS = (math.log(5e-2), math.log(2e1))
_LOG_NOISE_BOUNDS = (math.log(1e-6), math.log(1.0))
_NOISE_PRIOR = (math.log(1e-3), 2.5)   # log noise variance ~ Normal(mean, sd): small unless the data say otherwise
_SIGNAL_PRIOR = (0.0, 1.0)             # log signal variance ~ Normal(0, 1): outputs are standardised
LOG_SPAN = 1000.0         # positive losses spanning this factor are modelled on a log scale


@dataclass(frozen=True, slots=True)
class Hyperparameters:
    log_lengths: np.ndarray   # one per input column
    log_signal: float         # log of the kernel's variance
    log_noise: float          # log of the observation noise variance

    def vector(self) -> np.ndarray:
        return np.concatenate([self.log_lengths, [self.log_signal, self.log_noise]])

    @classmethod
    def from_vector(cls, v: np.ndarray) -> Hyperparameters:
        return cls(np.array(v[:-2]), float(v[-2]), float(v[-1]))

    @classmethod
    def initial(cls, dims: int) -> Hyperparameters:
        return cls(np.zeros(dims), 0.0, _NOISE_PRIOR[0])


def _length_penalty(log_lengths: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log prior of the length scales and its gradient: 0.1 (lambda + 1 / lambda), lambda = 1 / l^2."""
    up, down = np.exp(2.0 * log_lengths), np.exp(-2.0 * log_lengths)
    return float(0.1 * np.sum(up + down)), 0.2 * (up - down)


def _matern(scaled_sq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Matérn-5/2 correlation of squared scaled distances, and the factor its length-scale gradients share."""
    r = np.sqrt(np.maximum(scaled_sq, 0.0))
    e = np.exp(-SQRT5 * r)
    return (1.0 + SQRT5 * r + (5.0 / 3.0) * scaled_sq) * e, (5.0 / 3.0) * (1.0 + SQRT5 * r) * e


def _neg_log_posterior(v: np.ndarray, diffs_sq: np.ndarray, z: np.ndarray) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood plus negative log priors, and its gradient in ``v``."""
    n, _, d = diffs_sq.shape
    inv_sq = np.exp(-2.0 * v[:d])
    signal, noise = math.exp(v[d]), math.exp(v[d + 1])
    per_dim = diffs_sq * inv_sq            # (n, n, d): scaled squared differences per input
    corr, shared = _matern(per_dim.sum(axis=2))
    k = signal * corr
    k[np.diag_indices(n)] += noise + JITTER
    try:
        chol = np.linalg.cholesky(k)
    except np.linalg.LinAlgError:
        return 1e10, np.zeros_like(v)
    alpha = cho_solve((chol, True), z)
    value = 0.5 * float(z @ alpha) + float(np.log(np.diag(chol)).sum()) + 0.5 * n * math.log(2 * math.pi)
    w = cho_solve((chol, True), np.eye(n)) - np.outer(alpha, alpha)   # d nll / dK = w / 2
    grad = np.empty_like(v)
    grad[:d] = 0.5 * np.einsum("ij,ijk->k", w * (signal * shared), per_dim)
    grad[d] = 0.5 * float(np.sum(w * (signal * corr)))
    grad[d + 1] = 0.5 * float(np.trace(w)) * noise
    penalty, penalty_grad = _length_penalty(v[:d])
    value += penalty
    grad[:d] += penalty_grad
    for i, (m, s) in ((d, _SIGNAL_PRIOR), (d + 1, _NOISE_PRIOR)):
        value += 0.5 * ((v[i] - m) / s) ** 2
        grad[i] += (v[i] - m) / s**2
    return value, grad


def fit_hyperparameters(x: np.ndarray, z: np.ndarray, start: Hyperparameters | None = None,
                        max_iterations: int = 80) -> Hyperparameters:
    """The maximum-a-posteriori hyperparameters for inputs ``x`` (n, d) and standardised outputs ``z`` (n,).

    Starts from ``start`` (the previous fit: successive fits differ by a point or two) and from the prior's centre,
    and keeps the better.
    """
    d = x.shape[1]
    diffs_sq = (x[:, None, :] - x[None, :, :]) ** 2
    bounds = [_LOG_LENGTH_BOUNDS] * d + [_LOG_SIGNAL_BOUNDS, _LOG_NOISE_BOUNDS]
    starts = [Hyperparameters.initial(d).vector()]
    if start is not None and start.log_lengths.shape == (d,):
        starts.insert(0, start.vector())
    best: tuple[float, np.ndarray] | None = None
    for v0 in starts:
        res = minimize(_neg_log_posterior, v0, args=(diffs_sq, z), jac=True, method="L-BFGS-B", bounds=bounds,
                       options={"maxiter": max_iterations})
        if best is None or res.fun < best[0]:
            best = (float(res.fun), res.x)
    assert best is not None
    return Hyperparameters.from_vector(best[1])


def spans_orders_of_magnitude(losses: np.ndarray) -> bool:
    """Whether losses (finite) are to be modelled on a log scale: all positive and spanning ``LOG_SPAN`` or more.
    One rule for ``bayes``'s plain GP and a re-tune's transfer model (``transfer_prior``): why, in
    ``bayes._standardised``."""
    return bool(len(losses)) and float(losses.min()) > 0 and float(losses.max()) >= LOG_SPAN * float(losses.min())


class Posterior:
    """The GP conditioned on ``x``, ``z`` under fixed hyperparameters."""

    def __init__(self, x: np.ndarray, z: np.ndarray, hyper: Hyperparameters) -> None:
        self.x = x
        self.hyper = hyper
        self._inv_lengths = np.exp(-hyper.log_lengths)
        self._signal = math.exp(hyper.log_signal)
        k = self._kernel(x, x)
        k[np.diag_indices(len(x))] += math.exp(hyper.log_noise) + JITTER
        jitter = JITTER
        while True:
            try:
                self._chol = np.linalg.cholesky(k)
                break
            except np.linalg.LinAlgError:  # near-duplicate points with tiny noise: add jitter until it factors
                jitter *= 10.0
                k[np.diag_indices(len(x))] += jitter
        self._alpha = cho_solve((self._chol, True), z)
        # Predictions multiply by the inverse factor: one small O(n^3) inversion here beats a triangular solve
        # per call, since a proposal scores candidates in many small batches.
        self._chol_inv = solve_triangular(self._chol, np.eye(len(x)), lower=True, check_finite=False)

    def _kernel(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        sa, sb = a * self._inv_lengths, b * self._inv_lengths
        sq = (sa * sa).sum(1)[:, None] + (sb * sb).sum(1)[None, :] - 2.0 * sa @ sb.T
        return self._signal * _matern(sq)[0]

    def mean(self, xq: np.ndarray) -> np.ndarray:
        """Posterior mean alone at rows of ``xq`` (a fraction of ``predict``'s cost)."""
        return self._kernel(xq, self.x) @ self._alpha

    def predict(self, xq: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and standard deviation of the latent function at rows of ``xq``."""
        ks = self._kernel(xq, self.x)
        mean = ks @ self._alpha
        v = self._chol_inv @ ks.T
        var = np.maximum(self._signal - (v * v).sum(0), 1e-12)
        return mean, np.sqrt(var)

    def leave_one_out(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each point's predictive mean and standard deviation from all the others (``z``: the values this
        posterior was conditioned on), in closed form from the inverse kernel matrix (Rasmussen and Williams,
        section 5.4.2)."""
        k_inv = self._chol_inv.T @ self._chol_inv
        diag = np.diag(k_inv)
        return z - (k_inv @ z) / diag, np.sqrt(1.0 / diag)


def log_expected_improvement(mean: np.ndarray, sd: np.ndarray, best: float) -> np.ndarray:
    """log E[max(best - f, 0)] for f ~ N(mean, sd²) (minimisation), accurate far into the tail.

    Plain EI underflows to 0 for every candidate once the model is confident, and then cannot rank them
    (Ament et al. 2023, "Unexpected Improvements to Expected Improvement").
    """
    u = (best - mean) / sd
    out = np.empty_like(u)
    mid = u > -25.0
    um = u[mid]
    out_mid = np.empty_like(um)
    pos = um > 0
    up, un = um[pos], um[~pos]
    out_mid[pos] = np.log(up * ndtr(up) + np.exp(-0.5 * up * up) / math.sqrt(2 * math.pi))
    # For u <= 0: EI / sd = phi(u) (1 + u Phi(u) / phi(u)), and Phi(u) / phi(u) = sqrt(pi / 2) erfcx(-u / sqrt 2)
    # stays accurate where Phi(u) itself underflows.
    ratio = un * math.sqrt(math.pi / 2) * erfcx(-un / math.sqrt(2))
    out_mid[~pos] = -0.5 * un * un - 0.5 * math.log(2 * math.pi) + np.log1p(np.maximum(ratio, -1 + 1e-16))
    out[mid] = out_mid
    ut = u[~mid]
    out[~mid] = -0.5 * ut * ut - 0.5 * math.log(2 * math.pi) - 2.0 * np.log(-ut)
    return out + np.log(sd)
