// `restore <backup|name|latest>`: puts back what a run removed, from its backup, through the same
// apply loop as a run.
import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { RefusedError, UsageError } from '../errors.js';
import { Gaps } from '../inspect.js';
import { renderStep } from '../plan.js';
import { applySteps } from '../run.js';
import { listBackups, planRestore, readBackup, type RestorePlan } from '../backup/restore.js';
import { closest } from '../util/suggest.js';
import {
  VERSION,
  backupBase,
  checkRoot,
  openHost,
  rejectEmpty,
  reporterFor,
  signalExit,
  watchInterrupts,
  type Done,
  type Io,
} from './common.js';

type RestoreOpts = {
  root?: string;
  node?: string;
  backupDir?: string;
  dryRun?: boolean;
  json?: boolean;
  verbose?: boolean;
  quiet?: boolean;
};

/**
 * The backup directory a name stands for: a path (it has a slash, or exists as given), else a
 * name listed by `cni-sweep backups` under the backup dir, or `latest`, the newest readable one.
 */
export function resolveBackup(name: string, o: { root?: string; backupDir?: string }, node?: string): string {
  if (name.includes('/') || fs.existsSync(name)) return path.resolve(name);
  const base = backupBase(o.root ?? '/', o.backupDir);
  const all = listBackups(base);
  const hint = `names are listed by \`cni-sweep backups\`${o.backupDir ? ` --backup-dir ${o.backupDir}` : ''}`;
  if (name === 'latest') {
    // This node's newest: a backup dir shared by a fleet holds other nodes' too.
    const readable = all.filter((b) => b.ok);
    const nodes = [...new Set(readable.map((b) => b.node))];
    if (!node && nodes.length > 1)
      throw new UsageError(
        `restore latest: ${base} holds backups of several nodes (${nodes.join(', ')})`,
        'pass --node <name>, or name the backup',
      );
    const newest = readable.filter((b) => !node || b.node === node).at(-1);
    if (!newest)
      throw new UsageError(
        `restore latest: no readable backup${node ? ` of node ${node}` : ''} in ${base}${node && nodes.length ? ` (there are of ${nodes.join(', ')})` : ''}`,
        hint,
      );
    return newest.dir;
  }
  const found = all.find((b) => path.basename(b.dir) === name);
  if (found) return found.dir;
  const guess = closest(
    name,
    all.map((b) => path.basename(b.dir)),
  );
  throw new UsageError(`restore: no backup named "${name}" in ${base}${guess ? ` (did you mean ${guess}?)` : ''}`, hint);
}

/** What a restore put back (or would), by kind, from its steps' declarations. */
function restoredCounts(plan: RestorePlan, ok: (i: number) => boolean) {
  const out = { paths: 0, firewallRules: 0, nftablesTables: 0, ipsets: 0 };
  plan.steps.forEach((s, i) => {
    if (!ok(i) || !s.removes) return;
    const n = s.removes.items.length;
    if (s.removes.kind === 'file restored') out.paths += n;
    else if (s.removes.kind === 'nftables table restored') out.nftablesTables += n;
    else if (s.removes.kind === 'ipset restored') out.ipsets += n;
    else out.firewallRules += n;
  });
  return out;
}

const countWords = (c: ReturnType<typeof restoredCounts>) =>
  [
    c.paths ? `${c.paths} ${c.paths === 1 ? 'path' : 'paths'}` : '',
    c.firewallRules ? `${c.firewallRules} firewall ${c.firewallRules === 1 ? 'rule' : 'rules'}` : '',
    c.nftablesTables ? `${c.nftablesTables} nftables ${c.nftablesTables === 1 ? 'table' : 'tables'}` : '',
    c.ipsets ? `${c.ipsets} ${c.ipsets === 1 ? 'ipset' : 'ipsets'}` : '',
  ]
    .filter(Boolean)
    .join(', ');

