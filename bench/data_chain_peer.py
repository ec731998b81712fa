"""Python peer of bench/data-chain.ts: the same data chain with OpenCV and SciPy (as skimage ships it).

fix-masks (fixes + removed ids, masks read as > 128, empty masks dropped, painted into one 16-bit label map
in sorted filename order) -> strip-alpha (RGB) -> fill-holes (per nucleus, scipy.ndimage.binary_fill_holes on its bounding box),
writing an RGB PNG and a 16-bit label PNG per image, as our stages do. Two worker processes (one per core).

usage: python3 bench/data_chain_peer.py STAGE1_TRAIN FIXES OUT [LIMIT]
"""
import os
import sys
import time
from multiprocessing import Pool

import cv2
import numpy as np
from scipy import ndimage

cv2.setNumThreads(1)


def process(job):
    image_id, image_file, masks_dir, out = job
    image = cv2.imread(image_file, cv2.IMREAD_UNCHANGED)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    rgb = image[:, :, :3]
    labels = np.zeros(rgb.shape[:2], np.uint16)
    label = 0
    for name in sorted(os.listdir(masks_dir)):
        mask = cv2.imread(os.path.join(masks_dir, name), cv2.IMREAD_GRAYSCALE) > 128
        if mask.shape != labels.shape:
            raise ValueError(f"{name}: wrong size")
        box = ndimage.find_objects(mask.astype(np.uint8))
        if not box:
            continue
        # Fill holes on the bounding box only (same result: outside the box is background).
        crop = ndimage.binary_fill_holes(mask[box[0]])
        label += 1
        target = labels[box[0]]
        target[crop & (target == 0)] = label
    cv2.imwrite(os.path.join(out, "images", image_id + ".png"), rgb, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    cv2.imwrite(os.path.join(out, "labels", image_id + ".png"), labels, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    return label


def main():
    train, fixes, out = sys.argv[1:4]
    limit = int(sys.argv[4]) if len(sys.argv) > 4 else None
    with open(os.path.join(fixes, "removed_ids.txt")) as f:
        removed = {line.strip() for line in f if line.strip()}
    ids = sorted(os.listdir(train))[:limit]
    jobs = []
    for image_id in ids:
        if image_id in removed:
            continue
        fixed = os.path.join(fixes, image_id, "masks")
        masks = fixed if os.path.isdir(fixed) else os.path.join(train, image_id, "masks")
        jobs.append((image_id, os.path.join(train, image_id, "images", image_id + ".png"), masks, out))
    os.makedirs(os.path.join(out, "images"), exist_ok=True)
    os.makedirs(os.path.join(out, "labels"), exist_ok=True)
    start = time.perf_counter()
    with Pool(2) as pool:
        nuclei = sum(pool.map(process, jobs, chunksize=4))
    seconds = time.perf_counter() - start
    print(f'{{"images": {len(jobs)}, "nuclei": {nuclei}, "seconds": {seconds:.3f}}}')


if __name__ == "__main__":
    main()
