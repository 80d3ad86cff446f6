// What every command shares: the I/O it is given, option parsing and validation, the host and the reporter.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { UsageError } from '../errors.js';
import type { Reporter } from '../events.js';
import type { Host } from '../host/host.js';
import { inRoot } from '../host/in-root.js';
import { tolerantReads } from '../host/tolerant.js';
import type { Gaps } from '../inspect.js';
import { PHASES, PHASE_NAMES } from '../phases/index.js';
import { PROFILES_DIR } from '../profiles/files.js';
import { parsePrefix, networkOf, type Prefix } from '../util/cidr.js';
import { closest } from '../util/suggest.js';
import { PlainReporter } from '../report/plain.js';

declare const __CNI_SWEEP_VERSION__: string | undefined;
export const VERSION = typeof __CNI_SWEEP_VERSION__ === 'string' ? __CNI_SWEEP_VERSION__ : '0.0.0-dev';

export interface Io {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdinIsTty: boolean;
  stderrIsTty: boolean;
  env: NodeJS.ProcessEnv;
  makeHost: (root: string) => Host;
  /** Asks the operator; only called when stdin is a terminal. */
  ask?: (question: string) => Promise<string>;
  /** Registers signal handling for a real run; returns a function that removes it. */
  onSignals?: (handler: (sig: NodeJS.Signals) => void) => () => void;
  makeReporter?: (opts: { verbose: boolean; quiet: boolean }) => Reporter;
}

export const list = (v: string | undefined) =>
  v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];

/**
 * Every name of a value list that is not a known one, reported at once, each with the known name it
 * is probably a typo of. Returns the names as known (with their case, when `anyCase`).
 */
export function knownNames(what: string, names: string[], known: readonly string[], hint: string, anyCase = false): string[] {
  const find = (n: string) => known.find((k) => k === n || (anyCase && k.toLowerCase() === n.toLowerCase()));
  const bad = names.filter((n) => !find(n));
  if (bad.length) {
    const each = bad.map((n) => {
      const guess = closest(n, known);
      return `"${n}"${guess ? ` (did you mean ${guess}?)` : ''}`;
    });
    throw new UsageError(`unknown ${bad.length > 1 ? `${what}s` : what} ${each.join(', ')}`, hint);
  }
  return names.map((n) => find(n) ?? n);
}

export const cniNames = (names: string[], all: Array<{ name: string }>) =>
  knownNames(
    'CNI',
    names,
    all.map((p) => p.name),
    `known CNIs: ${all.map((x) => x.name).join(', ')}`,
    true,
  );

export const distroName = (name: string, all: Array<{ name: string }>) =>
  knownNames(
    'distribution',
    [name],
    all.map((d) => d.name),
    `known distributions: ${all.map((x) => x.name).join(', ')}`,
    true,
  )[0] ?? name;

export const CommonOpts = z.object({
  cni: z.string().optional(),
  root: z.string().default('/'),
  skip: z.string().optional(),
  only: z.string().optional(),
  with: z.string().optional(),
  keepSandboxes: z.boolean().default(false),
  node: z.string().min(1).optional(),
  kubeconfig: z.string().optional(),
  podCidr: z.string().optional(),
  json: z.boolean().default(false),
  yes: z.boolean().default(false),
  uncordon: z.boolean().default(false),
  verbose: z.boolean().default(false),
  quiet: z.boolean().default(false),
  color: z.boolean().default(true),
  dryRun: z.boolean().default(false),
  restartOnFailure: z.boolean().default(true),
  drainTimeout: z.coerce.number().int().positive().default(300),
  backupDir: z.string().optional(),
  distro: z.string().optional(),
  profile: z.array(z.string()).default([]),
});
export type CommonOpts = z.infer<typeof CommonOpts>;

/** --profile FILE, repeatable: each one adds a profile. */
export const PROFILE_OPTION = [
  '--profile <file>',
  `a profile from a file (JSON or YAML; see \`cni-sweep profiles --schema\`), repeatable; <root>${PROFILES_DIR}/*.json|*.yaml|*.yml are read too`,
  (v: string, prev: string[]) => [...prev, v],
  [] as string[],
] as const;

export function addCommon(cmd: Command): Command {
  return cmd
    .option('--cni <names>', 'CNIs to remove, comma-separated (default: detect what is on the node)')
    .option('--root <dir>', 'filesystem root every path is resolved under', '/')
    .option('--skip <phases>', 'phases to skip, comma-separated')
    .option('--only <phases>', 'run only these phases, comma-separated')
    .option('--with <phases>', 'add opt-in phases: modules (remove-sandboxes is accepted and now runs by default)')
    .option('--keep-sandboxes', 'do not remove the pod sandboxes on the removed network: they keep running without a network')
    .option('--node <name>', 'Kubernetes node name (default: hostname)')
    .option(
      '--kubeconfig <path>',
      "kubeconfig for drain/uncordon (default: $KUBECONFIG, else the distribution's admin kubeconfig: k3s.yaml, rke2.yaml, microk8s's client.config; else /etc/kubernetes/admin.conf)",
    )
    .option('--pod-cidr <cidrs>', 'pod network CIDR(s), when /run/flannel/subnet.env is gone')
    .option('--drain-timeout <seconds>', 'how long kubectl drain may take', '300')
    .option('--backup-dir <dir>', 'where backups go (default: <root>/var/backups/cni-sweep)')
    .option('--distro <name>', 'kubeadm, k3s, rke2 or microk8s (default: detected from units and files)')
    .option(...PROFILE_OPTION)
    .option('--json', 'print the report as one JSON document on stdout')
    .option('--verbose', 'every command line in full, more progress output, and stack traces on errors')
    .option('-q, --quiet', 'no progress on stderr, only warnings and errors')
    .option('--no-color', 'no colour and no spinner');
}

