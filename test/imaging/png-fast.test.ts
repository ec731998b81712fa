import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeSimplePng } from '../../stages/imaging/png-fast.js';
import { sharedData } from '../helpers/paths.js';

async function viaSharp(bytes: Buffer, channels: number): Promise<Uint8Array> {
  const pipeline = sharp(bytes);
  if (channels === 1) pipeline.toColourspace('b-w');
  return new Uint8Array(await pipeline.raw().toBuffer());
}

test('the fast PNG path decodes every scanline filter sharp chooses exactly as sharp does', async () => {
  const width = 61;
  const height = 23;
  for (const channels of [1, 3, 4] as const) {
    // Gradients, noise and flat runs so that the adaptive encoder uses several filter types.
    const data = new Uint8Array(width * height * channels).map((_, i) => (i % 97 < 40 ? (i * 13) % 251 : (i >> 3) & 0xff));
    const pipeline = sharp(data, { raw: { width, height, channels } });
    if (channels === 1) pipeline.toColourspace('b-w');
    const png = await pipeline.png({ adaptiveFiltering: true, compressionLevel: 9 }).toBuffer();
    const fast = decodeSimplePng(png);
    assert.ok(fast, `channels ${channels}: fast path declined`);
    assert.equal(fast.channels, channels);
    assert.deepEqual(fast.data, await viaSharp(png, channels));
  }
});

test('the fast PNG path declines a truncated file and a palette file', async () => {
  const png = await sharp(new Uint8Array(64 * 3).fill(9), { raw: { width: 8, height: 8, channels: 3 } }).png({ palette: true }).toBuffer();
  assert.equal(decodeSimplePng(png), undefined);
  const plain = await sharp(new Uint8Array(64 * 3).fill(9), { raw: { width: 8, height: 8, channels: 3 } }).png().toBuffer();
  assert.equal(decodeSimplePng(plain.subarray(0, plain.length - 16)), undefined);
});

const train = join(sharedData, 'stage1_train');
test(
  'real stage1_train masks decode the same on the fast path and through sharp',
  { skip: existsSync(train) ? false : `real DSB2018 data not found at ${sharedData}` },
  async () => {
    for (const id of readdirSync(train).sort().slice(0, 3)) {
      const masks = join(train, id, 'masks');
      for (const name of readdirSync(masks).slice(0, 5)) {
        const bytes = readFileSync(join(masks, name));
        const fast = decodeSimplePng(bytes);
        assert.ok(fast, `${name}: fast path declined`);
        assert.deepEqual(fast.data, await viaSharp(bytes, fast.channels));
      }
    }
  },
);
