#!/usr/bin/env python3
"""make_sd_bench_models.py: full-size Stable Diffusion 1.5 UNet and VAE with random weights, from the real
configs in ../shared/models/stable-diffusion-v1-5-configs, for bench/run_sd.sh (speed and memory; real SD
weights cannot be had here). Writes OUT/unet/{config.json, diffusion_pytorch_model.safetensors} (3.4 GB)
and OUT/vae/... (335 MB), F32, plus OUT/unet-fp16/ with the UNet as F16 (the 16-bit weight option).

  /work/venv-sd/bin/python tools/make_sd_bench_models.py [OUT]      # default OUT: /tmp/deepc-sd-bench
"""
import os, shutil, sys
import torch
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CFG = os.path.join(ROOT, "..", "shared", "models", "stable-diffusion-v1-5-configs")
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/deepc-sd-bench"

from diffusers import UNet2DConditionModel, AutoencoderKL

torch.manual_seed(0)
if not os.path.exists(os.path.join(OUT, "unet", "diffusion_pytorch_model.safetensors")):
    unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(os.path.join(CFG, "unet")))
    unet.save_pretrained(os.path.join(OUT, "unet"), safe_serialization=True)
    os.makedirs(os.path.join(OUT, "unet-fp16"), exist_ok=True)
    shutil.copy(os.path.join(OUT, "unet", "config.json"), os.path.join(OUT, "unet-fp16", "config.json"))
    save_file({k: v.half().contiguous() for k, v in unet.state_dict().items()},
              os.path.join(OUT, "unet-fp16", "diffusion_pytorch_model.fp16.safetensors"))
    del unet
if not os.path.exists(os.path.join(OUT, "vae", "diffusion_pytorch_model.safetensors")):
    vae = AutoencoderKL.from_config(AutoencoderKL.load_config(os.path.join(CFG, "vae")))
    vae.save_pretrained(os.path.join(OUT, "vae"), safe_serialization=True)
print(OUT)
