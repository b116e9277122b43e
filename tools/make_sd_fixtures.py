#!/usr/bin/env python3
"""make_sd_fixtures.py: small random-weight Stable-Diffusion-style pipeline and UNet2DModel, with
reference outputs from diffusers / transformers, for tests/test_sd.c.

Writes tests/fixtures/sd/:
  tiny_pipe/        a diffusers folder (model_index.json, scheduler/, text_encoder/, tokenizer/,
                    unet/, vae/): CLIP text encoder (2 layers, hidden 32, vocab 1000 cut from the real
                    CLIP vocabulary), UNet2DConditionModel (16, 32) with CrossAttnDown/Down/Up/CrossAttnUp,
                    AutoencoderKL (16, 32) with its weights stored as F16 (the 16-bit loading path)
  tiny_unet2d/      a class-conditional UNet2DModel (DownBlock2D, AttnDownBlock2D, ...)
  ref.safetensors   token ids, text-encoder states, UNet noise predictions at 3 timesteps, VAE decode and
                    encode, UNet2DModel outputs, torch.randn latents, and 3-step pipeline images for each
                    scheduler (txt2img with negative prompt and guidance) and one img2img run.

Run (needs diffusers 0.27 + transformers 4.38 beside Debian's torch 1.13; see bench/README.md):
  /usr/bin/python3 -m venv --system-site-packages /work/venv-sd
  /work/venv-sd/bin/pip install diffusers==0.27.2 transformers==4.38.2 huggingface_hub==0.23.4 "tokenizers<0.19" "numpy<2" accelerate==0.27.2
  /work/venv-sd/bin/python tools/make_sd_fixtures.py
"""
import json, os, shutil, sys
import numpy as np
import torch
from safetensors.torch import save_file, load_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "sd")
SD_CONFIGS = os.path.join(ROOT, "..", "shared", "models", "stable-diffusion-v1-5-configs")
torch.set_num_threads(2)

from diffusers import (UNet2DConditionModel, UNet2DModel, AutoencoderKL, StableDiffusionPipeline,
                       StableDiffusionImg2ImgPipeline, PNDMScheduler, DDIMScheduler, DDPMScheduler,
                       EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
                       DPMSolverMultistepScheduler)
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

VOCAB = 1000


