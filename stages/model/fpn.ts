// Feature pyramid network on c2..c5, Matterport's layer names: 1x1 lateral convs fpn_c5p5 … fpn_c2p2, top-down
// nearest 2x upsampling + add, then 3x3 output convs fpn_p2 … fpn_p5; p6 = max-pool(p5, size 1, stride 2), which
// only feeds the RPN.
import * as tf from '@tensorflow/tfjs';
import type { ParameterStore } from './params.js';
import type { BackboneFeatures } from './backbone.js';
import { conv2d, upsample2x } from './layers.js';

/** [p2, p3, p4, p5, p6]: strides 4, 8, 16, 32, 64, each [B, H/stride, W/stride, channels]. */
export type Pyramid = [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];

export function fpn(store: ParameterStore, { c2, c3, c4, c5 }: BackboneFeatures, channels: number): Pyramid {
  checkHalves('c4', c4, 'c5', c5);
  checkHalves('c3', c3, 'c4', c4);
  checkHalves('c2', c2, 'c3', c3);
  if (c5.shape[1] % 2 !== 0 || c5.shape[2] % 2 !== 0) {
    throw new Error(`fpn: c5 is ${c5.shape[1]}x${c5.shape[2]}, p6 needs even sides (image size a multiple of 64)`);
  }
  const lateral = (name: string, c: tf.Tensor4D) => conv2d(store, name, c, { filters: channels, kernelSize: 1 });
  const m5 = lateral('fpn_c5p5', c5);
  const m4 = upsample2x(m5).add(lateral('fpn_c4p4', c4)) as tf.Tensor4D;
  const m3 = upsample2x(m4).add(lateral('fpn_c3p3', c3)) as tf.Tensor4D;
  const m2 = upsample2x(m3).add(lateral('fpn_c2p2', c2)) as tf.Tensor4D;
  const output = (name: string, m: tf.Tensor4D) => conv2d(store, name, m, { filters: channels, kernelSize: 3, padding: 'same' });
  const p2 = output('fpn_p2', m2);
  const p3 = output('fpn_p3', m3);
  const p4 = output('fpn_p4', m4);
  const p5 = output('fpn_p5', m5);
  return [p2, p3, p4, p5, subsample2x(p5)];
}

/** Every other row and column from the first (= MaxPooling2D(pool 1, stride 2)), as reshape + slice so the
 *  gradient is a plain pad. Rank 4 throughout: webgpu's pad shader (the slice's gradient) handles rank <= 4.
 *  x: [B, 2h, 2w, C] viewed as [B*h, row pair, w, column pair * C] -> the first row and column of each pair. */
function subsample2x(x: tf.Tensor4D): tf.Tensor4D {
  const [b, h2, w2, c] = x.shape;
  const h = h2 / 2;
  const w = w2 / 2;
  return x
    .reshape([b * h, 2, w, 2 * c])
    .slice([0, 0, 0, 0], [b * h, 1, w, c])
    .reshape([b, h, w, c]) as tf.Tensor4D;
}

function checkHalves(fineName: string, fine: tf.Tensor4D, coarseName: string, coarse: tf.Tensor4D): void {
  if (fine.shape[1] !== 2 * coarse.shape[1] || fine.shape[2] !== 2 * coarse.shape[2]) {
    throw new Error(
      `fpn: ${fineName} is ${fine.shape[1]}x${fine.shape[2]} but ${coarseName} is ${coarse.shape[1]}x${coarse.shape[2]}; ` +
        'each level must be exactly twice the next (image size a multiple of 64)',
    );
  }
}
