"""What the discrete-time and continuous-time models share.

A network predicts one `target` (x0, eps, score or v); the others follow from it through the
noise level, given as log SNR (full accuracy at both ends, eqs. (115), (133), v form).
Classifier-free guidance (eq. (170)) and one sampler over a grid of noise levels serve both:
ancestral steps are draws from q(x_s | x_t, x_0 = x_0_hat) (eqs. (84), (85), (94)); DDIM
steps (eta = 0, Song et al. 2021) are the forward sample of eq. (69) at level s with the
predicted x_0 and eps in place of the true ones. Each subclass says how its time maps to a
noise level (`log_snr`) and which grid it samples on (`sampling_grid`).
"""

from __future__ import annotations

import torch
from torch import nn

import udm.torch_impl.guidance as G
import udm.torch_impl.interpretations as I
import udm.torch_impl.sampling as S
import udm.torch_impl.vdm as V
from udm import checks
from udm.model.progress import bar as progress_bar

TARGETS = ("x0", "eps", "score", "v")
SAMPLERS = ("ancestral", "ddim")
_PRED_NAME = {"x0": "x_0_hat", "eps": "eps_hat", "score": "score_hat", "v": "v_hat"}
_TO_X0 = {"eps": I.x_0_from_eps, "score": I.x_0_from_score, "v": I.x_0_from_v}


