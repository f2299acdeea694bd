"""The model people run: data, denoiser networks, training, sampling, checkpoints.

Built only from `torch_impl` formulas (no second copy of any equation). Imported lazily by
the `udm train|sample|elbo` commands, never by the registry.
"""
