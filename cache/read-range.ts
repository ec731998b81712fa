// Reading an exact range of a file (an object inside a pack): positional reads, so several readers of one
// descriptor never move a shared offset; a file that ends early is a short count, never a hang or a throw.
import { readSync } from 'node:fs';

/** Fills `into` from `fd` at `position`; returns how many bytes were there (less than asked: the file ends). */
export function readRange(fd: number, into: Buffer, position: number): number {
  let got = 0;
  while (got < into.length) {
    const n = readSync(fd, into, got, into.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}
