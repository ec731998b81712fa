// The smallest Mask R-CNN that still exercises every head: the small backbone at 64 px, 8-channel FPN and heads,
// GT boxes as proposals (so the box and mask heads get positive ROIs from the first step). For tests that
// train or compare a whole step in a few seconds.
import { configFromParams, type MaskRcnnConfig } from '../../stages/model/config.js';

export const TINY_SIZE = 64;

export function tinyMaskRcnnConfig(overrides: Record<string, unknown> = {}): MaskRcnnConfig {
  return configFromParams({
    preset: 'small',
    image: { size: TINY_SIZE },
    rpn: { headChannels: 8, batchSizePerImage: 32, preNmsTopN: 200, postNmsTopNTrain: 50, postNmsTopNTest: 50 },
    roi: { batchSizePerImage: 16, addGtAsProposals: true },
    box: { fcDim: 32 },
    mask: { headChannels: 8 },
    backbone: { fpnChannels: 8 },
    ...overrides,
  });
}
