// How the network sees a whole image, before anything else does: in training before windows and augmentation,
// in prediction before TTA, tiles and the scale-down canvas, so both see the same whole image the same way.
// The contrast first (contrast.ts), then which way round (background.ts), which reads the stretched pixels.
import type { Image8 } from '../imaging/dataset.js';
import type { MaskRcnnConfig } from './config.js';
import { withBackground } from './background.js';
import { withContrast } from './contrast.js';

/** `image` as the network configured by `config` (its `image` section) is to see it. */
export function asNetworkSees(image: Image8, config: Pick<MaskRcnnConfig['image'], 'contrast' | 'background'>): Image8 {
  return withBackground(withContrast(image, config.contrast), config.background);
}
