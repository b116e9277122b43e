#!/usr/bin/env python3
"""bench_sd.py: diffusers (PyTorch) side of bench/run_sd.sh: seconds per UNet step of the full-size SD 1.5
UNet at 512x512 (64x64 latents), batch 2 (classifier-free guidance), or one VAE decode of a 64x64 latent,
with random weights from tools/make_sd_bench_models.py. Prints one JSON line with the median time and the
process's peak RSS (run one measurement per process so the RSS belongs to it)."""
import argparse, json, resource, time
import torch

p = argparse.ArgumentParser()
p.add_argument("--what", choices=["unet", "vae"], required=True)
p.add_argument("--models", default="/tmp/deepc-sd-bench")
p.add_argument("--threads", type=int, default=2)
p.add_argument("--reps", type=int, default=3)
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.set_num_interop_threads(1)
from diffusers import UNet2DConditionModel, AutoencoderKL

times = []
with torch.no_grad():
    g = torch.Generator().manual_seed(0)
    if a.what == "unet":
        m = UNet2DConditionModel.from_pretrained(a.models + "/unet").eval()
        x = torch.randn(2, 4, 64, 64, generator=g)
        ctx = torch.randn(2, 77, 768, generator=g)
        t = torch.tensor([500, 500])
        fn = lambda: m(x, t, encoder_hidden_states=ctx).sample
    else:
        m = AutoencoderKL.from_pretrained(a.models + "/vae").eval()
        z = torch.randn(1, 4, 64, 64, generator=g)
        fn = lambda: m.decode(z).sample
    fn()  # warm-up
    for _ in range(a.reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
times.sort()
print(json.dumps({"what": a.what, "seconds": times[len(times) // 2],
                  "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
