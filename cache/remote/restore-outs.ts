// Restoring a stage's outs that come from a remote: the one path `runner pull` and `runner run --remote` share.
// A directory out that arrives in a pack is built while it downloads (../streamed-restore.ts, handed over by
// RemoteTransfer through `arrived`) and renamed into place once the whole stage is in the store, as the
// store's own restore would be; every other out is restored from the store once it is there. A tree that is
// not restored (the stage turned out to be a miss, or the caller stopped) is discarded: nothing of it reaches
// the workspace.
import type { StatCache } from '../stat-cache.js';
import type { Store } from '../store.js';
import type { StreamedTree } from '../streamed-restore.js';
import type { PathHash } from '../types.js';
import type { StreamRestore } from './transfer.js';

export class RemoteOutsRestore implements StreamRestore {
  /** Trees streamed in, by out (path and hash), waiting to be finished or discarded. */
  private readonly trees = new Map<string, StreamedTree>();

  constructor(
    private readonly store: Store,
    readonly workspace: string,
    readonly statCache: StatCache,
    /** Whether this out is to be restored (it is missing or differs in the workspace). */
    readonly wants: (out: PathHash) => boolean = () => true,
  ) {}

  arrived(out: PathHash, tree: StreamedTree): void {
    this.trees.set(keyOf(out), tree);
  }

  /**
   * Restores each out it wants (the store holds them all by now): from its streamed tree where one arrived,
   * else from the store. Returns how many it restored; throws as Store.restore does. Whatever tree is left
   * (an out it does not want, or one after a failure) is discarded.
   */
  async restore(outs: readonly PathHash[]): Promise<number> {
    let restored = 0;
    try {
      for (const out of outs) {
        if (!this.wants(out)) continue;
        const tree = this.trees.get(keyOf(out));
        this.trees.delete(keyOf(out));
        if (tree) await this.store.finishStreamedRestore(tree, out, this.statCache);
        else await this.store.restore(this.workspace, out, this.statCache);
        restored++;
      }
    } finally {
      await this.discard();
    }
    return restored;
  }

  /** Removes every tree not restored; nothing of them reaches the workspace. */
  async discard(): Promise<void> {
    const left = [...this.trees.values()];
    this.trees.clear();
    for (const tree of left) await tree.discard();
  }
}

function keyOf(out: PathHash): string {
  return `${out.path}\0${out.hash}`;
}