export function phaseHelp(): string {
  const w = Math.max(...PHASES.map((p) => p.name.length));
  return (
    '\nPhases, in order (opt-in ones run only with --with):\n' + PHASES.map((p) => `  ${p.name.padEnd(w)}  ${p.summary}`).join('\n') + '\n'
  );
}

export function selectPhases(o: CommonOpts): Set<string> {
  const only = list(o.only);
  const skip = list(o.skip);
  const extra = list(o.with);
  knownNames('phase', [...new Set([...only, ...skip, ...extra])], PHASE_NAMES, `phases: ${PHASE_NAMES.join(', ')}`);
  if (only.length && skip.length) throw new UsageError('--only and --skip cannot be used together');
  const optIn = new Set(PHASES.filter((p) => p.optIn).map((p) => p.name));
  // remove-sandboxes was opt-in and runs by default now: `--with remove-sandboxes` stays accepted.
  for (const n of extra)
    if (!optIn.has(n) && n !== 'remove-sandboxes')
      throw new UsageError(`--with takes opt-in phases only (${[...optIn].join(', ')}), not "${n}"`);
  // Nothing is removed without a backup: --only with a cleanup phase brings the backup along.
  if (only.length) {
    const cleans = PHASES.some((p) => p.cleanup && only.includes(p.name));
    return new Set(PHASES.filter((p) => only.includes(p.name) || (cleans && p.writesBackup)).map((p) => p.name));
  }
  return new Set(PHASE_NAMES.filter((n) => !skip.includes(n) && (!optIn.has(n) || extra.includes(n))));
}

export function parseCidrs(v: string | undefined): Prefix[] {
  return list(v).map((c) => {
    const p = parsePrefix(c);
    if (!p || !c.includes('/')) throw new UsageError(`--pod-cidr: not a CIDR: ${c}`);
    return networkOf(p);
  });
}

export function checkRoot(root: string): string {
  const abs = path.resolve(root);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new UsageError(`--root ${root}: no such directory`);
  }
  if (!st.isDirectory()) throw new UsageError(`--root ${root}: not a directory`);
  // As the kernel names it: mount points (mountinfo, findmnt) are compared with paths under it.
  return fs.realpathSync(abs);
}

/** Where backups are: --backup-dir, else <root>/var/backups/cni-sweep (looked up inside the root). */
export const backupBase = (root: string, backupDir?: string) =>
  backupDir ? path.resolve(backupDir) : inRoot(path.resolve(root), '/var/backups/cni-sweep', true);

/** The host a command reads: without root, reads it may not make become gaps, reported instead of failing. */
export function openHost(io: Io, root: string, gaps: Gaps): Host {
  const host = io.makeHost(root);
  return host.isRoot() ? host : tolerantReads(host, gaps);
}

export function reporterFor(io: Io, verbose: boolean, quiet = false): Reporter {
  return io.makeReporter?.({ verbose, quiet }) ?? new PlainReporter(io.stderr, verbose, quiet);
}

/** --kubeconfig, else $KUBECONFIG of the caller's environment. */
export const kubeconfigOf = (io: Io, o: { kubeconfig?: string }) => o.kubeconfig ?? (io.env.KUBECONFIG || undefined);

/** While `active` (a real run or restore), records the signal (or lost output) that asks it to stop; it stops between commands. */
export function watchInterrupts(io: Io, active: boolean) {
  const interrupt = { signal: null as NodeJS.Signals | null };
  const unhook = active && io.onSignals ? io.onSignals((sig) => (interrupt.signal = sig)) : () => {};
  return { interrupt, unhook };
}

/** The exit code a shell reports for a process a signal ended: 128 + its number. */
export const signalExit = (sig: string) => 128 + ((os.constants.signals as Record<string, number>)[sig] ?? 15);
export const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * An empty value is never what was meant: `--root ''` would resolve to the working directory,
 * `--only ''` would run every phase, `--keep ''` would prune every backup. A list option must name
 * something too (`--only ,`). Typically a templated variable that was not set.
 */
export function rejectEmpty(opts: Record<string, unknown>, lists: string[] = []): void {
  for (const [key, v] of Object.entries(opts)) {
    if (typeof v !== 'string') continue;
    if (v.trim() === '') throw new UsageError(`${flag(key)}: empty value`, `give ${flag(key)} a value, or leave the option out`);
    if (lists.includes(key) && !list(v).length) throw new UsageError(`${flag(key)}: no names in "${v}"`);
  }
}

export function parse(opts: Record<string, unknown>): CommonOpts {
  rejectEmpty(opts, ['cni', 'skip', 'only', 'with', 'podCidr']);
  const r = CommonOpts.safeParse(opts);
  if (!r.success) {
    const i = r.error.issues[0]!; // a failed parse has at least one issue
    throw new UsageError(`${flag(String(i.path[0]))}: ${i.message}`);
  }
  return r.data;
}

/** Sets the exit code of the command that ran. */
export type Done = (code: number) => void;
