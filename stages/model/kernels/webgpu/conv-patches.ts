// A conv's patch matrix (im2col) and its adjoint (col2im) as WGSL programs, so both conv gradients on webgpu
// become matMuls with plenty of parallel work:
//   filter gradient  dW [kh*kw*Ci, Co] = patches(x)^T [kh*kw*Ci, M] . dy [M, Co]
//   input gradient   dx = col2im(dy [M, Co] . W^T [Co, kh*kw*Ci])
// with M = B*Ho*Wo output positions, and patch row m = (b, oy, ox) holding
//   x[b, oy*sh + i - top, ox*sw + j - left, ci]  at column (i*kw + j)*Ci + ci   (zero outside the image).
// That column order is the filter's own [kh, kw, Ci, Co] layout, so dW needs no transpose.
//
// Written against tfjs-backend-webgpu 4.22's program interface (as elementwise-program.ts): the backend
// declares the bindings, `uniforms.size`, `uniforms.<input>Shape`, a get<Input>(coords...) reader per input,
// and reshapes a dispatch over the device's per-dimension limit.
import * as tf from '@tensorflow/tfjs';
import { FlatProgram, runProgram } from './flat-program.js';

/** The geometry both programs need (tf.backend_util.Conv2DInfo's fields, dilation 1: tfjs has no conv
 *  gradient for dilated convs). */
export interface PatchGeometry {
  batchSize: number;
  inHeight: number;
  inWidth: number;
  inChannels: number;
  outHeight: number;
  outWidth: number;
  filterHeight: number;
  filterWidth: number;
  strideHeight: number;
  strideWidth: number;
  padTop: number;
  padLeft: number;
}

export function patchGeometry(info: tf.backend_util.Conv2DInfo): PatchGeometry {
  if (info.dilationHeight !== 1 || info.dilationWidth !== 1) throw new Error('conv patches: dilation must be 1');
  return {
    batchSize: info.batchSize, inHeight: info.inHeight, inWidth: info.inWidth, inChannels: info.inChannels,
    outHeight: info.outHeight, outWidth: info.outWidth, filterHeight: info.filterHeight, filterWidth: info.filterWidth,
    strideHeight: info.strideHeight, strideWidth: info.strideWidth, padTop: info.padInfo.top, padLeft: info.padInfo.left,
  };
}

/** Rows (output positions) and columns (filter taps x input channels) of the patch matrix. */
export function patchMatrixShape(g: PatchGeometry): [number, number] {
  return [g.batchSize * g.outHeight * g.outWidth, g.filterHeight * g.filterWidth * g.inChannels];
}

const GEOMETRY_UNIFORMS = 'outHeight : i32, outWidth : i32, filterHeight : i32, filterWidth : i32, inChannels : i32, strideHeight : i32, strideWidth : i32, padTop : i32, padLeft : i32,';

function geometryUniforms(g: PatchGeometry): Array<{ type: 'int32'; data: number[] }> {
  return [g.outHeight, g.outWidth, g.filterHeight, g.filterWidth, g.inChannels, g.strideHeight, g.strideWidth, g.padTop, g.padLeft]
    .map((v) => ({ type: 'int32' as const, data: [v] }));
}

/** Rows [rowStart, rowStart + rows) of the patch matrix of x [B, H, W, Ci]: one thread per element. */
class Im2colProgram extends FlatProgram {
  constructor(rows: number, columns: number) {
    super('runner_im2col', ['x'], `rowStart : i32, ${GEOMETRY_UNIFORMS}`, [rows, columns], rows * columns);
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let columns = uniforms.outShape[1];
          let m = uniforms.rowStart + index / columns;
          let column = index % columns;
          let positions = uniforms.outHeight * uniforms.outWidth;
          let b = m / positions;
          let oy = (m % positions) / uniforms.outWidth;
          let ox = m % uniforms.outWidth;
          let tap = column / uniforms.inChannels;
          let ci = column % uniforms.inChannels;
          let y = oy * uniforms.strideHeight + tap / uniforms.filterWidth - uniforms.padTop;
          let x = ox * uniforms.strideWidth + tap % uniforms.filterWidth - uniforms.padLeft;
          var value = 0.0;
          if (y >= 0 && y < uniforms.xShape[1] && x >= 0 && x < uniforms.xShape[2]) {
            value = getX(b, y, x, ci);
          }
          setOutputAtIndex(index, value);
        }
      }
    `;
  }
}

/**
 * The adjoint of im2col: dx [B, H, W, Ci] where each input pixel sums the patch-matrix entries that read it
 * (at most kh*kw; fewer with strides, where only taps landing on the stride grid count). One thread per dx
 * element, no atomics.
 */
class Col2imProgram extends FlatProgram {
  constructor(inputShape: [number, number, number, number]) {
    super('runner_col2im', ['col'], GEOMETRY_UNIFORMS, inputShape, tf.util.sizeFromShape(inputShape));
  }

  getUserCode(): string {
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          let coords = getCoordsFromIndex(index);
          let b = coords[0];
          let ci = coords[3];
          let positions = uniforms.outHeight * uniforms.outWidth;
          var sum = 0.0;
          for (var i = 0; i < uniforms.filterHeight; i = i + 1) {
            let ty = coords[1] + uniforms.padTop - i;
            if (ty < 0 || ty % uniforms.strideHeight != 0) { continue; }
            let oy = ty / uniforms.strideHeight;
            if (oy >= uniforms.outHeight) { continue; }
            for (var j = 0; j < uniforms.filterWidth; j = j + 1) {
              let tx = coords[2] + uniforms.padLeft - j;
              if (tx < 0 || tx % uniforms.strideWidth != 0) { continue; }
              let ox = tx / uniforms.strideWidth;
              if (ox >= uniforms.outWidth) { continue; }
              sum = sum + getCol(b * positions + oy * uniforms.outWidth + ox, (i * uniforms.filterWidth + j) * uniforms.inChannels + ci);
            }
          }
          setOutputAtIndex(index, sum);
        }
      }
    `;
  }
}


/** Rows [rowStart, rowStart + rows) of x's patch matrix, [rows, kh*kw*Ci], as a backend tensor the caller frees. */
export function im2col(backend: tf.KernelBackend, x: tf.TensorInfo, g: PatchGeometry, rowStart: number, rows: number): tf.TensorInfo {
  const [, columns] = patchMatrixShape(g);
  const program = new Im2colProgram(rows, columns);
  return runProgram(program, [x], [{ type: 'int32', data: [rowStart] }, ...geometryUniforms(g)], backend);
}

/** dx [B, H, W, Ci] from the gradient of the whole patch matrix, col [M, kh*kw*Ci]; the caller frees it. */
export function col2im(backend: tf.KernelBackend, col: tf.TensorInfo, g: PatchGeometry): tf.TensorInfo {
  const [m, columns] = patchMatrixShape(g);
  if (col.shape.length !== 2 || col.shape[0] !== m || col.shape[1] !== columns) throw new Error(`col2im: expected [${m}, ${columns}], got [${col.shape}]`);
  const program = new Col2imProgram([g.batchSize, g.inHeight, g.inWidth, g.inChannels]);
  return runProgram(program, [col], geometryUniforms(g), backend);
}
