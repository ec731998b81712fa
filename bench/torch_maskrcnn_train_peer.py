"""Peer for bench/model-train.ts: our Mask R-CNN's train step written with torchvision's parts, CPU.

The network is the one stages/model/config.ts describes (`small` preset at 256, or the recipe's ResNet101 at
512): Matterport's Caffe-style bottleneck ResNet with biases and frozen batch norm, an FPN p2..p6, one anchor
scale per level and three ratios, an RPN conv of `rpn_channels`, the same anchor/ROI sample sizes, IoU
thresholds and proposal counts, a box head of two "FC" layers with frozen batch norm and a mask head of four 3x3
convs with frozen batch norm, a 2x2 transposed conv and a 1x1 conv. AMSGrad with global-norm clipping at 5.
Differences torchvision imposes (noted in BENCHMARKS.md): its RPN scores an anchor with one sigmoid logit (ours:
a two-class softmax), and its pre-NMS top-N is per FPN level (ours: over all levels).

The batch (boxes, the ROIs of the part timings) comes from the TypeScript bench as JSON, so both sides work on
the same boxes. Prints one JSON line: the full step and each part's forward and backward, medians in ms.
"""
import argparse
import json
import statistics
import time
from collections import OrderedDict

import torch
from torch import nn
import torch.nn.functional as F
import torchvision

from torch_blas import blas_library
from torchvision.models.detection import MaskRCNN
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.models.detection.mask_rcnn import MaskRCNNPredictor
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import FeaturePyramidNetwork, MultiScaleRoIAlign
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

SPECS = {
    # stem channels, per stage (f1, f2, f3, blocks)
    "small": (16, [(16, 16, 32, 1), (32, 32, 64, 1), (64, 64, 128, 1), (128, 128, 256, 1)]),
    "medium": (32, [(32, 32, 128, 2), (64, 64, 256, 3), (128, 128, 512, 4), (256, 256, 1024, 2)]),
    "resnet50": (64, [(64, 64, 256, 3), (128, 128, 512, 4), (256, 256, 1024, 6), (512, 512, 2048, 3)]),
    "resnet101": (64, [(64, 64, 256, 3), (128, 128, 512, 4), (256, 256, 1024, 23), (512, 512, 2048, 3)]),
}


class Bottleneck(nn.Module):
    """Matterport's conv_block / identity_block: stride on the first 1x1 conv, convs with biases."""

    def __init__(self, cin, f1, f2, f3, stride, projection):
        super().__init__()
        self.a = nn.Conv2d(cin, f1, 1, stride)
        self.bn_a = FrozenBatchNorm2d(f1)
        self.b = nn.Conv2d(f1, f2, 3, 1, 1)
        self.bn_b = FrozenBatchNorm2d(f2)
        self.c = nn.Conv2d(f2, f3, 1)
        self.bn_c = FrozenBatchNorm2d(f3)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, f3, 1, stride), FrozenBatchNorm2d(f3)) if projection else None

    def forward(self, x):
        y = F.relu(self.bn_a(self.a(x)))
        y = F.relu(self.bn_b(self.b(y)))
        y = self.bn_c(self.c(y))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class Backbone(nn.Module):
    """ResNet c2..c5 and an FPN p2..p6 of `channels` (p6 = max pool of p5, as Matterport and torchvision)."""

    def __init__(self, name, channels):
        super().__init__()
        stem, stages = SPECS[name]
        self.conv1 = nn.Conv2d(3, stem, 7, 2, 3)
        self.bn1 = FrozenBatchNorm2d(stem)
        self.stages = nn.ModuleList()
        cin = stem
        for i, (f1, f2, f3, blocks) in enumerate(stages):
            layers = [Bottleneck(cin if b == 0 else f3, f1, f2, f3, 2 if b == 0 and i > 0 else 1, b == 0) for b in range(blocks)]
            self.stages.append(nn.Sequential(*layers))
            cin = f3
        self.fpn = FeaturePyramidNetwork([s[2] for s in stages], channels, extra_blocks=LastLevelMaxPool())
        self.out_channels = channels

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 3, 2, 1)
        features = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)
            features[str(i)] = x
        return self.fpn(features)


class RpnHead(nn.Module):
    """torchvision's RPNHead with the shared conv's width a parameter (Matterport: 512, ours small: 64)."""

    def __init__(self, cin, channels, anchors):
        super().__init__()
        self.conv = nn.Conv2d(cin, channels, 3, padding=1)
        self.cls_logits = nn.Conv2d(channels, anchors, 1)
        self.bbox_pred = nn.Conv2d(channels, anchors * 4, 1)

    def forward(self, features):
        hidden = [F.relu(self.conv(f)) for f in features]
        return [self.cls_logits(h) for h in hidden], [self.bbox_pred(h) for h in hidden]


