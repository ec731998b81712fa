"""Peer for bench/model-step.ts: torchvision's maskrcnn_resnet50_fpn inference on one 512x512 image, CPU, one thread.

Random initialisation (weights=None): the architecture's cost is what we compare. Prints one JSON line.
--score-thresh sets box_score_thresh (torchvision's default 0.05): with random weights nearly every box clears
0.05, so the mask head runs on the full 100; the like-for-like comparison passes the rule of ours instead (see
bench/model-step.ts).
Needs Debian's python3-torch and python3-torchvision.
"""
import argparse
import json
import statistics
import time

import torch
import torchvision

from torch_blas import blas_library


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--score-thresh", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torchvision.models.detection.maskrcnn_resnet50_fpn(
        weights=None, weights_backbone=None, num_classes=2, min_size=args.size, max_size=args.size,
        box_score_thresh=args.score_thresh,
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
        "torch": torch.__version__, "blas": blas_library(),
        "size": args.size,
        "score_thresh": args.score_thresh,
        "detections": int(out[0]["boxes"].shape[0]),
        "inference_ms": round(statistics.median(times)),
    }))


if __name__ == "__main__":
    main()
