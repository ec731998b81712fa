// Balanced sampling of positives and negatives for a loss (torchvision's BalancedPositiveNegativeSampler):
// at most floor(batchSize * positiveFraction) positives, negatives fill the rest of batchSize, each chosen
// uniformly at random without replacement. (Matterport sizes the ROI negatives from the positives found and pads
// with zero boxes; filling with real negatives keeps the head batch a fixed, meaningful size.)
import seedrandom from 'seedrandom';
import { negativeMatch } from './matcher.js';

/** A uniform random number in [0, 1). */
export type Rng = () => number;

export function seededRng(seed: number | string): Rng {
  return seedrandom(String(seed));
}

export interface Sample {
  /** Indices of the sampled positive predictions (matches >= 0). */
  positives: Int32Array;
  /** Indices of the sampled negative predictions (matches === negativeMatch). */
  negatives: Int32Array;
}

/** Samples from matcher output `matches` [N] (GT index >= 0, negativeMatch, or ignored). */
export function sampleBalanced(matches: Int32Array, batchSize: number, positiveFraction: number, rng: Rng): Sample {
  const positivePool: number[] = [];
  const negativePool: number[] = [];
  for (let i = 0; i < matches.length; i++) {
    const m = matches[i]!;
    if (m >= 0) positivePool.push(i);
    else if (m === negativeMatch) negativePool.push(i);
  }
  const numPositive = Math.min(Math.floor(batchSize * positiveFraction), positivePool.length);
  const numNegative = Math.min(batchSize - numPositive, negativePool.length);
  return {
    positives: Int32Array.from(chooseWithoutReplacement(positivePool, numPositive, rng)),
    negatives: Int32Array.from(chooseWithoutReplacement(negativePool, numNegative, rng)),
  };
}

/** k distinct items of `pool` in random order (partial Fisher-Yates; reorders pool). */
export function chooseWithoutReplacement<T>(pool: T[], k: number, rng: Rng): T[] {
  const n = pool.length;
  const take = Math.min(k, n);
  for (let i = 0; i < take; i++) {
    const j = i + Math.floor(rng() * (n - i));
    const tmp = pool[i]!;
    pool[i] = pool[j]!;
    pool[j] = tmp;
  }
  return pool.slice(0, take);
}
