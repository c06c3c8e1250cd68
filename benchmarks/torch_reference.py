"""PyTorch reference for the throughput benchmark: the same pre-activation bottleneck ResNet in PyTorch.

Used by ``benchmarks/throughput.py --torch`` to measure both frameworks in the same run. Mirrors
``relu_ratio.models.preact_bottleneck`` (depth 9n+2, widths 16/32/64 x4, stride on the 3x3 conv,
projection on the pre-activated input, final BN-ReLU), with a per-block ReLU mask. Channels-last,
autocast (bfloat16 on CUDA) and optionally ``torch.compile``. PyTorch is not a dependency of relu_ratio;
install it yourself to use this file.
"""

from __future__ import annotations

import time

import torch
from torch import nn


class Bottleneck(nn.Module):
    def __init__(self, cin: int, width: int, stride: int, mask: tuple[bool, bool, bool]):
        super().__init__()
        cout = 4 * width
        specs = [(cin, width, 1, 1), (width, width, 3, stride), (width, cout, 1, 1)]
        self.bns = nn.ModuleList(nn.BatchNorm2d(c_in, eps=2e-5, momentum=0.01) for c_in, *_ in specs)
        self.convs = nn.ModuleList(
            nn.Conv2d(i, o, k, stride=s, padding=k // 2, bias=False) for i, o, k, s in specs
        )
        self.mask = mask
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


class PreActBottleneckResNet(nn.Module):
    def __init__(self, depth: int = 164, mask: tuple[bool, ...] = (False, True, True), classes: int = 10):
        super().__init__()
        n = (depth - 2) // 9
        self.stem = nn.Conv2d(3, 16, 3, padding=1, bias=False)
        blocks, cin = [], 16
        for s, width in enumerate((16, 32, 64)):
            for b in range(n):
                blocks.append(Bottleneck(cin, width, 2 if s > 0 and b == 0 else 1, mask))
                cin = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.final_bn = nn.BatchNorm2d(cin, eps=2e-5, momentum=0.01)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.blocks(self.stem(x))
        x = torch.relu(self.final_bn(x)).mean(dim=(2, 3))
        return self.fc(x)


def measure(depth: int, batch: int, steps: int, warmup: int, compile: bool = False) -> dict:
    """Training and inference images/s of the PyTorch model on the best available device."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = PreActBottleneckResNet(depth).to(device, memory_format=torch.channels_last)
    if compile:
        model = torch.compile(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True, weight_decay=1e-4)
    x = torch.randn(batch, 3, 32, 32, device=device).to(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    autocast = torch.autocast(device, dtype=torch.bfloat16, enabled=device == "cuda")

    def sync():
        if device == "cuda":
            torch.cuda.synchronize()

    def train_step():
        with autocast:
            loss = nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

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
    with torch.no_grad():
        infer_ips = timed(lambda: model(x))
    return {"train_images_per_s": round(train_ips, 1), "inference_images_per_s": round(infer_ips, 1),
            "device": device, "torch": torch.__version__, "compiled": compile}  # fmt: skip
