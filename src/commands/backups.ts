// `backups`: lists the backups; `backups prune --keep N` removes all but the newest N.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { listBackups } from '../backup/restore.js';
import { closest } from '../util/suggest.js';
import { checkRoot, rejectEmpty, type Done, type Io } from './common.js';

function backups(io: Io, o: { root: string; backupDir?: string; json?: boolean; keep?: string }, prune: boolean): number {
  const root = checkRoot(o.root);
  const base = o.backupDir ? path.resolve(o.backupDir) : path.join(root, 'var/backups/cni-sweep');
  const all = listBackups(base);
  if (prune) {
    const keep = Number(o.keep);
    if (!Number.isInteger(keep) || keep < 0) throw new UsageError(`--keep: not a count: ${o.keep}`);
    const gone = all.slice(0, Math.max(0, all.length - keep));
    for (const b of gone) fs.rmSync(b.dir, { recursive: true, force: true });
    io.stdout.write(
      o.json
        ? JSON.stringify({ removed: gone.map((b) => b.dir), kept: all.slice(gone.length).map((b) => b.dir) }, null, 2) + '\n'
        : gone.map((b) => `removed ${b.dir}\n`).join('') || 'nothing to prune\n',
    );
    return 0;
  }
  if (o.json) {
    io.stdout.write(JSON.stringify(all, null, 2) + '\n');
    return 0;
  }
  if (!all.length) io.stdout.write(`no backups in ${base}\n`);
  for (const b of all) {
    io.stdout.write(
      b.ok
        ? `${b.created}  ${b.node}  ${b.cni.join(',')}  ${(b.bytes / 1024).toFixed(1)} KiB  ${b.dir}\n`
        : `(unreadable)  ${b.dir}: ${b.error}\n`,
    );
  }
  return 0;
}

export function backupsCommand(program: Command, io: Io, done: Done): void {
  program
    .command('backups [action]')
    .description('list the backups (time, node, CNI, size); `backups prune --keep N` removes all but the newest N')
    .option('--keep <n>', 'with prune: how many backups to keep')
    .option('--root <dir>', 'filesystem root', '/')
    .option('--backup-dir <dir>', 'where backups are (default: <root>/var/backups/cni-sweep)')
    .option('--json', 'as JSON')
    .action((action: string | undefined, opts: Parameters<typeof backups>[1]) => {
      rejectEmpty(opts);
      if (action !== undefined && action !== 'prune')
        throw new UsageError(
          `unknown backups action "${action}"${closest(action, ['prune']) ? ' (did you mean prune?)' : ''}`,
          'use `cni-sweep backups` or `cni-sweep backups prune --keep N`',
        );
      if (action === 'prune' && opts.keep === undefined) throw new UsageError('backups prune needs --keep <n>');
      done(backups(io, opts, action === 'prune'));
    });
}