def tiny_tokenizer(dst):
    """The first 998 ids of the real CLIP vocabulary (256 bytes, 256 bytes+</w>, 486 merges) plus
    <|startoftext|> = 998 and <|endoftext|> = 999: a consistent CLIP BPE of 1000 tokens."""
    os.makedirs(dst, exist_ok=True)
    src = os.path.join(SD_CONFIGS, "tokenizer")
    vocab = json.load(open(os.path.join(src, "vocab.json"), encoding="utf-8"))
    small = {t: i for t, i in vocab.items() if i < VOCAB - 2}
    small["<|startoftext|>"] = VOCAB - 2
    small["<|endoftext|>"] = VOCAB - 1
    json.dump(small, open(os.path.join(dst, "vocab.json"), "w", encoding="utf-8"), ensure_ascii=False)
    lines = open(os.path.join(src, "merges.txt"), encoding="utf-8").read().split("\n")
    n_merges = VOCAB - 2 - 512
    open(os.path.join(dst, "merges.txt"), "w", encoding="utf-8").write("\n".join(lines[: 1 + n_merges]) + "\n")
    for f in ("tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(os.path.join(src, f), os.path.join(dst, f))


def main():
    pipe_dir = os.path.join(OUT, "tiny_pipe")
    if os.path.isdir(pipe_dir):
        shutil.rmtree(pipe_dir)
    os.makedirs(pipe_dir)
    tiny_tokenizer(os.path.join(pipe_dir, "tokenizer"))
    tok = CLIPTokenizer.from_pretrained(os.path.join(pipe_dir, "tokenizer"))

    torch.manual_seed(0)
    te = CLIPTextModel(CLIPTextConfig(vocab_size=VOCAB, hidden_size=32, intermediate_size=37,
                                      num_hidden_layers=2, num_attention_heads=4,
                                      max_position_embeddings=77, hidden_act="quick_gelu",
                                      bos_token_id=VOCAB - 2, eos_token_id=VOCAB - 1, pad_token_id=1)).eval()
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, layers_per_block=1,
                                block_out_channels=(16, 32), norm_num_groups=8, cross_attention_dim=32,
                                attention_head_dim=2,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D")).eval()
    vae = AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=1,
                        block_out_channels=(16, 32), norm_num_groups=8, sample_size=32,
                        down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2).eval()
    # random weights are small; scale the UNet's so noise predictions are not near zero
    with torch.no_grad():
        for p in list(unet.parameters()) + list(vae.parameters()):
            p.add_(torch.randn_like(p) * 0.05)
        # F16-stored VAE: make the F32 model equal to its F16 rounding so both sides compute the same
        for p in vae.parameters():
            p.copy_(p.half().float())
    sched = PNDMScheduler.from_pretrained(os.path.join(SD_CONFIGS, "scheduler"))
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet, scheduler=sched,
                                   safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(pipe_dir, safe_serialization=True)
    # the real SD 1.5 scheduler config (no timestep_spacing key: Euler / DPM-Solver use their
    # "linspace" default, PNDM / DDIM / DDPM "leading"), as a downloaded pipeline has it
    shutil.copy(os.path.join(SD_CONFIGS, "scheduler", "scheduler_config.json"),
                os.path.join(pipe_dir, "scheduler", "scheduler_config.json"))
    # the VAE as F16 only
    vdir = os.path.join(pipe_dir, "vae")
    sd = load_file(os.path.join(vdir, "diffusion_pytorch_model.safetensors"))
    os.remove(os.path.join(vdir, "diffusion_pytorch_model.safetensors"))
    save_file({k: v.half() for k, v in sd.items()}, os.path.join(vdir, "diffusion_pytorch_model.fp16.safetensors"))
    pipe.set_progress_bar_config(disable=True)

    ref = {}
    prompt, negative = "a photo of a red shoe", "blurry"
    ids = tok([prompt, negative, ""], padding="max_length", max_length=77, truncation=True,
              return_tensors="pt").input_ids
    ref["tokens"] = ids.to(torch.int64)
    with torch.no_grad():
        ref["text_states"] = te(ids)[0]
        g = torch.Generator().manual_seed(1)
        lat = torch.randn(2, 4, 16, 16, generator=g)
        ref["unet_in"] = lat
        for t in (999, 500, 1):
            ref[f"unet_out_t{t}"] = unet(lat, t, encoder_hidden_states=ref["text_states"][:2]).sample
        ref["vae_latents"] = lat.clone()
        ref["vae_decoded"] = vae.decode(lat / vae.config.scaling_factor).sample
        img = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
        ref["vae_image"] = img
        ref["vae_encoded_mean"] = vae.encode(img).latent_dist.mean
        # torch-compatible initial noise: torch.randn with a CPU generator seeded 42
        ref["randn_seed42"] = torch.randn(1, 4, 64, 64, generator=torch.Generator().manual_seed(42))

    scheds = {
        "pndm": PNDMScheduler.from_config(sched.config),
        "ddim": DDIMScheduler.from_config(sched.config),
        "ddpm": DDPMScheduler.from_config(sched.config),
        "euler": EulerDiscreteScheduler.from_config(sched.config),
        "euler-a": EulerAncestralDiscreteScheduler.from_config(sched.config),
        "dpmpp-2m": DPMSolverMultistepScheduler.from_config(sched.config, algorithm_type="dpmsolver++", solver_order=2),
        "dpmpp-2m-karras": DPMSolverMultistepScheduler.from_config(sched.config, algorithm_type="dpmsolver++",
                                                                   solver_order=2, use_karras_sigmas=True),
    }
    for name, s in scheds.items():
        pipe.scheduler = s
        out = pipe(prompt, negative_prompt=negative, num_inference_steps=3, guidance_scale=7.5, height=32,
                   width=32, generator=torch.Generator().manual_seed(0), output_type="np").images
        ref[f"image_{name}"] = torch.from_numpy(out.copy())
        print(name, "timesteps", s.timesteps.tolist())
    # two images per prompt, no negative prompt, euler
    pipe.scheduler = scheds["ddim"]
    out = pipe(prompt, num_inference_steps=3, guidance_scale=5.0, height=32, width=32, num_images_per_prompt=2,
               generator=torch.Generator().manual_seed(3), output_type="np").images
    ref["image_ddim_x2"] = torch.from_numpy(out.copy())
    # img2img through the VAE encoder (latent_dist.sample uses the generator)
    i2i = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=te, tokenizer=tok, unet=unet,
                                         scheduler=DDIMScheduler.from_config(sched.config), safety_checker=None,
                                         feature_extractor=None, requires_safety_checker=False)
    i2i.set_progress_bar_config(disable=True)
    init = (ref["vae_image"][0].permute(1, 2, 0).numpy() + 1) / 2  # HWC in [0, 1]
    from PIL import Image
    init_u8 = (init * 255).round().astype(np.uint8)
    Image.fromarray(init_u8).save(os.path.join(OUT, "init.png"))
    out = i2i(prompt, image=Image.fromarray(init_u8), strength=0.75, num_inference_steps=4, guidance_scale=7.5,
              generator=torch.Generator().manual_seed(5), output_type="np").images
    ref["image_img2img"] = torch.from_numpy(out.copy())

    # class-conditional UNet2DModel
    torch.manual_seed(1)
    u2 = UNet2DModel(sample_size=12, in_channels=1, out_channels=1, layers_per_block=1,
                     block_out_channels=(16, 32, 32), norm_num_groups=8, attention_head_dim=8,
                     down_block_types=("DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
                     up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D"), num_class_embeds=11).eval()
    with torch.no_grad():
        for p in u2.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    u2dir = os.path.join(OUT, "tiny_unet2d")
    u2.save_pretrained(u2dir, safe_serialization=True)
    with torch.no_grad():
        x = torch.randn(3, 1, 12, 12, generator=g)
        ref["unet2d_in"] = x
        ref["unet2d_out"] = u2(x, torch.tensor([999, 10, 500]), class_labels=torch.tensor([0, 10, 7])).sample

    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(OUT, "ref.safetensors"),
              metadata={"prompt": prompt, "negative": negative})
    for f in ("model_index.json",):
        print(open(os.path.join(pipe_dir, f)).read())
    total = 0
    for d, _, fs in os.walk(OUT):
        for f in fs:
            total += os.path.getsize(os.path.join(d, f))
    print("fixtures: %.2f MB" % (total / 1e6))


if __name__ == "__main__":
    main()
