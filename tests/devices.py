"""Devices the torch tests run on: CPU always, CUDA where torch finds it."""

import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
