// `restore <backup>`: puts back what a run removed, from its backup.
import path from 'node:path';
import type { Command } from 'commander';
import { RefusedError, UsageError } from '../errors.js';
import { Gaps } from '../inspect.js';
import { renderStep } from '../plan.js';
import { planRestore, readBackup } from '../backup/restore.js';
import { VERSION, checkRoot, openHost, rejectEmpty, reporterFor, signalExit, watchInterrupts, type Done, type Io } from './common.js';

async function restore(
  io: Io,
  dir: string,
  o: { root?: string; dryRun?: boolean; json?: boolean; verbose?: boolean; quiet?: boolean },
): Promise<number> {
  const abs = path.resolve(dir);
  const manifest = readBackup(abs);
  const root = checkRoot(o.root ?? manifest.root);
  const gaps = new Gaps();
  const host = openHost(io, root, gaps);
  if (!o.dryRun && !host.isRoot()) throw new RefusedError('restore must be run as root', 'use sudo, or --dry-run to see what it would do');
  const reporter = reporterFor(io, Boolean(o.verbose), Boolean(o.quiet));
  const release = o.dryRun ? async () => {} : await host.lock('/run/cni-sweep.lock');
  // As in a run: a signal or a lost output lets the command in flight finish, then stops.
  const { interrupt, unhook } = watchInterrupts(io, !o.dryRun);
  try {
    const plan = await planRestore(host, abs, gaps);
    for (const n of plan.notes) reporter.emit({ type: 'note', phase: 'restore', text: n });
    for (const g of gaps.items) reporter.emit({ type: 'warn', text: `could not read ${g}` });
    const steps: Array<{ argv: string[]; stdin?: string; status: string; error?: string }> = [];
    let failed: string | undefined;
    if (o.dryRun) {
      for (const s of plan.steps) steps.push({ argv: s.argv, stdin: s.stdin, status: 'planned' });
    } else {
      for (const s of plan.steps) {
        if (interrupt.signal) {
          steps.push({ argv: s.argv, stdin: s.stdin, status: 'not-run' });
          continue;
        }
        reporter.emit({ type: 'step-start', phase: 'restore', step: s });
        const t0 = performance.now();
        try {
          await host.apply(s);
          steps.push({ argv: s.argv, stdin: s.stdin, status: 'ok' });
          reporter.emit({ type: 'step-end', phase: 'restore', step: s, status: 'ok', ms: Math.round(performance.now() - t0) });
        } catch (e) {
          failed = (e as Error).message;
          steps.push({ argv: s.argv, stdin: s.stdin, status: 'failed', error: failed });
          reporter.emit({
            type: 'step-end',
            phase: 'restore',
            step: s,
            status: 'failed',
            ms: Math.round(performance.now() - t0),
            error: failed,
          });
          break;
        }
      }
    }
    reporter.pause();
    const changed = !o.dryRun && steps.some((s) => s.status === 'ok');
    if (o.json)
      io.stdout.write(
        JSON.stringify(
          { changed, dryRun: Boolean(o.dryRun), backup: abs, root, cni: manifest.cni, notes: plan.notes, steps, failed },
          null,
          2,
        ) + '\n',
      );
    else if (o.dryRun) {
      const lines = [
        '#!/usr/bin/env bash',
        `# cni-sweep ${VERSION} restore plan for ${abs}`,
        `# node: ${manifest.node}; cni: ${manifest.cni.join(', ')}; taken ${manifest.created}`,
      ];
      for (const n of plan.notes) lines.push(`# ${n}`);
      lines.push(plan.steps.length ? 'set -euo pipefail' : '# nothing to restore: everything in the backup is present');
      for (const s of plan.steps) lines.push(renderStep(s));
      io.stdout.write(lines.join('\n') + '\n');
    } else
      io.stdout.write(
        `cni-sweep: restore from ${abs}: ${changed ? `${steps.filter((s) => s.status === 'ok').length} command(s) ran` : 'nothing to restore'}\n`,
      );
    if (failed) {
      io.stderr.write(`cni-sweep: error: restore failed: ${failed}\n`);
      return 1;
    }
    if (interrupt.signal) {
      io.stderr.write(
        `cni-sweep: restore interrupted by ${interrupt.signal}: ${steps.filter((s) => s.status === 'not-run').length} command(s) not run; run it again to finish\n`,
      );
      return signalExit(interrupt.signal);
    }
    return 0;
  } finally {
    unhook();
    await release();
  }
}

export function restoreCommand(program: Command, io: Io, done: Done): void {
  program
    .command('restore <backup>')
    .description('put back the files and firewall rules a run removed (interfaces and routes are not recreated)')
    .option('--root <dir>', 'filesystem root (default: the one the backup was taken from)')
    .option('--dry-run', 'print what it would do, as a bash script')
    .option('--json', 'print the result as JSON')
    .option('--verbose', 'every command line in full, and stack traces on errors')
    .option('-q, --quiet', 'no progress on stderr, only warnings and errors')
    .action(async (dir: string, opts: Parameters<typeof restore>[2]) => {
      rejectEmpty(opts);
      if (dir.trim() === '') throw new UsageError('restore: empty backup name', 'pass a directory listed by `cni-sweep backups`');
      done(await restore(io, dir, opts));
    });
}
