"""`udm train`: the training loop (single process, or DistributedDataParallel under torchrun).

Randomness is drawn for the *global* batch from one seeded generator on every rank and
sliced by rank, so N processes compute exactly the loss of one process on the combined batch.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from pathlib import Path

import torch
from tqdm import tqdm

from udm.model import checkpoint, data
from udm.model.base import DenoisingModel
from udm.model.config import Config
from udm.model.continuous import ContinuousDiffusionModel
from udm.model.diffusion import DiffusionModel


def _dist_info() -> tuple[int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    return rank, world


def _init_distributed(device: torch.device) -> tuple[int, int]:
    rank, world = _dist_info()
    if world > 1 and not torch.distributed.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        torch.distributed.init_process_group(backend)
    return rank, world


def resolve_device(name: str) -> torch.device:
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} requested but CUDA is not available here")
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
    return device


def build(config: Config, dataset: data.Dataset, device=None, dtype=None) -> DenoisingModel:
    """The model of `config`: discrete time, or continuous time for the learned schedule."""
    kind = ContinuousDiffusionModel if config.schedule == "learned" else DiffusionModel
    return kind.from_config(config, dataset).to(device=device, dtype=dtype)


def train(config: Config, resume: bool = False, progress: bool = True) -> Path:
    """Train per `config`; returns the path of the final checkpoint (out/model.pt)."""
    config.validate()
    # a user's data is recorded by absolute path and content hash: `udm elbo` finds it from
    # any folder and refuses data that changed since training
    config = dataclasses.replace(config, data=data.resolve(config.data))
    device, dtype = resolve_device(config.device), getattr(torch, config.dtype)
    rank, world = _init_distributed(device)
    if config.batch_size % world:
        raise ValueError(f"batch_size {config.batch_size} must divide by the {world} processes")
    out = Path(config.out)
    ckpt_path = out / "model.pt"
    dataset = data.load(config.data, config.n_train, seed=config.seed)
    config.data_sha256 = data.fingerprint(config.data)
    torch.manual_seed(config.seed)  # identical initial weights on every rank
    model = build(config, dataset, device, dtype)
    optim = torch.optim.Adam(model.parameters(), lr=config.lr)
    ema = checkpoint.EMA(model, config.ema_decay)
    gen = torch.Generator().manual_seed(config.seed + 1)
    step, history = 0, []
    if resume:
        saved = checkpoint.load(ckpt_path, map_location=device)
        checkpoint.check_same_config(  # a key an older checkpoint lacks has its default
            {**Config().to_dict(), **saved["config"]},
            config.to_dict(),
            tuple(config.model_settings()),
        )
        model.load_state_dict(saved["model"])
        optim.load_state_dict(saved["optim"])
        ema.load_state_dict(saved["ema"])
        gen.set_state(saved["rng"])
        step, history = int(saved["step"]), json.loads(saved["history"])
    elif ckpt_path.exists() and rank == 0:
        raise FileExistsError(f"{ckpt_path} exists: pass --resume to continue it or choose --out")
    ddp_model = model
    if world > 1:
        ddp_model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    x_all = dataset.x.to(device=device, dtype=dtype)
    y_all = dataset.y.to(device) if (config.conditional and dataset.y is not None) else None
    shard = slice(rank * config.batch_size // world, (rank + 1) * config.batch_size // world)
    snap_every = max(1, config.steps // 4)
    snapshots: list = []
    bar = tqdm(
        total=config.steps,
        initial=step,
        disable=None if (progress and rank == 0) else True,  # None: only on a terminal
        dynamic_ncols=True,
        unit="step",
    )
    start = time.perf_counter()
    while step < config.steps:
        idx = torch.randint(len(x_all), (config.batch_size,), generator=gen)[shard]
        noise = model.draw_training_noise(config.batch_size, gen)
        x_0 = x_all[idx.to(device)]
        y = y_all[idx.to(device)] if y_all is not None else None
        if y is not None and config.p_uncond > 0:
            drop = noise["u"][shard].to(device) < config.p_uncond
            y = torch.where(drop, torch.full_like(y, dataset.num_classes), y)
        t = noise["t"][shard].to(device)
        eps = noise["eps"][shard].to(device=device, dtype=dtype).view_as(x_0)
        loss = ddp_model(x_0, t, eps, y).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        ema.update(model)
        step += 1
        if step % config.log_every == 0 or step == config.steps:
            value = loss.detach()
            if world > 1:
                torch.distributed.all_reduce(value)
                value /= world
            history.append((step, float(value)))
            rate = (step - (history[0][0] if resume else 0)) / max(
                time.perf_counter() - start, 1e-9
            )
            bar.set_postfix(
                loss=f"{float(value):.4f}", samples_per_s=f"{rate * config.batch_size:.0f}"
            )
        bar.update(1)
        if config.plot and rank == 0 and step % snap_every == 0:
            snapshots.append((step, _snapshot(model, ema, dataset, device, dtype)))
    bar.close()
    bad = [name for name, p in model.named_parameters() if not bool(p.isfinite().all())]
    if bad:  # a diverged run: never write weights that every later command would refuse
        raise ValueError(
            f"training diverged: non-finite weights after step {step} ({bad[0]}, ...); "
            f"try a smaller --lr than {config.lr}"
        )
    if rank == 0:
        checkpoint.save(
            ckpt_path,
            model=model.state_dict(),
            ema=ema.state_dict(),
            optim=optim.state_dict(),
            rng=gen.get_state(),
            step=step,
            config=config.to_dict(),
            history=json.dumps(history),
        )
        if config.plot:
            from udm.model import plots

            plots.training_report(out, model, ema, dataset, history, device, dtype, snapshots)
    if world > 1:
        torch.distributed.barrier()
    return ckpt_path


def _snapshot(model: DenoisingModel, ema: checkpoint.EMA, dataset: data.Dataset, device, dtype):
    """Samples of the moving-average weights (those a checkpoint is sampled with), for the
    samples-over-training figure."""
    import copy

    from udm.model import plots

    model_ema = copy.deepcopy(model)
    model_ema.load_state_dict(ema.state_dict())
    model_ema.eval()
    return plots.sample_preview(
        model_ema, dataset, device, dtype, n=200 if dataset.dims <= 2 else 16
    )
