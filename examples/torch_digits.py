#!/usr/bin/env python3
"""Train a spiking network on sklearn's digits in PyTorch, deploy it on the
chip with write-verify, and compare accuracy before and after deployment.

    .venv/bin/python examples/torch_digits.py                     # model backend, 32x32
    .venv/bin/python examples/torch_digits.py --geometry 16x16x3  # three stacked layers
    .venv/bin/python examples/torch_digits.py --backend emulator  # the firmware in QEMU
    .venv/bin/python examples/torch_digits.py --hil 2             # then 2 epochs in the loop

The 8x8 images are pooled to the array's inputs (32: pairs of pixels; 16: 2x2
blocks) and rate-coded into binary spikes over --steps time steps with a fixed
seed, so the simulation and the chip see the same spikes. The class is the
output neuron with the most spikes (ties: the higher final membrane)."""
from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from spikeboard.backends import open_backend
from spikeboard.loop import decide, predict
from spikeboard.torch import ChipConfig, ChipNet, HardwareLoop, count_loss, deploy


def encode(images: np.ndarray, inputs: int, steps: int, seed: int) -> np.ndarray:
    """(N, 64) pixels 0..16 -> (N, steps, inputs) uint8 spikes."""
    img = images.reshape(-1, 8, 8) / 16.0
    if inputs == 32:
        feat = img.reshape(-1, 8, 4, 2).mean(-1).reshape(-1, 32)
    elif inputs == 16:
        feat = img.reshape(-1, 4, 2, 4, 2).mean((2, 4)).reshape(-1, 16)
    else:
        raise SystemExit(f"no pooling for {inputs} inputs")
    rng = np.random.default_rng(seed)
    return (rng.random((len(feat), steps, inputs)) < feat[:, None, :]).astype(np.uint8)


CLASSES = np.arange(10)          # class k is read from output neuron k


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backend", default="model", help="model, emulator or serial")
    ap.add_argument("--port", default=None, help="serial port or socket URL (serial, running emulator)")
    ap.add_argument("--card", default="spec")
    ap.add_argument("--geometry", default="32x32", choices=["32x32", "16x16x3"])
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--hil", type=int, default=0, help="hardware-in-the-loop epochs after deployment")
    ap.add_argument("--hil-mode", default="pulse", choices=["pulse", "reprogram"])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args(argv)
    torch.manual_seed(a.seed)

    if a.geometry == "32x32":
        cfg = ChipConfig.from_card(a.card, "32x32", differential=True)
        sizes = [32, 10]
    else:
        cfg = ChipConfig.from_card(a.card, "16x16x3", differential=False, neuron={"threshold": 1.0})
        sizes = [16, 16, 16, 10]
    d = load_digits()
    xtr, xte, ytr, yte = train_test_split(d.data, d.target, test_size=0.25, random_state=0, stratify=d.target)
    Xtr = torch.as_tensor(encode(xtr, sizes[0], a.steps, 1), dtype=torch.float32)
    Xte = encode(xte, sizes[0], a.steps, 2)
    Ytr = torch.as_tensor(ytr)

    net = ChipNet(cfg, sizes, init_scale=1.0)
    opt = torch.optim.Adam(net.parameters(), lr=0.02)
    t0 = time.time()
    for ep in range(a.epochs):
        net.train()
        perm = torch.randperm(len(Xtr))
        tot = 0.0
        for i in range(0, len(perm), 64):
            idx = perm[i:i + 64]
            loss = count_loss(net(Xtr[idx]), Ytr[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            tot += float(loss.detach()) * len(idx)
        if not a.json:
            print(f"epoch {ep + 1:2d}/{a.epochs}: loss {tot / len(Xtr):.3f}", flush=True)
    train_s = time.time() - t0

    # before deployment: the exact chip arithmetic on the ideal conductances
    net.eval()
    with torch.no_grad():
        f = net(torch.as_tensor(Xte)).numpy()
    acc_sim = float(np.mean(decide(f, net.v.numpy(), CLASSES, net.config.v_th) == yte))

    be = open_backend(a.backend, port=a.port)
    try:
        rep = deploy(net, be)
        fires, v = be.infer_batch(net.pad_input(Xte))     # the spikes, for the bit-exact check below
        acc_chip = float(np.mean(predict(be, net.pad_input(Xte), CLASSES) == yte))
        # the model with the read-back conductances mirrors the chip bit for bit
        with torch.no_grad():
            f2 = net(torch.as_tensor(Xte)).numpy()
        exact = bool(np.array_equal(f2.astype(np.uint8), fires[..., :10]))
        acc_hil = None
        if a.hil:
            loop = HardwareLoop(net, be, torch.optim.SGD(net.parameters(), lr=0.02), mode=a.hil_mode, deploy_first=False)
            for _ in range(a.hil):
                perm = torch.randperm(len(Xtr))
                for i in range(0, len(perm), 64):
                    idx = perm[i:i + 64]
                    loop.step(Xtr[idx], Ytr[idx])
            acc_hil = float(np.mean(predict(be, net.pad_input(Xte), CLASSES) == yte))
    finally:
        be.close()

    out = {"backend": a.backend, "card": a.card, "geometry": a.geometry, "sizes": sizes, "steps": a.steps,
           "test_samples": len(yte), "accuracy_before_deploy": acc_sim, "accuracy_on_chip": acc_chip,
           "accuracy_after_hil": acc_hil, "eval_mode_bit_exact": exact, "train_s": round(train_s, 1),
           "deploy": rep.as_dict()}
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        print(rep)
        print(f"accuracy before deployment (simulated, ideal conductances): {acc_sim:.3f}")
        print(f"accuracy on the chip ({a.backend} backend, {a.geometry}):          {acc_chip:.3f}")
        if acc_hil is not None:
            print(f"accuracy after {a.hil} hardware-in-the-loop epoch(s) ({a.hil_mode}):  {acc_hil:.3f}")
        print(f"eval-mode model with read-back conductances equals the chip bit for bit: {exact}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
