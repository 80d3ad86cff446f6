// `backups`: lists the backups; `backups prune --keep N` removes all but the newest N readable ones, through the
// same apply loop and host as a run.
import type { Command } from 'commander';
import { RefusedError, UsageError } from '../errors.js';
import { Gaps } from '../inspect.js';
import { renderStep } from '../plan.js';
import { applySteps } from '../run.js';
import { listBackups } from '../backup/restore.js';
import { closest } from '../util/suggest.js';
import { backupBase, checkRoot, openHost, rejectEmpty, reporterFor, type Done, type Io } from './common.js';

type BackupsOpts = {
  root: string;
  backupDir?: string;
  json?: boolean;
  keep?: string;
  yes?: boolean;
  dryRun?: boolean;
  verbose?: boolean;
  quiet?: boolean;
};

async function prune(io: Io, o: BackupsOpts, root: string, base: string): Promise<number> {
  const keep = Number(o.keep);
  if (!Number.isInteger(keep) || keep < 0) throw new UsageError(`--keep: not a count: ${o.keep}`);
  const all = listBackups(base);
  // --keep counts backups restore can read: a half-written one (a run killed while writing it) is
  // no way back, and counting it would remove the last good one. Such a one goes when a good one
  // newer than it stays, and with --keep 0.
  const good = all.filter((b) => b.ok);
  const newestKept = keep ? good.slice(-keep) : [];
  const newest = newestKept.at(-1)?.dir;
  const gone = all.filter((b) => (b.ok ? !newestKept.includes(b) : keep === 0 || (newest !== undefined && b.dir < newest)));
  const kept = all.filter((b) => !gone.includes(b));
  const steps = gone.length ? [{ argv: ['rm', '-rf', '--', ...gone.map((b) => b.dir)] }] : [];
  // Every backup gone is every way back gone: asked for, as a run is.
  if (keep === 0 && gone.length && !o.dryRun && !o.yes) {
    const question = `remove all ${gone.length} backups in ${base}? There is then no \`cni-sweep restore\`. [y/N] `;
    if (!io.ask || !io.stdinIsTty)
      throw new RefusedError('refusing to remove every backup without confirmation', 'pass --yes, or --dry-run to see what would go');
    if (!/^y(es)?$/i.test((await io.ask(question)).trim())) throw new RefusedError('not confirmed: no backup was removed');
  }
  let failed: string | undefined;
  if (!o.dryRun && steps.length) {
    const reporter = reporterFor(io, Boolean(o.verbose), Boolean(o.quiet));
    // cni-sweep's own files, like the backup a run writes: no cached reading of the node goes stale.
    const host = openHost(io, root, new Gaps());
    const applied = await applySteps({ host, reporter }, 'prune', steps, true);
    reporter.pause();
    failed = applied.error?.message;
  }
  const removed = failed ? [] : gone.map((b) => b.dir);
  if (o.json)
    io.stdout.write(
      JSON.stringify(
        { dryRun: Boolean(o.dryRun), removed, wouldRemove: o.dryRun ? gone.map((b) => b.dir) : undefined, kept: kept.map((b) => b.dir) },
        null,
        2,
      ) + '\n',
    );
  else if (o.dryRun)
    io.stdout.write(
      steps.length
        ? `#!/usr/bin/env bash\n# cni-sweep backups prune --keep ${keep}: removes ${gone.length} of ${all.length} backups in ${base}, keeps ${kept.length}\nset -euo pipefail\n${steps.map((s) => renderStep(s)).join('\n')}\n`
        : `# nothing to prune: ${all.length} ${all.length === 1 ? 'backup' : 'backups'} in ${base}, --keep ${keep}\n`,
    );
  else io.stdout.write(removed.map((d) => `removed ${d}\n`).join('') || (failed ? '' : 'nothing to prune\n'));
  if (failed) {
    io.stderr.write(`cni-sweep: error: prune failed: ${failed}\n`);
    return 1;
  }
  return 0;
}

async function backups(io: Io, o: BackupsOpts, pruning: boolean): Promise<number> {
  const root = checkRoot(o.root);
  const base = backupBase(root, o.backupDir);
  if (pruning) return prune(io, o, root, base);
  const all = listBackups(base);
  if (o.json) {
    io.stdout.write(JSON.stringify(all, null, 2) + '\n');
    return 0;
  }
  if (!all.length) {
    io.stdout.write(`no backups in ${base}\n`);
    return 0;
  }
  // The NAME column is what `cni-sweep restore NAME` takes.
  const rows = all.map((b) => [
    b.ok ? b.created : '(unreadable)',
    b.ok ? b.node : '-',
    b.ok ? b.cni.join(',') : '-',
    `${(b.bytes / 1024).toFixed(1)} KiB`,
    b.dir.slice(base.length + 1),
  ]);
  const head = ['CREATED', 'NODE', 'CNI', 'SIZE', 'NAME'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ');
  io.stdout.write(`${line(head)}\n${rows.map(line).join('\n')}\n`);
  for (const b of all) if (!b.ok) io.stderr.write(`cni-sweep: warning: ${b.dir}: ${b.error}\n`);
  return 0;
}

export function backupsCommand(program: Command, io: Io, done: Done): void {
  program
    .command('backups [action]')
    .description('list the backups (time, node, CNI, size, name); `backups prune --keep N` removes all but the newest N')
    .option('--keep <n>', 'with prune: how many backups to keep (0 asks first, or needs --yes)')
    .option('--root <dir>', 'filesystem root', '/')
    .option('--backup-dir <dir>', 'where backups are (default: <root>/var/backups/cni-sweep)')
    .option('--dry-run', 'with prune: print what it would remove, as a bash script')
    .option('-y, --yes', 'with prune: do not ask before removing every backup')
    .option('--json', 'as JSON')
    .option('--verbose', 'every command line in full, and stack traces on errors')
    .option('-q, --quiet', 'no progress on stderr, only warnings and errors')
    .option('--no-color', 'no colour')
    .addHelpText('after', '\nExamples:\n  cni-sweep backups\n  cni-sweep backups prune --keep 5 --dry-run\n  cni-sweep restore latest\n')
    .action(async (action: string | undefined, opts: BackupsOpts) => {
      rejectEmpty(opts);
      if (action !== undefined && action !== 'prune')
        throw new UsageError(
          `unknown backups action "${action}"${closest(action, ['prune']) ? ' (did you mean prune?)' : ''}`,
          'use `cni-sweep backups` or `cni-sweep backups prune --keep N`',
        );
      if (action === 'prune' && opts.keep === undefined) throw new UsageError('backups prune needs --keep <n>');
      done(await backups(io, opts, action === 'prune'));
    });
}
