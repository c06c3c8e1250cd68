"""PyTorch reference for the throughput benchmark: the same pre-activation ResNets in PyTorch.

Used by ``benchmarks/throughput.py --torch`` to measure both frameworks on one machine in one run.
Mirrors ``relu_ratio.blocks.preact_block``: the ``resnet`` family (building block BN-ReLU-conv3x3 twice,
depth 6n+2, widths 16/32/64) and the ``preact`` family (bottleneck BN-ReLU-conv1x1, -conv3x3, -conv1x1(4c),
depth 9n+2), the stride on the (first) 3x3 conv, the projection on the pre-activated input, a final
BN-ReLU, one ReLU mask for every block. Channels-last; ``precision="bfloat16"`` trains under
``torch.autocast`` (bfloat16 on CPU and GPU); optionally ``torch.compile``. PyTorch is not a dependency of
relu_ratio; install it yourself to use this file. As a script it prints one JSON line::

    python benchmarks/torch_reference.py --family preact --depth 164 --mask 011 --precision bfloat16

Example:
    >>> net = PreActResNet("resnet", 20, mask=(False, True))  # doctest: +SKIP
    >>> measure("resnet", 20, (False, True), batch=128, steps=10, warmup=3)  # doctest: +SKIP
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from torch import nn

WIDTHS = (16, 32, 64)
EXPANSION = {"resnet": 1, "preact": 4}


def _convs(family: str, cin: int, width: int, stride: int) -> list[tuple[int, int, int, int]]:
    """(in channels, out channels, kernel, stride) of each convolution of one block."""
    if family == "preact":
        return [(cin, width, 1, 1), (width, width, 3, stride), (width, 4 * width, 1, 1)]
    return [(cin, width, 3, stride), (width, width, 3, 1)]


class PreActBlock(nn.Module):
    def __init__(self, family: str, cin: int, width: int, stride: int, mask: tuple[bool, ...]):
        super().__init__()
        specs = _convs(family, cin, width, stride)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c_in, eps=2e-5, momentum=0.01) for c_in, *_ in specs)
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False) for i, o, k, s in specs
        )
        self.mask = mask
        cout = specs[-1][1]
        self.projection = nn.Conv2d(cin, cout, 1, stride, bias=False) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = x
        for i, (bn, conv, keep) in enumerate(zip(self.bns, self.convs, self.mask)):
            y = bn(y)
            y = torch.relu(y) if keep else y
            if i == 0:
                pre = y
            y = conv(y)
        return y + (x if self.projection is None else self.projection(pre))


class PreActResNet(nn.Module):
    def __init__(self, family: str, depth: int, mask: tuple[bool, ...], classes: int = 10):
        super().__init__()
        n = (depth - 2) // (3 * len(mask))
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        blocks, cin = [], 16
        for s, width in enumerate(WIDTHS):
            for b in range(n):
                blocks.append(PreActBlock(family, cin, width, 2 if s > 0 and b == 0 else 1, mask))
                cin = EXPANSION[family] * width
        self.blocks = nn.Sequential(*blocks)
        self.final_bn = nn.BatchNorm2d(cin, eps=2e-5, momentum=0.01)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.relu(self.final_bn(x)).mean(dim=(2, 3))
        return self.fc(x)


def measure(
    family: str, depth: int, mask: tuple[bool, ...], batch: int, steps: int, warmup: int,
    precision: str = "float32", compile: bool = False,
) -> dict:  # fmt: skip
    """Training and inference images/s of the PyTorch model on the best available device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = PreActResNet(family, depth, mask).to(device, memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)
    x = torch.randn(batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=precision == "bfloat16")

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def train_step():
        with autocast:
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    def infer_step():
        with torch.no_grad(), autocast:
            model(x)

    def timed(step) -> float:
        for _ in range(warmup):
            step()
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        return batch * steps / (time.perf_counter() - start)

    model.train()
    train_ips = timed(train_step)
    model.eval()
    infer_ips = timed(infer_step)
    return {"train_images_per_s": round(train_ips, 1), "inference_images_per_s": round(infer_ips, 1),
            "torch_device": device, "torch": torch.__version__, "torch_precision": precision,
            "torch_threads": torch.get_num_threads(), "compiled": compile}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    """Measure one network and print the result as one JSON line (``throughput.py --torch`` runs this in a
    subprocess: TensorFlow and a PyTorch build in one process can crash)."""
    cli = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                  formatter_class=argparse.ArgumentDefaultsHelpFormatter)  # fmt: skip
    cli.add_argument("--family", choices=tuple(EXPANSION), required=True,
                     help="resnet: pre-activation building blocks; preact: bottlenecks")  # fmt: skip
    cli.add_argument("--depth", type=int, required=True, help="6n+2 (resnet) or 9n+2 (preact), e.g. 164")
    cli.add_argument("--mask", required=True, help="one 0/1 per ReLU slot of a block, e.g. 011")
    cli.add_argument("--batch", type=int, default=128, help="images per step")
    cli.add_argument("--steps", type=int, default=20, help="timed steps")
    cli.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    cli.add_argument("--precision", choices=("float32", "bfloat16"), default="float32",
                     help="bfloat16: under torch.autocast")  # fmt: skip
    cli.add_argument("--compile", action="store_true", help="train the torch.compile'd model")
    args = cli.parse_args(argv)
    slots = len(_convs(args.family, 16, 16, 1))
    if len(args.mask) != slots or set(args.mask) - {"0", "1"}:
        cli.error(f"--mask: a {args.family} block has {slots} ReLU slots: give {slots} characters of 0/1 "
                  f"(e.g. {'0' + '1' * (slots - 1)}); received {args.mask!r}")  # fmt: skip
    if "1" not in args.mask:
        cli.error(f"--mask {args.mask} removes every ReLU (relu_ratio refuses that network); keep at least "
                  f"one (e.g. {'0' + '1' * (slots - 1)})")  # fmt: skip
    per_stage, rest = divmod(args.depth - 2, 3 * slots)
    if per_stage < 1 or rest:
        depths = ", ".join(str(3 * slots * n + 2) for n in (1, 2, 3))
        cli.error(f"--depth: a {args.family} network is {3 * slots}n+2 layers deep, n >= 1 ({depths}, ...); "
                  f"received {args.depth}")  # fmt: skip
    counts = (("--batch", args.batch, 1), ("--steps", args.steps, 1), ("--warmup", args.warmup, 0))
    for flag, value, least in counts:
        if value < least:
            cli.error(f"{flag}: must be >= {least}; received {value}")
    mask = tuple(c == "1" for c in args.mask)
    params = sum(w.numel() for w in PreActResNet(args.family, args.depth, mask).parameters())
    row = measure(
        args.family, args.depth, mask, args.batch, args.steps, args.warmup, args.precision, args.compile
    )
    print(json.dumps({**row, "params": params}))


if __name__ == "__main__":
    main()
