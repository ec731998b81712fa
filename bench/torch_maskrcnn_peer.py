"""Peer for bench/model-step.ts: torchvision's maskrcnn_resnet50_fpn inference on one 512x512 image, CPU, one thread.

Random initialisation (weights=None): the architecture's cost is what we compare. Prints one JSON line.
Needs Debian's python3-torch and python3-torchvision.
"""
import argparse
import json
import statistics
import time

import torch
import torchvision


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, min_size=args.size, max_size=args.size
    )
    model.eval()
    image = torch.rand(3, args.size, args.size)
    times = []
    with torch.no_grad():
        model([image])  # warm-up
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            out = model([image])
            times.append((time.perf_counter() - t0) * 1000)
    print(json.dumps({
        "peer": "torchvision maskrcnn_resnet50_fpn",
        "torch": torch.__version__,
        "size": args.size,
        "detections": int(out[0]["boxes"].shape[0]),
        "inference_ms": round(statistics.median(times)),
    }))


if __name__ == "__main__":
    main()