class FrozenBatchNorm1d(FrozenBatchNorm2d):
    def forward(self, x):
        return super().forward(x[:, :, None, None])[:, :, 0, 0]


class BoxHead(nn.Module):
    """fpn_classifier_graph: the P x P "FC" conv as a linear layer, frozen BN, relu, a 1x1 "FC", frozen BN, relu."""

    def __init__(self, cin, fc):
        super().__init__()
        self.fc1 = nn.Linear(cin, fc)
        self.bn1 = FrozenBatchNorm1d(fc)
        self.fc2 = nn.Linear(fc, fc)
        self.bn2 = FrozenBatchNorm1d(fc)

    def forward(self, x):
        x = F.relu(self.bn1(self.fc1(x.flatten(1))))
        return F.relu(self.bn2(self.fc2(x)))


class MaskHead(nn.Sequential):
    """build_fpn_mask_graph up to the deconv: 4 x (3x3 conv, frozen BN, relu)."""

    def __init__(self, cin, channels):
        layers = []
        for i in range(4):
            layers += [nn.Conv2d(cin if i == 0 else channels, channels, 3, padding=1), FrozenBatchNorm2d(channels), nn.ReLU()]
        super().__init__(*layers)


def build(cfg):
    size = cfg["imageSize"]
    anchors = AnchorGenerator(sizes=tuple((s,) for s in cfg["anchorScales"]), aspect_ratios=(tuple(cfg["anchorRatios"]),) * len(cfg["anchorScales"]))
    backbone = Backbone(cfg["backbone"], cfg["fpnChannels"])
    c = cfg["fpnChannels"]
    model = MaskRCNN(
        backbone, num_classes=None, min_size=size, max_size=size, image_mean=[0.0, 0.0, 0.0], image_std=[1.0, 1.0, 1.0],
        rpn_anchor_generator=anchors, rpn_head=RpnHead(c, cfg["rpnChannels"], len(cfg["anchorRatios"])),
        rpn_pre_nms_top_n_train=cfg["preNmsTopN"], rpn_post_nms_top_n_train=cfg["postNmsTopNTrain"],
        rpn_pre_nms_top_n_test=cfg["preNmsTopN"], rpn_post_nms_top_n_test=cfg["postNmsTopNTrain"],
        rpn_nms_thresh=cfg["rpnNmsThresh"], rpn_fg_iou_thresh=cfg["rpnFgIou"], rpn_bg_iou_thresh=cfg["rpnBgIou"],
        rpn_batch_size_per_image=cfg["rpnBatchPerImage"], rpn_positive_fraction=cfg["rpnPositiveFraction"],
        box_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], cfg["poolSize"], 2),
        box_head=BoxHead(c * cfg["poolSize"] ** 2, cfg["fcDim"]), box_predictor=FastRCNNPredictor(cfg["fcDim"], 2),
        box_fg_iou_thresh=cfg["roiFgIou"], box_bg_iou_thresh=cfg["roiFgIou"],
        box_batch_size_per_image=cfg["roiBatchPerImage"], box_positive_fraction=cfg["roiPositiveFraction"],
        mask_roi_pool=MultiScaleRoIAlign(["0", "1", "2", "3"], cfg["maskPoolSize"], 2),
        mask_head=MaskHead(c, cfg["maskChannels"]), mask_predictor=MaskRCNNPredictor(cfg["maskChannels"], cfg["maskChannels"], 2),
    )
    return model


