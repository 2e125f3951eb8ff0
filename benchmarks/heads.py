"""Batched expert bank vs. a Python loop over experts, side by side.

STAR heads (16 experts, 512 -> 512 -> 512 -> 128, two tasks) on 768 rows
(3 views x 256), forward + backward. The reference is how STAR's authors run
their heads: 16 separate ``nn.Sequential`` experts called in a loop, stacked and
mixed with einsum. Prints median times, the ratio loop/bank (>= 1 means the bank
is at least as fast) and the peak memory of each, measured in fresh processes.

    python benchmarks/heads.py                 # CPU
    python benchmarks/heads.py --device cuda   # adds torch.compile variants
    python benchmarks/heads.py --device cuda --json runs/heads.json   # also writes the figures
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from torch import nn

from moeheads import MoEHeads
from moeheads.runtime.allocator import keep_cpu_buffers


class LoopHeads(nn.Module):
    """Reference: separate experts evaluated one by one, mixed by the same STAR router."""

    def __init__(self, heads: MoEHeads) -> None:
        super().__init__()
        self.experts = nn.ModuleList(heads.experts.experts())
        self.router = heads.router

    def forward(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        outs = torch.stack([expert(h) for expert in self.experts])  # [n, b, o]
        gates = self.router(h).gates
        mixed = torch.einsum("tbn,nbo->tbo", gates.to(outs.dtype), outs)
        return {task: mixed[t] for t, task in enumerate(self.router.tasks)}


def build(kind: str, device: str, compile_: bool, rows: int = 768
          ) -> tuple[nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    heads = MoEHeads.build(512, ["inv", "eq"], num_experts=16, router="star")
    model: nn.Module = heads if kind == "bank" else LoopHeads(heads)
    model = model.to(device).train()
    if compile_:
        model = torch.compile(model)
    h = torch.randn(rows, 512, device=device, requires_grad=True)
    return model, h


def step(model: nn.Module, h: torch.Tensor) -> None:
    out = model(h)
    emb = out.embeddings if hasattr(out, "embeddings") else out
    (emb["inv"].square().mean() + emb["eq"].square().mean()).backward()


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_pair(device: str, compile_: bool, reps: int, warmup: int, rows: int = 768
              ) -> dict[str, float]:
    models = {kind: build(kind, device, compile_, rows) for kind in ("bank", "loop")}
    for _ in range(warmup):
        for model, h in models.values():
            step(model, h)
    times: dict[str, list[float]] = {kind: [] for kind in models}
    for _ in range(reps):  # interleaved, so both see the same machine load
        for kind, (model, h) in models.items():
            sync(device)
            start = time.perf_counter()
            step(model, h)
            sync(device)
            times[kind].append(time.perf_counter() - start)
    return {kind: statistics.median(t) for kind, t in times.items()}


def current_rss() -> int:
    """Resident set size of this process in bytes (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize()


def peak_memory_child(kind: str, device: str, compile_: bool) -> None:
    model, h = build(kind, device, compile_)
    step(model, h)  # first call allocates gradients and caches
    sync(device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for _ in range(3):
            step(model, h)
        sync(device)
        peak = torch.cuda.max_memory_allocated() - base
    else:  # sample the RSS while steps run
        base, peak, done = current_rss(), 0, threading.Event()

        def sample() -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, current_rss() - base)
                time.sleep(0.0005)

        sampler = threading.Thread(target=sample)
        sampler.start()
        for _ in range(3):
            step(model, h)
        done.set()
        sampler.join()
    print(json.dumps({"peak_bytes": peak}))


def peak_memory(kind: str, device: str, compile_: bool, glibc_defaults: bool) -> float:
    cmd = [sys.executable, __file__, "--child", kind, "--device", device]
    if compile_:
        cmd.append("--compile")
    if glibc_defaults:
        cmd.append("--glibc-defaults")
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["peak_bytes"] / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--child", choices=["bank", "loop"])
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--glibc-defaults", action="store_true",
                        help="Leave glibc's malloc thresholds alone.")
    parser.add_argument("--no-memory", action="store_true", help="Skip the peak-memory runs.")
    parser.add_argument("--rows", type=int, default=768,
                        help="Feature rows per step (timing only; memory runs use 768).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the figures here.")
    args = parser.parse_args()
    if args.child:
        if args.device == "cpu" and not args.glibc_defaults:
            keep_cpu_buffers()
        peak_memory_child(args.child, args.device, args.compile)
        return
    if args.device == "cpu" and not args.glibc_defaults:
        keep_cpu_buffers()  # as `moeheads run` does on the CPU; the same for both variants
    print(f"device={args.device} torch={torch.__version__} threads={torch.get_num_threads()} "
          f"malloc={'glibc defaults' if args.glibc_defaults else 'large buffers kept'}")
    print(f"STAR heads: 16 experts 512-512-512-128, 2 tasks, {args.rows} rows, "
          "forward + backward")
    variants = [False, True] if args.device.startswith("cuda") else [False]
    figures: dict[str, dict[str, float]] = {}

    def write() -> None:  # after each figure, so a run cut short keeps what it measured
        if args.json is not None:
            args.json.parent.mkdir(parents=True, exist_ok=True)
            args.json.write_text(json.dumps({"device": args.device, **figures}, indent=2))

    for compile_ in variants:
        t = time_pair(args.device, compile_, args.reps, args.warmup, args.rows)
        label = "compiled" if compile_ else "eager"
        figures[label] = {"bank_ms": t["bank"] * 1e3, "loop_ms": t["loop"] * 1e3,
                          "loop_over_bank": t["loop"] / t["bank"]}
        print(f"[{label}] bank {t['bank'] * 1e3:8.2f} ms   loop {t['loop'] * 1e3:8.2f} ms   "
              f"loop/bank = {t['loop'] / t['bank']:.2f}x", flush=True)
        write()
        if args.no_memory:
            continue
        mem = {kind: peak_memory(kind, args.device, compile_, args.glibc_defaults)
               for kind in ("bank", "loop")}
        figures[label].update(bank_peak_mib=mem["bank"], loop_peak_mib=mem["loop"])
        print(f"[{label}] peak memory (MiB, {'allocator' if args.device != 'cpu' else 'RSS'} "
              f"growth over the step): bank {mem['bank']:.0f}   loop {mem['loop']:.0f}")
        write()


if __name__ == "__main__":
    main()