def repeat_labels(y: torch.Tensor | None, batch: torch.Tensor) -> torch.Tensor | None:
    """Labels [B] repeated to the K * B rows of a batch evaluated at K times (time-major)."""
    if y is None:
        return None
    return y.repeat(batch.shape[0] // y.shape[0])


class DenoisingModel(nn.Module):
    """A denoiser network predicting `target`; subclasses define `log_snr`, `network_time`,
    `sampling_grid`. `levels`: grey levels of discrete data (None: continuous data)."""

    T: int | None = None
    variance: str = "small"  # the reverse variance (discrete model: small, large, learned)

    def __init__(self, network: nn.Module, *, target: str, levels: int | None, num_classes: int):
        super().__init__()
        if target not in TARGETS:
            raise ValueError(f"target must be one of {', '.join(TARGETS)}, got {target!r}")
        self.network, self.target = network, target
        self.levels, self.num_classes = levels, num_classes

    # --- to be defined by the discrete / continuous model ---------------------------------

    def log_snr(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log SNR at times t ([B]), shaped to broadcast against x."""
        raise NotImplementedError

    def network_time(self, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The network's time input ([B], in [0, 1]) for times t."""
        raise NotImplementedError

    def sampling_grid(self, sampler: str, steps: int | None):
        """(times, log alpha_bar) of the grid, noisiest first, ending at the final level:
        times[i] are the model's times for steps i (len K), log_alpha_bar (float64, len K + 1)
        the levels they move between; log_alpha_bar[-1] is the level x is returned at."""
        raise NotImplementedError

    def finish(self, x: torch.Tensor, final_log_alpha_bar: torch.Tensor) -> torch.Tensor:
        """Map the sample at the final level to data space (identity at alpha_bar = 1)."""
        return x

    # --- predictions ----------------------------------------------------------------------

    def raw(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        """The network's output at times t ([B]): the prediction of `target`."""
        return self.raw_and_var(x_t, t, y)[0]

    def raw_and_var(self, x_t: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None):
        """(prediction of `target`, variance output or None): a learned-variance network
        returns twice the channels, the second half iDDPM's interpolation output."""
        out = self.network(x_t, self.network_time(t, x_t), y)
        if self.variance != "learned":
            return out, None
        mean, var_out = out.chunk(2, dim=1)
        return mean, var_out

    def step_log_var(self, var_out, log_var_small, log_beta) -> torch.Tensor:
        """log-variance of one reverse step between two grid levels: 'small' sigma_q^2,
        'large' the step's beta, 'learned' iDDPM's interpolation (subclasses that learn it)."""
        return log_beta if self.variance == "large" else log_var_small

    def x_0_hat(self, x_t, t, y=None, out=None, log_snr=None) -> torch.Tensor:
        """x_0 prediction, converted from the target by eqs. (115), (133) or the v form."""
        out = self.raw(x_t, t, y) if out is None else out
        if self.target == "x0":
            return out
        log_snr = self.log_snr(t, x_t) if log_snr is None else log_snr
        return _TO_X0[self.target](x_t=x_t, **{_PRED_NAME[self.target]: out}, log_snr=log_snr)

    def eps_hat(self, x_t, t, y=None, out=None, log_snr=None) -> torch.Tensor:
        """eps prediction, converted from the target (eqs. (115), (151), v form)."""
        out = self.raw(x_t, t, y) if out is None else out
        if self.target == "eps":
            return out
        log_snr = self.log_snr(t, x_t) if log_snr is None else log_snr
        if self.target == "score":
            return I.eps_from_score(score_hat=out, log_snr=log_snr)
        if self.target == "v":
            return I.eps_from_v(x_t=x_t, v_hat=out, log_snr=log_snr)
        return I.eps_from_x_0(x_t=x_t, x_0_hat=out, log_snr=log_snr)

    def score_hat(self, x_t, t, y=None) -> torch.Tensor:
        """Score prediction, eq. (151) from the eps prediction."""
        log_snr = self.log_snr(t, x_t)
        return I.score_from_eps(eps_hat=self.eps_hat(x_t, t, y, log_snr=log_snr), log_snr=log_snr)

    def guided_x_0(self, x_t, t, y, guidance_scale, log_snr) -> torch.Tensor:
        """x_0_hat, with classifier-free guidance (eq. (170)) when labels and a scale are given."""
        if y is None or guidance_scale is None:
            return self.x_0_hat(x_t, t, y, log_snr=log_snr)
        return cfg_x_0(
            x_t,
            self.eps_hat(x_t, t, None, log_snr=log_snr),
            self.eps_hat(x_t, t, y, log_snr=log_snr),
            guidance_scale,
            log_snr=log_snr,
        )

    # --- sampling -------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        n: int,
        *,
        sampler: str = "ancestral",
        steps: int | None = None,
        y: torch.Tensor | None = None,
        guidance_scale: float | None = None,
        clip: bool = False,
        generator: torch.Generator | None = None,
        device=None,
        dtype=torch.float32,
        progress: bool = False,
        validate_args: bool | None = None,
        eta: float = 0.0,
    ) -> torch.Tensor:
        """Draw n samples on the model's grid (`sampling_grid`), noisiest level first.

        'ancestral': x_s ~ q(x_s | x_t, x_0 = x_0_hat) between consecutive levels (eqs. (84),
        (85), (94)); 'ddim': x_s = sqrt(alpha_bar_s) x_0_hat + sqrt(1 - alpha_bar_s) eps_hat
        (eq. (69) with the predictions, DDIM's eta = 0). `guidance_scale`: classifier-free
        guidance gamma (eq. (170)) for labels y; `clip` clamps x_0_hat to [-1, 1] (image data).
        `eta` (DDIM only, in [0, 1]): DDIM's sigma_t = eta sqrt(sigma_q^2 between grid levels)
        (ddim.16); 0 is deterministic. The DDIM update is `udm.torch_impl.sampling.ddim_step`.
        Noise is drawn on the CPU `generator` (reproducible on any device). The loop makes no
        host synchronization once validate_args is off (per call, or udm.checks globally).
        """
        if sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
        if steps is not None and (
            isinstance(steps, bool) or not isinstance(steps, int) or steps < 1
        ):
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        if guidance_scale is not None and (y is None or not self.num_classes):
            raise ValueError("guidance_scale needs labels y and a class-conditional model")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0 <= eta <= 1:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        if eta and sampler != "ddim":
            raise ValueError("eta applies to the DDIM sampler only")
        validate = checks.validate_args_enabled() if validate_args is None else validate_args
        with checks.validate_args(validate):
            return self._sample(
                n, sampler, steps, y, guidance_scale, clip, generator, device, dtype, progress, eta
            )

    def _sample(
        self, n, sampler, steps, y, guidance_scale, clip, generator, device, dtype, progress, eta
    ):
        shape = (n, *self.network.shape)

        def noise():  # drawn on the CPU generator, then moved: reproducible on any device
            return torch.randn(shape, generator=generator, dtype=dtype).to(device)

        x = noise()
        if y is not None:
            y = torch.as_tensor(y, device=x.device).expand(n)
        times, log_ab = self.sampling_grid(sampler, steps)
        to_data = bool(log_ab[-1] == 0)  # the grid ends at alpha_bar = 1 (set up: one sync)
        log_ab = log_ab.to(device=x.device, dtype=torch.float64)
        # per-step coefficients, once, in float64 (then rounded once to the working dtype)
        post = V.posterior_coefficients(log_alpha_bar_t=log_ab[:-1], log_alpha_bar_prev=log_ab[1:])
        coef_x_t, coef_x_0 = post["coef_x_t"].to(dtype), post["coef_x_0"].to(dtype)
        # the step's beta = 1 - alpha_bar_t / alpha_bar_s and sigma_q^2 as logs; at the last
        # step to alpha_bar = 1 (var_q = 0, no noise is added) var_q's log is set to beta's
        log_beta = torch.log(-torch.expm1(log_ab[:-1] - log_ab[1:]))
        log_small = torch.where(post["var_q"] > 0, post["var_q"], log_beta.exp()).log()
        log_beta, log_small = log_beta.to(dtype), log_small.to(dtype)
        std = post["var_q"].sqrt().to(dtype)
        log_snr = (log_ab - torch.log(-torch.expm1(log_ab))).to(dtype)  # +inf at alpha_bar = 1
        for i in progress_bar(range(len(times)), enabled=progress, unit="step"):
            t = times[i].expand(n)
            var_out = None
            if self.variance == "learned" and sampler == "ancestral":
                out, var_out = self.raw_and_var(x, t, y)
            if var_out is not None and guidance_scale is None:
                x_0_hat = self.x_0_hat(x, t, y, out=out, log_snr=log_snr[i].expand_as(x))
            else:
                x_0_hat = self.guided_x_0(x, t, y, guidance_scale, log_snr[i].expand_as(x))
            if clip:
                x_0_hat = x_0_hat.clamp(-1, 1)
            to_x_0 = to_data and i == len(times) - 1  # var_q = 0, sqrt(1 - alpha_bar) = 0
            if sampler == "ancestral":
                x = coef_x_t[i] * x + coef_x_0[i] * x_0_hat
                if not to_x_0 and self.variance == "small":
                    x = x + std[i] * noise()
                elif not to_x_0:
                    log_var = self.step_log_var(var_out, log_small[i], log_beta[i])
                    x = x + torch.exp(0.5 * log_var) * noise()
            else:  # DDIM (ddim.12, ddim.16); at alpha_bar = 1 it returns x_0_hat
                eps_hat = I.eps_from_x_0(x_t=x, x_0_hat=x_0_hat, log_snr=log_snr[i].expand_as(x))
                x = S.ddim_step(
                    x_0_hat=x_0_hat,
                    eps_hat=eps_hat,
                    log_alpha_bar_t=log_ab[i],
                    log_alpha_bar_s=log_ab[i + 1],
                    eta=eta,
                    noise=noise() if eta else None,  # the last step adds 0 x noise
                )
        return self.finish(x, log_ab[-1]).to(dtype)


def cfg_x_0(x_t, eps_uncond, eps_cond, guidance_scale, **noise_level) -> torch.Tensor:
    """Classifier-free guidance (eq. (170)) on the scores of two eps predictions (eq. (151)),
    returned as x_0_hat (eq. (133)). noise_level: alpha_bar_t=... or log_snr=..."""
    score = I.score_from_eps(eps_hat=eps_uncond, **noise_level)
    score_cond = I.score_from_eps(eps_hat=eps_cond, **noise_level)
    guided = G.cfg_score(score=score, score_cond=score_cond, guidance_scale=guidance_scale)
    return I.x_0_from_score(x_t=x_t, score_hat=guided, **noise_level)
