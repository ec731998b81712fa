// `runner exp list | show <id> | remove <id>…`: the experiment records of a workspace (.runner/exps/).
import { join } from 'node:path';
import type { Values } from './values.js';
import { didYouMean, fail } from '../spec/diagnostics.js';
import { formatValue } from '../experiments/compare-format.js';
import { listRecords, listUnrecorded, removeRecord, resolveRecord, type ExperimentRecord } from '../experiments/record.js';
import { findWorkspace } from '../workspace.js';
import { lockWorkspace } from '../workspace-lock.js';

/** `--workspace`, else the nearest ancestor of the cwd holding .runner/, .git or package.json. */
export function experimentsWorkspace(values: Values): string {
  return findWorkspace(join(process.cwd(), 'any'), typeof values['workspace'] === 'string' ? values['workspace'] : undefined);
}

function listLine(record: ExperimentRecord, nameWidth: number): string {
  const overrides = Object.entries(record.overrides).map(([k, v]) => `${k}=${formatValue(v)}`).join(' ') || '(pipeline params)';
  const stages = Object.values(record.stages);
  const ran = stages.filter((s) => s.status === 'ran').length;
  return `${record.id}  ${record.name.padEnd(nameWidth)} ${record.status.padEnd(6)} ${record.finishedAt.slice(0, 19).replace('T', ' ')}  ${ran}/${stages.length} ran  ${overrides}`;
}

const SUBCOMMANDS = ['list', 'show', 'remove'];

export async function expCommand(args: string[], values: Values): Promise<number> {
  const [sub, ...refs] = args;
  const workspace = experimentsWorkspace(values);
  const records = listRecords(workspace);
  const json = values['json'] === true;
  switch (sub) {
    case 'list': {
      if (refs.length) fail(`exp list takes no arguments, got "${refs[0]}"`);
      const interrupted = listUnrecorded(workspace);
      if (json) {
        process.stdout.write(JSON.stringify(records, null, 2) + '\n');
        return 0;
      }
      const lines = records.map((r) => listLine(r, Math.max(...records.map((x) => x.name.length))));
      for (const id of interrupted) lines.push(`${id}  (interrupted: no record; rerun its sweep to resume from its checkpoints, or \`runner exp remove ${id}\`)`);
      process.stdout.write(lines.length ? lines.join('\n') + '\n' : 'no experiments yet (run `runner sweep`)\n');
      return 0;
    }
    case 'show': {
      if (refs.length !== 1) fail('exp show takes one experiment (id, id prefix or name)');
      const record = resolveRecord(records, refs[0]!, 'exp show');
      process.stdout.write(JSON.stringify(record, null, 2) + '\n');
      return 0;
    }
    case 'remove': {
      if (refs.length === 0) fail('exp remove takes one or more experiments (id, id prefix or name)');
      const interrupted = listUnrecorded(workspace);
      // An interrupted experiment's folder, named by its id (or a 4+ character prefix of it): no record to resolve.
      const folderOf = (ref: string): string | undefined => {
        if (records.some((r) => r.id === ref || r.name === ref)) return undefined;
        const matches = interrupted.filter((id) => id === ref || (ref.length >= 4 && id.startsWith(ref)));
        return matches.length === 1 ? matches[0] : undefined;
      };
      const chosen = refs.map((ref) => folderOf(ref) ?? resolveRecord(records, ref, 'exp remove'));
      // A folder without a record may be a sweep's current experiment: only with the workspace to ourselves.
      const release = chosen.some((c) => typeof c === 'string') ? await lockWorkspace(workspace) : undefined;
      try {
        for (const c of chosen) {
          removeRecord(workspace, typeof c === 'string' ? c : c.id);
          process.stdout.write(typeof c === 'string' ? `removed ${c} (interrupted, no record)\n` : `removed ${c.id} (${c.name})\n`);
        }
      } finally {
        await release?.();
      }
      return 0;
    }
    default:
      fail(sub === undefined ? `exp needs a subcommand: ${SUBCOMMANDS.join(', ')}` : `unknown exp subcommand "${sub}"${didYouMean(sub, SUBCOMMANDS)}; subcommands: ${SUBCOMMANDS.join(', ')}`);
  }
}
