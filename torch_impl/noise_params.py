"""Learning diffusion noise parameters (section 2.2, eqs. (101)-(114)) in PyTorch.

Everything is parameterized by omega = -log SNR (VDM's gamma): alpha_bar_t = sigmoid(-omega),
1 - alpha_bar_t = sigmoid(omega), so neither end of the schedule loses precision to 1 - x.
`LearnedNoiseSchedule` is VDM's monotone network (Kingma et al. 2021, appendix) with learnable
endpoints; `continuous_diffusion_loss` and `discrete_diffusion_loss` are VDM's diffusion
losses in the eps form, computed from the same schedule at T = oo or any finite T.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from udm import checks, register
from udm.torch_impl._tensors import check_broadcast, tensor_arg


def __getattr__(name: str):
    # removed: eq. (99)'s one weight is x_0_loss_weight, in the notation's spelling
    moved = {
        "x0_loss_weight": "udm.torch_impl.vdm.x_0_loss_weight (alpha_t, alpha_bar_t, alpha_bar_prev)"
    }
    why = f"was removed: use {moved[name]}" if name in moved else "does not exist"
    raise AttributeError(f"{__name__}.{name} {why}")


# --- eqs. (101)-(110): the x_0-loss weight as an SNR difference ----------------------------


@register(109)
def snr(*, alpha_bar_t) -> torch.Tensor:
    r"""Signal-to-noise ratio, eq. (109): :math:`\bar\alpha_t / (1 - \bar\alpha_t)`.

    Domain: 0 < alpha_bar_t < 1 (1 - alpha_bar_t is exact for alpha_bar_t >= 1/2).
    """
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit")
    return alpha_bar_t / (1 - alpha_bar_t)


@register(108)
def x0_loss_weight_from_alpha_bars(*, alpha_bar_prev, alpha_bar_t) -> torch.Tensor:
    r"""The x_0-loss weight as the right side of eq. (108): half the drop of
    :math:`\bar\alpha / (1 - \bar\alpha)` (the SNR) from step t - 1 to step t.

    :math:`\tfrac12\left(\frac{\bar\alpha_{t-1}}{1-\bar\alpha_{t-1}} -
    \frac{\bar\alpha_t}{1-\bar\alpha_t}\right) = \frac{\bar\alpha_{t-1} -
    \bar\alpha_t}{2(1-\bar\alpha_{t-1})(1-\bar\alpha_t)}`, the second form used: one
    subtraction of the inputs (exact when they are within a factor 2), instead of two SNRs
    that cancel when the steps are close. Domains: alpha_bar_prev, alpha_bar_t in (0, 1).
    """
    alpha_bar_prev = tensor_arg("alpha_bar_prev", alpha_bar_prev, "open_unit")
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit", like=alpha_bar_prev)
    check_broadcast(alpha_bar_prev=alpha_bar_prev, alpha_bar_t=alpha_bar_t)
    return 0.5 * (alpha_bar_prev - alpha_bar_t) / ((1 - alpha_bar_prev) * (1 - alpha_bar_t))


@register(110)
def x0_loss_weight_snr(*, snr_s, snr_t) -> torch.Tensor:
    r"""The x_0-loss weight as half the SNR drop, eq. (110): :math:`\tfrac12(\mathrm{SNR}(s) - \mathrm{SNR}(t))`, s = t - 1."""
    snr_s = tensor_arg("snr_s", snr_s, "positive")
    snr_t = tensor_arg("snr_t", snr_t, "positive", like=snr_s)
    check_broadcast(snr_s=snr_s, snr_t=snr_t)
    return 0.5 * (snr_s - snr_t)


@register(110, 111)
def x0_loss_weight_from_omega(*, omega_s, omega_t) -> torch.Tensor:
    r"""The weight of eq. (110) from omega = -log SNR (eq. (111)), without cancellation.

    :math:`\tfrac12(e^{-\omega_s} - e^{-\omega_t}) = \tfrac12 e^{-\omega_t}\,
    \mathrm{expm1}(\omega_t - \omega_s)`: accurate when the steps are close (large T).
    """
    omega_s = tensor_arg("omega_s", omega_s)
    omega_t = tensor_arg("omega_t", omega_t, like=omega_s)
    check_broadcast(omega_s=omega_s, omega_t=omega_t)
    return 0.5 * torch.exp(-omega_t) * torch.expm1(omega_t - omega_s)


# --- eqs. (111)-(114): SNR, alpha_bar and 1 - alpha_bar from omega ----------------------------


@register(111)
def snr_from_omega(*, omega) -> torch.Tensor:
    r"""SNR(t) = exp(-omega_eta(t)), eq. (111)."""
    return torch.exp(-tensor_arg("omega", omega))


@register(111, 112)
def omega_from_alpha_bar(*, alpha_bar_t) -> torch.Tensor:
    r"""omega = -log SNR = log(1 - alpha_bar_t) - log(alpha_bar_t), eqs. (111), (112).

    log1p(-alpha_bar_t) keeps full relative accuracy of 1 - alpha_bar_t near alpha_bar_t = 0.
    Domain: 0 < alpha_bar_t < 1.
    """
    alpha_bar_t = tensor_arg("alpha_bar_t", alpha_bar_t, "open_unit")
    return torch.log1p(-alpha_bar_t) - torch.log(alpha_bar_t)


@register(113)
def alpha_bar_from_omega(*, omega) -> torch.Tensor:
    r"""alpha_bar_t = sigmoid(-omega_eta(t)), eq. (113). Accurate to ~1 ulp for every omega."""
    return torch.sigmoid(-tensor_arg("omega", omega))


@register(114)
def one_minus_alpha_bar_from_omega(*, omega) -> torch.Tensor:
    r"""1 - alpha_bar_t = sigmoid(omega_eta(t)), eq. (114): no cancellation as alpha_bar_t -> 1."""
    return torch.sigmoid(tensor_arg("omega", omega))


# --- the learned monotone schedule (VDM) -----------------------------------------------------

_MIN_SLOPE = 1e-3  # lower bound of the linear term's weight: strict monotonicity for all params
_MIN_GAP = 1e-4  # omega_max - omega_min >= this: the schedule cannot collapse


def _inverse_softplus(y: float) -> float:
    return y + math.log(-math.expm1(-y))


@register(111, 113, 114)
class LearnedNoiseSchedule(torch.nn.Module):
    r"""Learned omega_eta(t) = -log SNR(t) on t in [0, 1], strictly increasing, eqs. (111), (113), (114).

    VDM's monotone network (Kingma et al. 2021): h(t) = w_1 t + (1/F) sum_j w_3j
    (2 sigmoid(w_2j (2t - 1) + b_2j) - 1) with positive weights (softplus of free parameters,
    w_1 >= 1e-3), rescaled to the learnable endpoints:
    omega(t) = omega_min + (omega_max - omega_min) (h(t) - h(0)) / (h(1) - h(0)), with
    omega_max = omega_min + softplus(raw_gap) + 1e-4. Hence omega(0) = omega_min,
    omega(1) = omega_max and omega'(t) > 0 for every parameter value.
    Shapes: t [B] (or any shape) in [0, 1]; outputs have t's shape. Parameters follow the
    module's dtype/device (`.to(...)`); float64 is recommended for the loss's derivative.
    """

    def __init__(
        self,
        omega_min: float = -13.3,
        omega_max: float = 5.0,
        hidden: int = 1024,
        *,
        dtype: torch.dtype | None = None,
        device=None,
    ):
        super().__init__()
        if not (math.isfinite(omega_min) and math.isfinite(omega_max)) or omega_max <= omega_min:
            raise ValueError(f"need finite omega_min < omega_max, got {omega_min}, {omega_max}")
        if isinstance(hidden, bool) or not isinstance(hidden, int) or hidden < 1:
            raise ValueError(f"hidden must be an int >= 1, got {hidden!r}")
        kw = {"dtype": dtype, "device": device}
        gap = max(omega_max - omega_min - _MIN_GAP, 1e-12)
        self.raw_omega_min = torch.nn.Parameter(torch.tensor(float(omega_min), **kw))
        self.raw_gap = torch.nn.Parameter(torch.tensor(_inverse_softplus(gap), **kw))
        self.raw_w1 = torch.nn.Parameter(torch.tensor(_inverse_softplus(1.0), **kw))
        self.raw_w2 = torch.nn.Parameter(torch.randn(hidden, **kw))
        self.b2 = torch.nn.Parameter(torch.randn(hidden, **kw))
        self.raw_w3 = torch.nn.Parameter(torch.randn(hidden, **kw))

    @property
    def omega_min(self) -> torch.Tensor:
        return self.raw_omega_min

    @property
    def omega_max(self) -> torch.Tensor:
        return self.raw_omega_min + F.softplus(self.raw_gap) + _MIN_GAP

    def _h_and_slope(self, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        w1 = F.softplus(self.raw_w1) + _MIN_SLOPE
        w2, w3 = F.softplus(self.raw_w2), F.softplus(self.raw_w3)
        z = (2 * t - 1).unsqueeze(-1) * w2 + self.b2  # [..., F]
        sig = torch.sigmoid(z)
        n = w2.shape[0]
        h = w1 * t + ((2 * sig - 1) * w3).sum(-1) / n
        # d/dt: w1 + (1/F) sum_j w3_j 2 sig'(z_j) 2 w2_j, sig' = sig (1 - sig)
        slope = w1 + (4 * sig * (1 - sig) * w2 * w3).sum(-1) / n
        return h, slope

    def _check_t(self, t) -> torch.Tensor:
        ref = self.raw_omega_min
        t = tensor_arg("t", t, like=ref)
        if checks.validate_args_enabled() and bool(((t < 0) | (t > 1)).any()):
            raise ValueError("t must lie in [0, 1] (continuous time)")
        return t.to(ref.dtype)

    def omega_and_derivative(self, t) -> tuple[torch.Tensor, torch.Tensor]:
        """(omega(t), d omega / dt), eqs. (111), (113), (114); the derivative in closed form."""
        t = self._check_t(t)
        h, slope = self._h_and_slope(t)
        ends, _ = self._h_and_slope(torch.tensor([0.0, 1.0], dtype=t.dtype, device=t.device))
        span = ends[1] - ends[0]
        gap = self.omega_max - self.omega_min
        return self.omega_min + gap * (h - ends[0]) / span, gap * slope / span

    def forward(self, t) -> torch.Tensor:
        """omega_eta(t) = -log SNR(t), eq. (111); alpha_bar_t = sigmoid(-omega) (eqs. (113), (114))."""
        return self.omega_and_derivative(t)[0]


# --- VDM's diffusion losses in the eps form ----------------------------------------------------


def _sq_err_per_sample(eps: torch.Tensor, eps_hat: torch.Tensor) -> torch.Tensor:
    if eps.shape != eps_hat.shape:
        raise ValueError(f"eps{tuple(eps.shape)} and eps_hat{tuple(eps_hat.shape)} must match")
    return (eps - eps_hat).square().flatten(1).sum(-1)


@register(110, 111)
def continuous_diffusion_loss(*, eps, eps_hat, domega_dt) -> torch.Tensor:
    r"""Continuous-time diffusion loss per sample (VDM), the T -> oo limit of eqs. (110), (111).

    :math:`\mathcal{L}_\infty = -\tfrac12 \mathrm{SNR}'(t)\lVert x_0 - \hat x_\theta\rVert^2
    = \tfrac12\,\omega'(t)\,\lVert\epsilon - \hat\epsilon_\theta\rVert^2` (one draw of
    t ~ U(0, 1)), since SNR' = -omega' SNR and SNR ||x_0 - x_hat||^2 = ||eps - eps_hat||^2.
    Shapes: eps, eps_hat [B, ...]; domega_dt [B] -> [B].
    """
    eps = tensor_arg("eps", eps)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=eps)
    domega_dt = tensor_arg("domega_dt", domega_dt, "positive", like=eps)
    return 0.5 * domega_dt * _sq_err_per_sample(eps, eps_hat)


@register(110, 111)
def discrete_diffusion_loss(*, eps, eps_hat, omega_s, omega_t, T: int) -> torch.Tensor:
    r"""Discrete-time diffusion loss per sample at any T from the same schedule, eqs. (110), (111).

    One draw of i ~ U{1..T}, t = i / T, s = (i - 1) / T:
    :math:`\tfrac{T}{2}(\mathrm{SNR}(s) - \mathrm{SNR}(t))\lVert x_0 - \hat x_\theta\rVert^2 =
    \tfrac{T}{2}\,\mathrm{expm1}(\omega_t - \omega_s)\,\lVert\epsilon - \hat\epsilon_\theta\rVert^2`
    (VDM eq. 12 in the eps form; expm1 keeps accuracy when omega_t - omega_s is tiny).
    Shapes: eps, eps_hat [B, ...]; omega_s, omega_t [B] -> [B].
    """
    if isinstance(T, bool) or not isinstance(T, int) or T < 1:
        raise ValueError(f"T must be an int >= 1, got {T!r}")
    eps = tensor_arg("eps", eps)
    eps_hat = tensor_arg("eps_hat", eps_hat, like=eps)
    omega_s = tensor_arg("omega_s", omega_s, like=eps)
    omega_t = tensor_arg("omega_t", omega_t, like=eps)
    check_broadcast(omega_s=omega_s, omega_t=omega_t)
    return 0.5 * T * torch.expm1(omega_t - omega_s) * _sq_err_per_sample(eps, eps_hat)


@register(113, 114)
def q_sample_from_omega(*, x_0, omega, eps) -> torch.Tensor:
    r"""x_t = sqrt(sigmoid(-omega)) x_0 + sqrt(sigmoid(omega)) eps, eqs. (113), (114).

    The forward sample with alpha_bar_t and 1 - alpha_bar_t from the learned schedule.
    Shapes: x_0, eps [B, ...]; omega broadcasts against x_0 (`append_dims` for a [B] vector).
    """
    x_0 = tensor_arg("x_0", x_0)
    eps = tensor_arg("eps", eps, like=x_0)
    omega = tensor_arg("omega", omega, like=x_0)
    check_broadcast(x_0=x_0, omega=omega, eps=eps)
    # sqrt(sigmoid(x)) = exp(logsigmoid(x) / 2): accurate when sigmoid underflows
    return torch.exp(0.5 * F.logsigmoid(-omega)) * x_0 + torch.exp(0.5 * F.logsigmoid(omega)) * eps
