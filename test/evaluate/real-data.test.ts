import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { sharedData } from '../helpers/paths.js';
import { encodeRle, formatRle } from '../../stages/evaluate/rle.js';
import { scoreFiles } from '../../stages/evaluate/score.js';
import { erodeCross } from '../../stages/imaging/morphology.js';

const train = join(sharedData, 'stage1_train');
// Two real images with few masks, so the test stays fast.
const ids = ['00071198d059ba7f5914a526d124d28e6d010c92466da21d4a04cd5413362552', '003cee89357d9fe13516167fd67b609a164651b21934585648c740d2c3d86dc1'];

test(
  'real DSB2018 masks, encoded to a solution file, score 1 against themselves and less when eroded',
  { skip: ids.every((id) => existsSync(join(train, id))) ? false : `real DSB2018 data not found at ${train}` },
  async () => {
    const solution = ['ImageId,EncodedPixels,Height,Width,Usage'];
    const exact = ['ImageId,EncodedPixels'];
    const eroded = ['ImageId,EncodedPixels'];
    for (const id of ids) {
      for (const file of readdirSync(join(train, id, 'masks')).sort()) {
        const { data, info } = await sharp(join(train, id, 'masks', file)).greyscale().raw().toBuffer({ resolveWithObject: true });
        const mask = Uint8Array.from(data, (v) => (v > 128 ? 1 : 0));
        const runs = formatRle(encodeRle(mask, info.width, info.height));
        solution.push(`${id},${runs},${info.height},${info.width},Public`);
        exact.push(`${id},${runs}`);
        eroded.push(`${id},${formatRle(encodeRle(erodeCross(mask, info.width, info.height), info.width, info.height))}`);
      }
    }
    const dir = mkdtempSync(join(tmpdir(), 'real-score-'));
    writeFileSync(join(dir, 'solution.csv'), solution.join('\n'));
    writeFileSync(join(dir, 'exact.csv'), exact.join('\n'));
    writeFileSync(join(dir, 'eroded.csv'), eroded.join('\n'));
    assert.equal((await scoreFiles(join(dir, 'exact.csv'), join(dir, 'solution.csv'))).score, 1);
    const worse = (await scoreFiles(join(dir, 'eroded.csv'), join(dir, 'solution.csv'))).score;
    assert.ok(worse > 0 && worse < 1, `eroded masks score ${worse}`);
  },
);
