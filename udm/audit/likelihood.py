"""`udm audit elbo`: the full-T negative ELBO (eq. (58)) in bits/dim of a user's network.

The quantity improved-diffusion's `calc_bpd_loop` reports: prior KL(q(x_T | x_0) || N(0, I))
+ sum over t = 2..T of the denoising KLs with matched variances (eqs. (92), (99)) + the
discretized Gaussian reconstruction term at t = 1, per image, divided by D log 2. Every term
is ours (`udm.torch_impl.vdm.vb_term`, `prior_kl_term`), on the 50-digit schedule the user's
scheduler config declares (rounded once to the working dtype). The network predicts eps (or
x_0 / v, per the config's prediction_type) from (x_t, timestep) with diffusers' 0-based
timestep i = t - 1.

Loading never unpickles arbitrary objects: a diffusers model folder (config.json plus
.safetensors weights), a .safetensors file, or a state dict read with `weights_only=True`,
with the network's class named as module:Class. A pickle that would run code is refused.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import numpy as np
import torch

from udm.audit import schedule as S
from udm.torch_impl import interpretations as I
from udm.torch_impl import vdm


class LoadError(ValueError):
    """A model, image set or scheduler that cannot be used (exit 2, one line)."""


# --- the schedule --------------------------------------------------------------------------


def _declared(sched) -> tuple[S.Declared, dict]:
    if isinstance(sched, str | Path):
        path = Path(sched)
        if path.is_dir():
            try:
                path = S._config_path(path)
            except S.AuditInputError as err:
                raise LoadError(str(err)) from err
        try:
            config = S._load_json(path)
        except S.AuditInputError as err:
            raise LoadError(str(err)) from err
    elif isinstance(sched, dict):
        config = sched
    else:
        config = dict(getattr(sched, "config", {}) or {})
    try:
        return S.declared_from_config(config), config
    except S.AuditInputError as err:
        raise LoadError(str(err)) from err


def verified_schedule(declared: S.Declared, dtype=torch.float64) -> vdm.Schedule:
    """Our `Schedule` built from the declared schedule's betas (50 digits, then float64)."""
    betas = np.array([float(b) for b in declared.betas()])
    if np.any(betas >= 1):
        raise LoadError(
            "the declared schedule has zero terminal SNR (beta_T = 1): the prior term and "
            "x_0 from eps at t = T are undefined; the ELBO needs alpha_bar_T > 0"
        )
    return vdm.Schedule(torch.from_numpy(betas), dtype=dtype)


# --- images --------------------------------------------------------------------------------


def load_images(path, channels: int | None = None) -> torch.Tensor:
    """8-bit images as float64 [N, C, H, W] scaled to [-1, 1] (k / 127.5 - 1)."""
    path = Path(path)
    if path.is_dir():
        from PIL import Image

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg"))
        if not files:
            raise LoadError(f"--images {path}: no .png / .jpg files in this folder")
        mode = "L" if channels == 1 else "RGB"
        arr = [np.asarray(Image.open(f).convert(mode)) for f in files]
        if len({a.shape for a in arr}) != 1:
            raise LoadError(f"--images {path}: images differ in size; resize them to one size")
        x = np.stack(arr)
        x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
        return torch.from_numpy(x.astype(np.float64) / 127.5 - 1.0)
    if path.suffix != ".npy" or not path.is_file():
        raise LoadError(f"--images {path}: need a .npy array [N, C, H, W] or a folder of images")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as err:
        raise LoadError(f"--images {path}: cannot read ({str(err).splitlines()[0]})") from err
    return images_tensor(x, channels, f"--images {path}")


def images_tensor(x, channels: int | None = None, name: str = "images") -> torch.Tensor:
    """uint8 images (any layout NCHW / NHWC), or floats on the 8-bit grid in [-1, 1]."""
    x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise LoadError(f"{name}: need shape [N, C, H, W] or [N, H, W, C], got {x.shape}")
    if x.shape[1] not in (1, 3, 4) and x.shape[-1] in (1, 3, 4):
        x = x.transpose(0, 3, 1, 2)
    if channels is not None and x.shape[1] != channels:
        raise LoadError(
            f"{name}: the model takes {channels} channels, the images have {x.shape[1]}"
        )
    if x.dtype == np.uint8:
        return torch.from_numpy(x.astype(np.float64) / 127.5 - 1.0)
    if x.dtype.kind != "f" or not np.all(np.isfinite(x)):
        raise LoadError(f"{name}: need uint8 images or finite floats in [-1, 1], got {x.dtype}")
    x = x.astype(np.float64)
    k = (x + 1) * 127.5
    if x.min() < -1 or x.max() > 1 or np.max(np.abs(k - np.round(k))) > 1e-4:
        raise LoadError(
            f"{name}: float images must be 8-bit levels k / 127.5 - 1 in [-1, 1] "
            "(the discretized decoder of eq. (58)); pass uint8 images instead"
        )
    return torch.from_numpy(np.round(k) / 127.5 - 1.0)