def median_ms(fn, repeat):
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", required=True, help="JSON written by bench/model-train.ts")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--no-parts", action="store_true", help="the whole step only (the slow ResNet101 case)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    with open(args.batch) as f:
        cfg = json.load(f)
    size = cfg["imageSize"]
    model = build(cfg)
    model.train()
    images = [torch.rand(3, size, size) * 255 - 120 for _ in cfg["gtBoxes"]]
    targets = []
    for boxes_yx in cfg["gtBoxes"]:
        yx = torch.tensor(boxes_yx, dtype=torch.float32).reshape(-1, 4)
        boxes = yx[:, [1, 0, 3, 2]]  # ours [y1, x1, y2, x2] -> torchvision [x1, y1, x2, y2]
        masks = torch.zeros(len(boxes), size, size, dtype=torch.uint8)
        for k, (x1, y1, x2, y2) in enumerate(boxes.round().int().tolist()):
            masks[k, y1:y2, x1:x2] = 1
        targets.append({"boxes": boxes, "labels": torch.ones(len(boxes), dtype=torch.int64), "masks": masks})
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-5, amsgrad=True, weight_decay=cfg["weightDecay"])

    def step():
        optimizer.zero_grad()
        losses = model(images, targets)
        sum(losses.values()).backward()
        torch.nn.utils.clip_grad_norm_(params, cfg["clipNorm"])
        optimizer.step()

    out = {"peer": "torchvision parts", "torch": torch.__version__, "blas": blas_library(), "threads": torch.get_num_threads(), "trainStepMs": median_ms(step, args.repeat)}
    if args.no_parts:
        print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}))
        return

    # The parts, each alone on the same inputs as ours (bench/model-train.ts measures the same list).
    batch = torch.stack(images)
    image_list = ImageList(batch, [(size, size)] * len(images))
    out["backboneFwdMs"] = median_ms(lambda: model.backbone(batch), args.repeat)

    def backbone_fwd_bwd():
        features = model.backbone(batch)
        sum((f * 1e-3).mean() for f in features.values()).backward()
    out["backboneFwdBwdMs"] = median_ms(backbone_fwd_bwd, args.repeat)

    with torch.no_grad():
        features = model.backbone(batch)
    levels = [f.detach() for f in features.values()]
    out["rpnHeadFwdMs"] = median_ms(lambda: model.rpn.head(levels), args.repeat)

    def rpn_fwd_bwd():
        logits, deltas = model.rpn.head(levels)
        (sum(t.mean() for t in logits) + sum(t.mean() for t in deltas)).backward()
    out["rpnHeadFwdBwdMs"] = median_ms(rpn_fwd_bwd, args.repeat)

    # Host-side work: anchor matching and sampling, decoding and NMS, ROI matching and sampling.
    with torch.no_grad():
        logits, deltas = model.rpn.head(levels)
    rpn = model.rpn

    def proposals_and_targets():
        with torch.no_grad():
            anchors = rpn.anchor_generator(image_list, levels)
            per_level = [o[0].numel() for o in logits]
            from torchvision.models.detection.rpn import concat_box_prediction_layers
            objectness, pred = concat_box_prediction_layers(logits, deltas)
            proposals = rpn.box_coder.decode(pred, anchors).view(len(anchors), -1, 4)
            boxes, _ = rpn.filter_proposals(proposals, objectness, image_list.image_sizes, per_level)
            labels, matched = rpn.assign_targets_to_anchors(anchors, targets)
            rpn.fg_bg_sampler(labels)
            rpn.box_coder.encode(matched, anchors)
            model.roi_heads.select_training_samples(boxes, targets)
    out["proposalsAndTargetsMs"] = median_ms(proposals_and_targets, args.repeat)

    feats = OrderedDict((k, v.detach()) for k, v in features.items())
    rois = [torch.tensor(r, dtype=torch.float32).reshape(-1, 4)[:, [1, 0, 3, 2]] for r in cfg["rois"]]
    positives = [torch.tensor(r, dtype=torch.float32).reshape(-1, 4)[:, [1, 0, 3, 2]] for r in cfg["positiveRois"]]
    sizes = [(size, size)] * len(images)
    heads = model.roi_heads

    def box_branch():
        x = heads.box_head(heads.box_roi_pool(feats, rois, sizes))
        return heads.box_predictor(x)
    out["boxBranchFwdMs"] = median_ms(box_branch, args.repeat)

    def box_branch_bwd():
        scores, regression = box_branch()
        (scores.mean() + regression.mean()).backward()
    out["boxBranchFwdBwdMs"] = median_ms(box_branch_bwd, args.repeat)

    def mask_branch():
        return heads.mask_predictor(heads.mask_head(heads.mask_roi_pool(feats, positives, sizes)))
    out["maskBranchFwdMs"] = median_ms(mask_branch, args.repeat)
    out["maskBranchFwdBwdMs"] = median_ms(lambda: mask_branch().mean().backward(), args.repeat)

    def optimizer_step():
        torch.nn.utils.clip_grad_norm_(params, cfg["clipNorm"])
        optimizer.step()
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    out["optimizerMs"] = median_ms(optimizer_step, args.repeat)

    # Inference: a fresh model of the profile's predict network (whole image, test-time counts), one image.
    inf = cfg["inference"]
    predict_cfg = dict(cfg, imageSize=inf["imageSize"], preNmsTopN=inf["preNmsTopN"], postNmsTopNTrain=inf["postNmsTopN"])
    predictor = build(predict_cfg)
    predictor.roi_heads.score_thresh = inf["minConfidence"]
    predictor.roi_heads.nms_thresh = inf["nmsThresh"]
    predictor.roi_heads.detections_per_img = inf["maxInstances"]
    predictor.eval()
    image = torch.rand(3, inf["imageSize"], inf["imageSize"]) * 255 - 120
    found = {}

    def detect():
        with torch.no_grad():
            found["n"] = int(predictor([image])[0]["boxes"].shape[0])
    out["inferenceMs"] = median_ms(detect, args.repeat)
    out["detections"] = found["n"]
    print(json.dumps({k: (round(v, 1) if isinstance(v, float) else v) for k, v in out.items()}))


if __name__ == "__main__":
    main()