async function restore(io: Io, name: string, o: RestoreOpts): Promise<number> {
  // The node restored onto: --node, else this machine's own name when its / is the root restored
  // onto (under --root the disk may be any node's, and the machine's name says nothing of it).
  const gaps = new Gaps();
  const machine = openHost(io, checkRoot('/'), gaps).hostname();
  const node = o.node ?? ((o.root ?? '/') === '/' ? machine : undefined);
  const abs = resolveBackup(name, o, node);
  const manifest = readBackup(abs);
  const root = checkRoot(o.root ?? manifest.root);
  const onto = o.node ?? (root === '/' ? machine : undefined);
  if (onto && manifest.node !== onto)
    throw new RefusedError(
      `restore: ${abs} is node ${manifest.node}'s backup, and this is node ${onto}: its IPAM allocations, subnet and rules are not this node's`,
      `pass --node ${manifest.node} if this is that node (renamed), or restore this node's own backup`,
    );
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
    const applied = o.dryRun ? null : await applySteps({ host, reporter, interrupt }, 'restore', plan.steps);
    const steps = applied
      ? applied.phase.steps.map((s) => ({ argv: s.argv, stdin: s.stdin, status: s.status, error: s.error }))
      : plan.steps.map((s) => ({ argv: s.argv, stdin: s.stdin, status: 'planned' }));
    const failed = applied?.error?.message;
    reporter.pause();
    const changed = Boolean(applied?.changed);
    // What really went back: a step that failed or did not run restored nothing that is counted.
    const restored = restoredCounts(plan, (i) => (o.dryRun ? false : steps[i]?.status === 'ok'));
    const wouldRestore = o.dryRun ? restoredCounts(plan, () => true) : undefined;
    if (o.json)
      io.stdout.write(
        JSON.stringify(
          {
            changed,
            dryRun: Boolean(o.dryRun),
            backup: abs,
            root,
            cni: manifest.cni,
            restored,
            ...(wouldRestore ? { wouldRestore } : {}),
            notes: plan.notes,
            steps,
            failed,
          },
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
      if (wouldRestore && countWords(wouldRestore)) lines.push(`# would restore: ${countWords(wouldRestore)}`);
      for (const n of plan.notes) lines.push(`# ${n}`);
      lines.push(plan.steps.length ? 'set -euo pipefail' : '# nothing to restore: everything in the backup is present');
      for (const s of plan.steps) lines.push(renderStep(s));
      io.stdout.write(lines.join('\n') + '\n');
    } else
      io.stdout.write(
        `cni-sweep: restore from ${abs}: ${countWords(restored) ? `restored ${countWords(restored)}` : plan.steps.length ? 'nothing was restored' : 'nothing to restore: everything in the backup is present'}\n`,
      );
    if (failed) {
      io.stderr.write(`cni-sweep: error: restore failed: ${failed}\n`);
      return 1;
    }
    if (interrupt.signal) {
      const notRun = steps.filter((s) => s.status === 'not-run').length;
      io.stderr.write(
        `cni-sweep: restore interrupted by ${interrupt.signal}: ${notRun} ${notRun === 1 ? 'command' : 'commands'} not run; run it again to finish\n`,
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
    .description(
      'put back the files, firewall rules and ipsets a run removed (interfaces and routes are not recreated); <backup> is a directory, a name listed by `cni-sweep backups`, or latest',
    )
    .option('--root <dir>', 'filesystem root (default: the one the backup was taken from)')
    .option('--backup-dir <dir>', 'where to look up a backup name (default: <root>/var/backups/cni-sweep)')
    .option(
      '--node <name>',
      "the node restored onto: latest is its newest backup, and another node's is refused (default: the hostname, without --root)",
    )
    .option('--dry-run', 'print what it would do, as a bash script')
    .option('--json', 'print the result as JSON')
    .option('--verbose', 'every command line in full, and stack traces on errors')
    .option('-q, --quiet', 'no progress on stderr, only warnings and errors')
    .option('--no-color', 'no colour and no spinner')
    .addHelpText(
      'after',
      '\nExamples:\n  cni-sweep restore latest --dry-run\n  cni-sweep restore 20261121T210000Z-node-1\n  cni-sweep restore /var/backups/cni-sweep/20261121T210000Z-node-1\n',
    )
    .action(async (name: string, opts: RestoreOpts) => {
      rejectEmpty(opts);
      if (name.trim() === '') throw new UsageError('restore: empty backup name', 'pass a name listed by `cni-sweep backups`, or latest');
      done(await restore(io, name, opts));
    });
}