# --- the network ---------------------------------------------------------------------------


def _import_class(spec: str):
    if ":" not in spec:
        raise LoadError(f"--module must be module:Class, got {spec!r}")
    mod, _, cls = spec.partition(":")
    try:
        obj = getattr(importlib.import_module(mod), cls)
    except (ImportError, AttributeError) as err:
        raise LoadError(f"--module {spec}: cannot import ({err})") from err
    if not (isinstance(obj, type) and issubclass(obj, torch.nn.Module)):
        raise LoadError(f"--module {spec} is not a torch.nn.Module subclass")
    return obj


def read_state_dict(path) -> dict[str, torch.Tensor]:
    """Tensors from a .safetensors file or a torch file read with weights_only=True.
    A pickle that would run code (or hold anything but tensors) is refused."""
    path = Path(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as err:
            raise LoadError(f"{path}: not a readable safetensors file ({err})") from err
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        text = str(err)
        what = (
            "it is a pickle that would run code"
            if "GLOBAL" in text or "Unsupported" in text
            else "not a weights-only torch file"
        )
        raise LoadError(
            f"{path}: refused to load: {what}; save model.state_dict() with torch.save, or "
            "use safetensors"
        ) from err
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise LoadError(f"{path}: not a state dict (a dict of tensors)")
    return state


def load_model(path, module_class: str | None = None, module_kwargs: dict | None = None):
    """A diffusers model folder (config.json + .safetensors), or a state dict / safetensors
    file plus module:Class. Returns (module, its folder's config or None)."""
    path = Path(path)
    if not path.exists():
        raise LoadError(f"MODEL {path}: no such file or folder")
    if path.is_dir():
        if (path / "unet" / "config.json").is_file():
            path = path / "unet"
        cfg_path = path / "config.json"
        if not cfg_path.is_file():
            raise LoadError(f"MODEL {path}: a diffusers model folder needs config.json")
        if not any(path.glob("*.safetensors")):
            raise LoadError(
                f"MODEL {path}: no .safetensors weights (pickled .bin weights are not loaded)"
            )
        config = json.loads(cfg_path.read_text(encoding="utf-8"))
        try:
            import diffusers
        except ImportError as err:
            raise LoadError(
                "a diffusers model folder needs diffusers: pip install 'udm[audit]'"
            ) from err
        cls = getattr(diffusers, config.get("_class_name", "UNet2DModel"), None)
        if cls is None or not hasattr(cls, "from_pretrained"):
            raise LoadError(f"MODEL {path}: unknown model class {config.get('_class_name')!r}")
        try:
            return cls.from_pretrained(
                str(path), use_safetensors=True, low_cpu_mem_usage=False
            ), config
        except Exception as err:
            raise LoadError(
                f"MODEL {path}: diffusers cannot load it ({str(err).splitlines()[0]})"
            ) from err
    state = read_state_dict(path)
    if module_class is None:
        raise LoadError(
            f"MODEL {path} is a state dict: name its network with --module module:Class"
        )
    cls = _import_class(module_class)
    try:
        net = cls(**(module_kwargs or {}))
        net.load_state_dict(state)
    except (TypeError, RuntimeError) as err:
        raise LoadError(f"--module {module_class}: {str(err).splitlines()[0]}") from err
    return net, None


def _call(net, x_t: torch.Tensor, timestep: torch.Tensor) -> torch.Tensor:
    out = net(x_t, timestep)
    if hasattr(out, "sample"):
        out = out.sample
    elif isinstance(out, tuple):
        out = out[0]
    return out


# --- the bound -----------------------------------------------------------------------------


@torch.no_grad()
def elbo(
    model,
    images,
    scheduler,
    *,
    n: int | None = None,
    batch: int = 16,
    seed: int = 0,
    dtype=torch.float64,
    eps: torch.Tensor | None = None,
    levels: int = 256,
) -> dict:
    """Full-T negative ELBO in bits/dim of `model` (eps / x_0 / v prediction per the
    scheduler config's prediction_type, called as model(x_t, i) with i = t - 1) on 8-bit
    `images` ([N, C, H, W] uint8, or floats on the grid k / 127.5 - 1), with our terms.

    `scheduler`: a diffusers scheduler object, its config dict, or a config path. eps:
    optional noise [T, N, C, H, W] (default: drawn per batch, t = 1..T in order, from a
    generator seeded with `seed`). Returns bits_per_dim (mean over images), stderr (over
    images), per-image bits, terms [T] (mean L_t in bits/dim, t = 1..T), prior_bits_per_dim.
    """
    if isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    declared, config = _declared(scheduler)
    pt = config.get("prediction_type", "epsilon")
    if pt not in ("epsilon", "sample", "v_prediction"):
        raise LoadError(f"prediction_type {pt!r}: valid epsilon, sample, v_prediction")
    sched = verified_schedule(declared, dtype)
    x = images_tensor(images)
    if n is not None:
        x = x[:n]
    x = x.to(dtype)
    N, T = x.shape[0], sched.T
    dims = math.prod(x.shape[1:])
    if eps is not None and tuple(eps.shape) != (T, *x.shape):
        raise LoadError(f"eps must have shape {(T, *x.shape)}, got {tuple(eps.shape)}")
    net = model
    if isinstance(model, torch.nn.Module):
        first = next(iter(model.parameters()), None)
        if first is not None and first.dtype != dtype:
            net = model.to(dtype)
        net.eval()
    gen = torch.Generator().manual_seed(seed)
    terms = torch.zeros(N, T, dtype=torch.float64)
    prior = torch.zeros(N, dtype=torch.float64)
    ab_T = sched.coefficients(dtype)["alpha_bar_t"][-1]
    for lo in range(0, N, batch):
        x0 = x[lo : lo + batch]
        B = x0.shape[0]
        for t_val in range(1, T + 1):
            e = (
                eps[t_val - 1, lo : lo + B].to(dtype)
                if eps is not None
                else torch.randn(x0.shape, generator=gen, dtype=dtype)
            )
            t = torch.full((B,), t_val, dtype=torch.long)
            x_t = sched.q_sample(x_0=x0, t=t, eps=e)
            out = _call(net, x_t, t - 1).to(dtype)
            ab = sched.gather("alpha_bar_t", t, x_t)
            if pt == "epsilon":
                x0_hat = I.x_0_from_eps(x_t=x_t, eps_hat=out, alpha_bar_t=ab)
            elif pt == "sample":
                x0_hat = out
            else:
                x0_hat = I.x_0_from_v(x_t=x_t, v_hat=out, alpha_bar_t=ab)
            terms[lo : lo + B, t_val - 1] = vdm.vb_term(
                sched, x_0=x0, x_t=x_t, x_0_hat=x0_hat, t=t, levels=levels
            ).double()
        prior[lo : lo + B] = vdm.prior_kl_term(x_0=x0, alpha_bar_t=ab_T).flatten(1).sum(1).double()
    scale = dims * math.log(2)
    bits = (terms.sum(1) + prior) / scale
    return {
        "n": N,
        "T": T,
        "dims": dims,
        "declared": declared.describe(),
        "prediction_type": pt,
        "dtype": str(dtype).replace("torch.", ""),
        "bits_per_dim": float(bits.mean()),
        "stderr_bits_per_dim": float(bits.std(correction=1) / math.sqrt(N)) if N > 1 else math.nan,
        "nll_nats": float(bits.mean() * scale),
        "prior_bits_per_dim": float(prior.mean() / scale),
        "reconstruction_bits_per_dim": float(terms[:, 0].mean() / scale),
        "per_image_bits_per_dim": bits.tolist(),
        "terms": (terms.mean(0) / scale).numpy(),
    }


def elbo_from_files(
    model_path,
    images_path,
    *,
    scheduler_source=None,
    module_class=None,
    module_kwargs=None,
    n=None,
    batch=16,
    seed=0,
    dtype="float32",
) -> dict:
    net, config = load_model(model_path, module_class, module_kwargs)
    if scheduler_source is None:
        mp = Path(model_path)
        for cand in (mp / "scheduler", mp.parent / "scheduler", mp):
            if (cand / "scheduler_config.json").is_file():
                scheduler_source = cand
                break
        else:
            raise LoadError(
                "--scheduler is required: no scheduler/scheduler_config.json next to MODEL"
            )
    channels = (config or {}).get("in_channels")
    x = load_images(images_path, channels)
    result = elbo(net, x, scheduler_source, n=n, batch=batch, seed=seed, dtype=dtype)
    result["model"] = str(model_path)
    result["images"] = str(images_path)
    return result


def render(r: dict) -> str:
    se = r["stderr_bits_per_dim"]
    return "\n".join(
        [
            f"udm audit elbo: {r.get('model', 'model')} on {r.get('images', 'images')}",
            f"schedule: {r['declared']}; prediction_type {r['prediction_type']}; {r['dtype']}",
            f"-ELBO = {r['bits_per_dim']:.4f} +- {se:.4f} bits/dim (n = {r['n']}, T = {r['T']}, "
            f"D = {r['dims']})",
            f"  prior KL(q(x_T | x_0) || N(0, I)): {r['prior_bits_per_dim']:.3g} bits/dim",
            f"  reconstruction -log p(x_0 | x_1):   {r['reconstruction_bits_per_dim']:.4g} bits/dim",
            f"  denoising KLs, t = 2..T:           {float(np.sum(r['terms'][1:])):.4g} bits/dim",
        ]
    )


def plot_terms(r: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    t = np.arange(1, r["T"] + 1)
    ax.plot(t, np.maximum(r["terms"], 1e-12), lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("t")
    ax.set_ylabel("L_t (bits/dim)")
    ax.set_title(
        f"-ELBO = {r['bits_per_dim']:.4f} bits/dim; prior {r['prior_bits_per_dim']:.2g}", fontsize=9
    )
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


__all__ = ["LoadError", "elbo", "elbo_from_files", "load_model", "read_state_dict"]
