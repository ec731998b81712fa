// How the webgpu conv gradients cut their work: pure arithmetic, no device needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chunkRows } from '../../../stages/model/kernels/webgpu/conv-gradients.js';
import { sliceCount } from '../../../stages/model/kernels/webgpu/split-k-product.js';

test('sliceCount fills ~1024 workgroups with slices of at least 256 rows that divide the rows evenly', () => {
  // ResNet-50 at 512 px, B=2, layer1's 1x1 64->256: 32,768 rows, 2 x 8 tiles of 32x32 -> 64 slices of 512 rows.
  assert.equal(sliceCount(32768, 64, 256), 64);
  // 3x3 64->64 through patches: 576 x 64 = 18 x 2 tiles -> ceil(1024 / 36) = 29, the largest divisor below is 16.
  assert.equal(sliceCount(32768, 576, 64), 16);
  // layer4's 3x3 512->512 at 16x16: 4,608 x 512 is 2,304 tiles already, and 512 rows: no split.
  assert.equal(sliceCount(512, 4608, 512), 1);
  // Few rows: at most rows / 256 slices.
  assert.equal(sliceCount(2048, 8, 8), 8);
  assert.equal(sliceCount(300, 8, 8), 1);
  // A prime number of rows cannot be split evenly.
  assert.equal(sliceCount(32749, 8, 8), 1);
  for (const [rows, p, q] of [[1250, 3, 5], [98304, 147, 64], [20000, 1, 1]] as const) {
    const s = sliceCount(rows, p, q);
    assert.ok(s >= 1 && rows % s === 0 && (s === 1 || rows / s >= 256), `${rows} rows: ${s} slices`);
  }
});

test('chunkRows keeps a patch-matrix chunk under the byte limit, in multiples of 1024 rows where it can', () => {
  assert.equal(chunkRows(32768, 576), 28672); // 64 MiB / (4 * 576) = 29,127 rows, down to a multiple of 1024
  const rows = chunkRows(131072, 147);
  assert.ok(rows * 147 * 4 <= 64 * 1024 * 1024 && rows % 1024 === 0, String(rows));
  assert.equal(chunkRows(100, 4), 100); // fits whole
  assert.equal(chunkRows(10_000, 36, 4 * 36 * 100), 100); // under 1024 rows: exactly what fits
  assert.equal(chunkRows(10, 1 << 26, 1024), 1); // never zero rows
});
