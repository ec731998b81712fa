// The train step's numbers pinned: three AMSGrad steps of the tiny model on the cpu backend from its seeded
// initialisation, with gradients under the clip norm and clipped, must leave the losses and weights recorded below
// (recorded from the model at commit 6947561, before it was composed of parts; RECORD=1 prints a run's values).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { selectBackend } from '../../stages/model/backend.js';
import { MaskRcnn, type Losses } from '../../stages/model/mask-rcnn.js';
import { buildTrainBatch } from '../../stages/model/molding.js';
import { seededRng } from '../../stages/model/sampler.js';
import { Amsgrad } from '../../stages/train/amsgrad.js';
import { squares } from '../helpers/square-nuclei.js';
import { TINY_SIZE, tinyMaskRcnnConfig } from '../helpers/tiny-mask-rcnn.js';

/** What a run leaves: the losses of each step, the validation losses after them, and the weights. */
interface Run {
  steps: Losses[];
  validation: Losses;
  weightsSha256: string;
  weightsAbsSum: number;
}

const recorded: Record<'unclipped' | 'clipped', Run> = {
  unclipped: {
    steps: [
      { loss_objectness: 12.037936210632324, loss_rpn_box_reg: 17.026052474975586, loss_classifier: 10.506553649902344, loss_box_reg: 19.82981300354004, loss_mask: 1.2040506601333618, loss_weight_decay: 0.00011413910397095606, loss_total: 60.604520138287626 },
      { loss_objectness: 11.698554992675781, loss_rpn_box_reg: 3.414721965789795, loss_classifier: 0.7286050319671631, loss_box_reg: 6.268603801727295, loss_mask: 0.6460760831832886, loss_weight_decay: 0.000114077003672719, loss_total: 22.756675952346995 },
      { loss_objectness: 12.759989738464355, loss_rpn_box_reg: 0, loss_classifier: 0.0004494944878388196, loss_box_reg: 0, loss_mask: 0, loss_weight_decay: 0.00011400091170798987, loss_total: 12.760553233863902 },
    ],
    validation: { loss_objectness: 7.324582099914551, loss_rpn_box_reg: 13.311363220214844, loss_classifier: 1.7387480735778809, loss_box_reg: 4.840887069702148, loss_mask: 0.3295387923717499, loss_weight_decay: 0.00011392899614293128, loss_total: 27.545233184777317 },
    weightsSha256: 'ed3f65b6c5f8bf2759d5fd31dd3a11c5df4540bfb62068bb675bd56a9199fe67',
    weightsAbsSum: 18651.30727495956,
  },
  clipped: {
    steps: [
      { loss_objectness: 12.037936210632324, loss_rpn_box_reg: 17.026052474975586, loss_classifier: 10.506553649902344, loss_box_reg: 19.82981300354004, loss_mask: 1.2040506601333618, loss_weight_decay: 0.00011413910397095606, loss_total: 60.604520138287626 },
      { loss_objectness: 11.698023796081543, loss_rpn_box_reg: 3.4302289485931396, loss_classifier: 0.7297452688217163, loss_box_reg: 6.2892866134643555, loss_mask: 0.645256757736206, loss_weight_decay: 0.00011411795276217163, loss_total: 22.792655502649723 },
      { loss_objectness: 11.412970542907715, loss_rpn_box_reg: 0, loss_classifier: 0.006207020953297615, loss_box_reg: 0, loss_mask: 0, loss_weight_decay: 0.00011408815043978393, loss_total: 11.419291652011452 },
    ],
    validation: { loss_objectness: 5.7718505859375, loss_rpn_box_reg: 9.911081314086914, loss_classifier: 1.3038976192474365, loss_box_reg: 5.0870361328125, loss_mask: 0.28786149621009827, loss_weight_decay: 0.00011406750127207488, loss_total: 22.36184121579572 },
    weightsSha256: '16570b93f33d05abee75dddd85591fdcd177577b3974b7766edabaca7bf078f7',
    weightsAbsSum: 18650.36593061638,
  },
};

const STEPS = 3;

async function train(clipNorm: number): Promise<Run> {
  const tiny = tinyMaskRcnnConfig();
  const config = { ...tiny, train: { ...tiny.train, clipNorm } };
  const samples = [squares(TINY_SIZE, TINY_SIZE, [[5, 5], [30, 35]]), squares(TINY_SIZE, TINY_SIZE, [[40, 8]]), squares(TINY_SIZE, TINY_SIZE, [])];
  const model = new MaskRcnn(config);
  const optimizer = new Amsgrad({ learningRate: 1e-3 });
  const steps: Losses[] = [];
  for (let step = 0; step < STEPS; step++) {
    model.reseedSampling(`step ${step}`);
    const batch = buildTrainBatch([samples[step % samples.length]!], { ...config.image }, seededRng(step));
    try {
      steps.push(await model.trainStep(optimizer, batch));
    } finally {
      batch.images.dispose();
    }
  }
  const valBatch = buildTrainBatch(samples.slice(0, 1), { ...config.image }, seededRng('validation'));
  const validation = await model.losses(valBatch);
  valBatch.images.dispose();
  const hash = createHash('sha256');
  let weightsAbsSum = 0;
  for (const name of model.store.names()) {
    const values = model.store.get(name)!.dataSync() as Float32Array;
    hash.update(name);
    hash.update(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
    for (const v of values) weightsAbsSum += Math.abs(v);
  }
  model.dispose();
  optimizer.dispose();
  return { steps, validation, weightsSha256: hash.digest('hex'), weightsAbsSum };
}

test(`${STEPS} train steps on cpu with gradients under the clip norm give exactly the recorded losses and weights`, async () => {
  await selectBackend('cpu', () => {});
  const run = await train(1e9);
  if (process.env['RECORD'] === '1') console.log('unclipped', JSON.stringify(run, null, 1));
  assert.deepEqual(run, recorded.unclipped);
});

test(`${STEPS} train steps on cpu with clipped gradients give the recorded losses and weights`, async () => {
  await selectBackend('cpu', () => {});
  const run = await train(5);
  if (process.env['RECORD'] === '1') console.log('clipped', JSON.stringify(run, null, 1));
  assert.deepEqual(run, recorded.clipped);
});
