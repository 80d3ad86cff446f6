// Command-line wiring only: parse, validate, build the host and reporter, run, map errors to exit codes.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command, CommanderError } from 'commander';
import { z } from 'zod';
import { CniSweepError, RefusedError, UsageError, exitCodeFor } from './errors.js';
import { REPORT_SCHEMA_VERSION, type Reporter } from './events.js';
import type { Host } from './host/host.js';
import { tolerantReads } from './host/tolerant.js';
import { Gaps, startListings } from './inspect.js';
import { startBackupReads } from './phases/backup.js';
import { PHASES, PHASE_NAMES, phasesFor } from './phases/index.js';
import { removalSummary, renderScript, renderStep } from './plan.js';
import { listBackups, planRestore, readBackup } from './backup/restore.js';
import { detect } from './profiles/detect.js';
import { BUILT_IN, PROFILES_DIR, loadProfileSet } from './profiles/files.js';
import { selectProfiles } from './profiles/index.js';
import { ProfileSchema } from './profiles/schema.js';
import { chooseTargets, type Target } from './profiles/targets.js';
import { loadDistros, selectDistro } from './distros/index.js';
import { applyDistro, detectDistro, embeddedLive } from './distros/node.js';
import { sweep, type Report } from './run.js';
import { parsePrefix, networkOf, type Prefix } from './util/cidr.js';
import { renderArgv } from './util/shell.js';
import { closest } from './util/suggest.js';
import { PlainReporter } from './report/plain.js';
import { runSummary } from './report/summary.js';
import { doctor, isHealthy } from './doctor/index.js';
import { renderText, toJson } from './doctor/render.js';

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
  makeReporter?: (opts: { verbose: boolean }) => Reporter;
}

const list = (v: string | undefined) =>
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
function knownNames(what: string, names: string[], known: readonly string[], hint: string, anyCase = false): string[] {
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

const cniNames = (names: string[], all: Array<{ name: string }>) =>
  knownNames(
    'CNI',
    names,
    all.map((p) => p.name),
    `known CNIs: ${all.map((x) => x.name).join(', ')}`,
    true,
  );

const distroName = (name: string, all: Array<{ name: string }>) =>
  knownNames(
    'distribution',
    [name],
    all.map((d) => d.name),
    `known distributions: ${all.map((x) => x.name).join(', ')}`,
    true,
  )[0] ?? name;

const CommonOpts = z.object({
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
  color: z.boolean().default(true),
  dryRun: z.boolean().default(false),
  restartOnFailure: z.boolean().default(true),
  drainTimeout: z.coerce.number().int().positive().default(300),
  backupDir: z.string().optional(),
  distro: z.string().optional(),
  profile: z.array(z.string()).default([]),
});
type CommonOpts = z.infer<typeof CommonOpts>;

/** --profile FILE, repeatable: each one adds a profile. */
const PROFILE_OPTION = [
  '--profile <file>',
  `a profile from a file (JSON or YAML; see \`cni-sweep profiles --schema\`), repeatable; <root>${PROFILES_DIR}/*.json|*.yaml|*.yml are read too`,
  (v: string, prev: string[]) => [...prev, v],
  [] as string[],
] as const;

function addCommon(cmd: Command): Command {
  return cmd
    .option('--cni <names>', 'CNIs to remove, comma-separated (default: detect what is on the node)')
    .option('--root <dir>', 'filesystem root every path is resolved under', '/')
    .option('--skip <phases>', 'phases to skip, comma-separated')
    .option('--only <phases>', 'run only these phases, comma-separated')
    .option('--with <phases>', 'add opt-in phases: modules (remove-sandboxes is accepted and now runs by default)')
    .option('--keep-sandboxes', 'do not remove the pod sandboxes on the removed network: they keep running without a network')
    .option('--node <name>', 'Kubernetes node name (default: hostname)')
    .option('--kubeconfig <path>', 'kubeconfig for drain/uncordon (default: $KUBECONFIG, else /etc/kubernetes/admin.conf)')
    .option('--pod-cidr <cidrs>', 'pod network CIDR(s), when /run/flannel/subnet.env is gone')
    .option('--drain-timeout <seconds>', 'how long kubectl drain may take', '300')
    .option('--backup-dir <dir>', 'where backups go (default: <root>/var/backups/cni-sweep)')
    .option('--distro <name>', 'kubeadm, k3s, rke2 or microk8s (default: detected from units and files)')
    .option(...PROFILE_OPTION)
    .option('--json', 'print the report as one JSON document on stdout')
    .option('--verbose', 'more progress output, and stack traces on errors')
    .option('--no-color', 'no colour and no spinner');
}

const RUN_EXIT_CODES = `
Exit codes:
  0    success, whether or not anything changed
  1    a phase failed (stdout names the backup; services are started again)
  2    bad usage or bad input
  3    refused: not root, not confirmed, another run holds the lock,
       or --cni names a live CNI
  129, 130, 141, 143
       interrupted by SIGHUP, SIGINT, lost output or SIGTERM: the command
       in flight finishes, services are started again, the report is written
`;

const PLAN_EXIT_CODES = `
Exit codes: 0 the plan is printed (--json: wouldChange says whether a run would change the node),
1 a phase could not be planned, 2 bad usage or bad input, 3 refused (--cni naming a live CNI).
`;

function phaseHelp(): string {
  const w = Math.max(...PHASES.map((p) => p.name.length));
  return (
    '\nPhases, in order (opt-in ones run only with --with):\n' + PHASES.map((p) => `  ${p.name.padEnd(w)}  ${p.summary}`).join('\n') + '\n'
  );
}

function selectPhases(o: CommonOpts): Set<string> {
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
    return new Set(PHASE_NAMES.filter((n) => only.includes(n) || (cleans && n === 'backup')));
  }
  return new Set(PHASE_NAMES.filter((n) => !skip.includes(n) && (!optIn.has(n) || extra.includes(n))));
}

function parseCidrs(v: string | undefined): Prefix[] {
  return list(v).map((c) => {
    const p = parsePrefix(c);
    if (!p || !c.includes('/')) throw new UsageError(`--pod-cidr: not a CIDR: ${c}`);
    return networkOf(p);
  });
}

function checkRoot(root: string): string {
  const abs = path.resolve(root);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new UsageError(`--root ${root}: no such directory`);
  }
  if (!st.isDirectory()) throw new UsageError(`--root ${root}: not a directory`);
  return abs;
}

/** The host a command reads: without root, reads it may not make become gaps, reported instead of failing. */
function openHost(io: Io, root: string, gaps: Gaps): Host {
  const host = io.makeHost(root);
  return host.isRoot() ? host : tolerantReads(host, gaps);
}

function reporterFor(io: Io, verbose: boolean): Reporter {
  return io.makeReporter?.({ verbose }) ?? new PlainReporter(io.stderr, verbose);
}

/** --kubeconfig, else $KUBECONFIG of the caller's environment. */
const kubeconfigOf = (io: Io, o: { kubeconfig?: string }) => o.kubeconfig ?? (io.env.KUBECONFIG || undefined);

async function confirmRun(io: Io, lines: string[], node: string, targets: Target[], warnings: string[]): Promise<boolean> {
  if (!io.ask) return false;
  io.stderr.write(`cni-sweep will change node ${node}. It will remove:\n${lines.map((l) => `  - ${l}`).join('\n')}\n`);
  if (targets.length) io.stderr.write(`Per CNI:\n${targets.map((t) => `  ${t.action} ${t.cni}: ${t.why}\n`).join('')}`);
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  const answer = await io.ask('Proceed? [y/N] ');
  return /^y(es)?$/i.test(answer.trim());
}

async function sweepCommand(io: Io, o: CommonOpts, dryRun: boolean): Promise<number> {
  // The report's startedAt and durationMs count from here, detection included.
  const started = new Date();
  const root = checkRoot(o.root);
  const selected = selectPhases(o);
  const podCidrs = parseCidrs(o.podCidr);
  const { all } = loadProfileSet(root, o.profile);
  const names = cniNames(list(o.cni), all);
  const preselected = names.length ? selectProfiles(all, names) : null;
  const distros = loadDistros();
  const override = o.distro ? selectDistro(distros, distroName(o.distro, distros)) : undefined;
  const gaps = new Gaps();
  const host = openHost(io, root, gaps);
  if (!dryRun) {
    if (!host.isRoot()) throw new RefusedError('run must be run as root', 'use sudo, or `cni-sweep plan` to see what it would do');
    if (!o.yes && !io.stdinIsTty)
      throw new RefusedError('refusing to change the node without confirmation', 'pass --yes to run without a terminal');
  }
  if (!dryRun && o.yes && selected.has('backup')) startBackupReads(host);
  startListings(host, preselected ?? all);
  // The distribution decides where CNI configs live and what the profiles own beyond their own (k3s's netpol).
  const distro = await detectDistro(host, distros, override);
  // Detection sees the profiles alone: k3s's netpol chains by themselves are no sign of Flannel.
  const adds = Object.values(distro.adds);
  const claimed = { chainPrefixes: adds.flatMap((a) => a.chainPrefixes), nftables: adds.flatMap((a) => a.nftables) };
  const detected = preselected ? [] : await detect(host, all, gaps, distro.confDirs, claimed);
  // A live CNI is never a target: named with --cni it refuses the run, detected it is kept.
  const targets = await chooseTargets(host, preselected ? { named: preselected } : { detected }, {
    confDirs: distro.confDirs,
    embedded: (procs) => embeddedLive(distro, procs),
  });
  const removed = new Set(targets.filter((t) => t.action === 'remove').map((t) => t.cni));
  const profiles = applyDistro(preselected ?? detected.map((d) => d.profile).filter((p) => removed.has(p.name)), distro);
  const reporter = reporterFor(io, o.verbose);
  reporter.emit({
    type: 'note',
    text: `distro ${distro.name}${distro.role ? ` (${distro.role})` : ''}: ${distro.evidence.slice(0, 4).join(', ')}`,
  });
  for (const d of detected)
    reporter.emit({
      type: 'note',
      text: `found ${d.profile.name}: ${d.evidence.slice(0, 4).join(', ')}${d.evidence.length > 4 ? ', ...' : ''}`,
    });
  for (const t of targets) if (t.action === 'keep') reporter.emit({ type: 'note', text: `keeping ${t.cni}: ${t.why}` });
  if (!detected.length && !preselected) reporter.emit({ type: 'note', text: 'no CNI state found on this node' });

  const { interrupt, unhook } = watchInterrupts(io, !dryRun);
  try {
    const result = await sweep({
      host,
      profiles,
      opts: {
        node: o.node ?? host.hostname(),
        kubeconfig: kubeconfigOf(io, o),
        podCidrs,
        uncordon: o.uncordon,
        dryRun,
        drainTimeoutSec: o.drainTimeout,
        backupDir: o.backupDir ? path.resolve(o.backupDir) : path.join(root, 'var/backups/cni-sweep'),
        now: started,
        version: VERSION,
        // Without a prompt nobody is told the node is not drained: then the run refuses instead.
        refuseUndrained: !dryRun && o.yes,
        keepSandboxes: o.keepSandboxes,
      },
      phases: phasesFor(distro.units),
      selected,
      reporter,
      gaps,
      distro,
      restartOnFailure: o.restartOnFailure,
      interrupt,
      confirm: o.yes
        ? undefined
        : async (plans) => {
            reporter.pause();
            return confirmRun(
              io,
              removalSummary(plans),
              o.node ?? host.hostname(),
              targets,
              plans.flatMap((p) => p.plan.warnings ?? []),
            );
          },
    });
    reporter.pause();
    const report: Report = {
      ...result.report,
      detected: preselected ? undefined : detected.map((d) => ({ cni: d.profile.name, evidence: d.evidence })),
      targets,
    };
    if (result.aborted) throw new RefusedError('not confirmed: nothing was changed');
    if (o.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else if (dryRun) io.stdout.write(renderScript(result.plans, report, VERSION));
    else io.stdout.write(runSummary(report));
    if (report.interrupted) return signalExit(report.interrupted);
    if (report.failed) {
      const f = report.failed;
      io.stderr.write(`cni-sweep: error: phase ${f.phase} failed: ${f.error}\n`);
      // The line above shortens a long command; the JSON report has it whole, and so does --verbose.
      if (o.verbose && f.argv) io.stderr.write(`  command: ${renderArgv(f.argv)}\n`);
      // The runtime tears a pod's network down with the CNI config it loads now: a new CNI's config
      // whose plugin is not installed yet makes that fail. Nothing was removed.
      if (f.phase === 'remove-sandboxes')
        io.stderr.write(
          '  hint: the runtime could not stop these pods (see its message); fix that (e.g. install the plugin of the CNI config it loads now) and run again, or pass --keep-sandboxes to leave them running without a network\n',
        );
      return 1;
    }
    return 0;
  } finally {
    unhook();
  }
}

/** While `active` (a real run or restore), records the signal (or lost output) that asks it to stop; it stops between commands. */
function watchInterrupts(io: Io, active: boolean) {
  const interrupt = { signal: null as NodeJS.Signals | null };
  const unhook = active && io.onSignals ? io.onSignals((sig) => (interrupt.signal = sig)) : () => {};
  return { interrupt, unhook };
}

/** The exit code a shell reports for a process a signal ended: 128 + its number. */
const signalExit = (sig: string) => 128 + ((os.constants.signals as Record<string, number>)[sig] ?? 15);

async function restoreCommand(
  io: Io,
  dir: string,
  o: { root?: string; dryRun?: boolean; json?: boolean; verbose?: boolean },
): Promise<number> {
  const abs = path.resolve(dir);
  const manifest = readBackup(abs);
  const root = checkRoot(o.root ?? manifest.root);
  const gaps = new Gaps();
  const host = openHost(io, root, gaps);
  if (!o.dryRun && !host.isRoot()) throw new RefusedError('restore must be run as root', 'use sudo, or --dry-run to see what it would do');
  const reporter = reporterFor(io, Boolean(o.verbose));
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

function backupsCommand(io: Io, o: { root: string; backupDir?: string; json?: boolean; keep?: string }, prune: boolean): number {
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

async function doctorCommand(io: Io, o: CommonOpts): Promise<number> {
  const root = checkRoot(o.root);
  const podCidrs = parseCidrs(o.podCidr);
  const { all } = loadProfileSet(root, o.profile);
  const names = cniNames(list(o.cni), all);
  const distros = loadDistros();
  const override = o.distro ? selectDistro(distros, distroName(o.distro, distros)) : undefined;
  const gaps = new Gaps();
  // Doctor only reads: without root it reads what it can and lists what it could not.
  const host = openHost(io, root, gaps);
  const distro = await detectDistro(host, distros, override);
  const known = applyDistro(all, distro);
  const profiles = names.length ? applyDistro(selectProfiles(all, names), distro) : known;
  const { view, findings } = await doctor(
    host,
    {
      node: o.node ?? host.hostname(),
      kubeconfig: kubeconfigOf(io, o),
      podCidrs,
      profiles,
      allProfiles: known,
      distro,
      profileFiles: o.profile.map((f) => path.resolve(f)),
    },
    gaps,
  );
  if (o.json) io.stdout.write(JSON.stringify(toJson(view, findings), null, 2) + '\n');
  else {
    const color = o.color && Boolean((io.stdout as { isTTY?: boolean }).isTTY) && !io.env.NO_COLOR;
    io.stdout.write(renderText(view, findings, { color, verbose: o.verbose }));
  }
  return isHealthy(findings) ? 0 : 1;
}

/** " (network mynet or kubernetes, bridge kube-bridge)" for a qualified generic plugin type. */
const qualified = (q: { networks?: string[]; bridges?: string[] } | undefined) =>
  q
    ? ` (${[q.networks && `network ${q.networks.join(' or ')}`, q.bridges && `bridge ${q.bridges.join(' or ')}`].filter(Boolean).join(', ')})`
    : '';

function profilesCommand(io: Io, o: { json?: boolean; schema?: boolean; root: string; profile: string[] }): number {
  if (o.schema) {
    // Derived from the schema the profiles are validated with, so it cannot drift from it.
    io.stdout.write(JSON.stringify(profileJsonSchema(), null, 2) + '\n');
    return 0;
  }
  const { all, sources } = loadProfileSet(checkRoot(o.root), o.profile);
  if (o.json) {
    io.stdout.write(
      JSON.stringify(
        all.map((p) => ({ ...p, source: sources.get(p.name) })),
        null,
        2,
      ) + '\n',
    );
    return 0;
  }
  for (const p of all) {
    const source = sources.get(p.name)!;
    io.stdout.write(
      [
        `${p.name}: ${p.description}`,
        `  source:     ${source === BUILT_IN ? 'built in' : source}`,
        `  config:     files whose plugin types include ${p.config.pluginTypes.map((t) => t + qualified(p.config.pluginQualifiers[t])).join(', ')}${p.config.extraFiles.length ? `; ${p.config.extraFiles.join(', ')}` : ''}`,
        `  state:      ${[...p.state.paths, ...p.state.networkPaths, '/var/lib/cni/results/{network}-*'].join(', ')}`,
        `  interfaces: ${[...p.interfaces.names, ...p.interfaces.patterns.map((x) => `/${x}/`)].join(', ')}${p.interfaces.bridgePorts ? ', veths attached to its bridge' : ''}${p.interfaces.ovsDatapaths.length ? `; Open vSwitch datapaths ${p.interfaces.ovsDatapaths.join(', ')}` : ''}`,
        `  routes:     ${[p.routes.podNetworkRoutes ? 'routes into the pod network via the uplink (host-gw)' : '', ...p.routes.protocols.map((x) => `proto ${x}`), 'routes through its interfaces'].filter(Boolean).join(', ')}`,
        `  firewall:   chains ${p.firewall.chainPrefixes.map((x) => `${x}*`).join(', ')}; comments ${p.firewall.comments.map((c) => `"${c}"`).join(', ') || 'none'}; CNI-* chains of its networks; ${p.firewall.legacyRules.length} untagged legacy rule shapes`,
        `  nftables:   ${p.nftables.map((t) => `${t.family} ${t.name}`).join(', ') || 'none'}`,
        `  live while: ${p.agents.processes.map((a) => (a.cmdline ? `${a.name} (command line matching ${a.cmdline})` : a.name)).join(', ') || 'never (no agent known)'} runs in this network namespace`,
        '',
      ].join('\n'),
    );
  }
  return 0;
}

/** The JSON Schema of a profile file: what a file may hold (defaults make fields optional). */
export function profileJsonSchema(): unknown {
  return {
    ...z.toJSONSchema(ProfileSchema, { io: 'input', unrepresentable: 'any' }),
    title: 'cni-sweep profile',
    description: `A CNI's node-side state, for --profile FILE or ${PROFILES_DIR}/ (JSON or YAML).`,
  };
}

export async function main(argv: string[], io: Io): Promise<number> {
  let code = 0;
  const program = new Command('cni-sweep')
    .description('Remove the node-side state a Kubernetes pod network (CNI) leaves behind, safely and in order.')
    .version(VERSION, '-V, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s), outputError: () => {} })
    .addHelpText('after', phaseHelp() + '\nExit codes: 0 success, 1 a phase failed, 2 bad usage or input, 3 refused.\n');

  addCommon(program.command('plan'))
    .description('dry-run audit: print the exact commands a run would execute, as a bash script; changes nothing')
    .option('--uncordon', 'include the uncordon step')
    .addHelpText('after', phaseHelp() + PLAN_EXIT_CODES)
    .action(async (opts: Record<string, unknown>) => {
      code = await sweepCommand(io, parse(opts), true);
    });
  addCommon(program.command('run'))
    .description('remove the CNI state from this node (drain, stop services, clean, restart)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'same as `plan`')
    .option('--uncordon', 'uncordon the node at the end (only when a CNI config is present again)')
    .option('--no-restart-on-failure', 'leave kubelet and the runtime stopped when a phase fails')
    .addHelpText('after', phaseHelp() + RUN_EXIT_CODES)
    .action(async (opts: Record<string, unknown>) => {
      const o = parse(opts);
      code = await sweepCommand(io, o, o.dryRun);
    });
  program
    .command('doctor')
    .description(
      'diagnose the node (stale CNI state, mixed CNIs, MTU mismatch ...) and name the command that fixes each finding; changes nothing',
    )
    .option('--cni <names>', 'CNIs whose leftovers to diagnose, comma-separated (default: every CNI cni-sweep knows)')
    .option('--root <dir>', 'filesystem root every path is resolved under', '/')
    .option('--node <name>', 'Kubernetes node name (default: hostname)')
    .option(
      '--kubeconfig <path>',
      "kubeconfig to read the Node's pod CIDR and the NetworkPolicy objects (default: $KUBECONFIG; without one the API is not asked)",
    )
    .option('--pod-cidr <cidrs>', "pod network CIDR(s), comma-separated: stands in for the Node's pod CIDR and for subnet.env")
    .option('--distro <name>', 'kubeadm, k3s, rke2 or microk8s (default: detected from units and files)')
    .option(...PROFILE_OPTION)
    .option('--json', 'print the findings as one JSON document on stdout')
    .option('--verbose', 'every evidence line, and stack traces on errors')
    .option('--no-color', 'no colour')
    .addHelpText('after', '\nExit codes: 0 healthy, 1 findings (an error or a warning; notes alone are healthy), 2 bad usage.\n')
    .action(async (opts: Record<string, unknown>) => {
      code = await doctorCommand(io, parse(opts));
    });
  program
    .command('restore <backup>')
    .description('put back the files and firewall rules a run removed (interfaces and routes are not recreated)')
    .option('--root <dir>', 'filesystem root (default: the one the backup was taken from)')
    .option('--dry-run', 'print what it would do, as a bash script')
    .option('--json', 'print the result as JSON')
    .option('--verbose', 'more output')
    .action(async (dir: string, opts: Parameters<typeof restoreCommand>[2]) => {
      rejectEmpty(opts);
      if (dir.trim() === '') throw new UsageError('restore: empty backup name', 'pass a directory listed by `cni-sweep backups`');
      code = await restoreCommand(io, dir, opts);
    });
  program
    .command('backups [action]')
    .description('list the backups (time, node, CNI, size); `backups prune --keep N` removes all but the newest N')
    .option('--keep <n>', 'with prune: how many backups to keep')
    .option('--root <dir>', 'filesystem root', '/')
    .option('--backup-dir <dir>', 'where backups are (default: <root>/var/backups/cni-sweep)')
    .option('--json', 'as JSON')
    .action((action: string | undefined, opts: Parameters<typeof backupsCommand>[1]) => {
      rejectEmpty(opts);
      if (action !== undefined && action !== 'prune')
        throw new UsageError(
          `unknown backups action "${action}"${closest(action, ['prune']) ? ' (did you mean prune?)' : ''}`,
          'use `cni-sweep backups` or `cni-sweep backups prune --keep N`',
        );
      if (action === 'prune' && opts.keep === undefined) throw new UsageError('backups prune needs --keep <n>');
      code = backupsCommand(io, opts, action === 'prune');
    });
  program
    .command('profiles')
    .description('list the CNIs cni-sweep knows, built in or from files, and what each owns')
    .option('--root <dir>', 'filesystem root (its etc/cni-sweep/profiles.d is read)', '/')
    .option(...PROFILE_OPTION)
    .option('--schema', 'print the JSON Schema of a profile file')
    .option('--json', 'as JSON, each profile with its source')
    .action((opts: { json?: boolean; schema?: boolean; root: string; profile: string[] }) => {
      rejectEmpty(opts);
      code = profilesCommand(io, opts);
    });

  program
    .command('version')
    .description('print the version of cni-sweep and of its JSON report')
    .option('--json', 'as JSON: { version, reportSchemaVersion, node }')
    .action((opts: { json?: boolean }) => {
      io.stdout.write(
        opts.json
          ? JSON.stringify({ version: VERSION, reportSchemaVersion: REPORT_SCHEMA_VERSION, node: process.version }, null, 2) + '\n'
          : `cni-sweep ${VERSION}\n`,
      );
    });

  const verbose = argv.includes('--verbose');
  try {
    // Options before (or without) a command: commander would call the first one "unknown".
    const first = argv.find((a) => a !== '--verbose');
    const topLevel = ['-h', '--help', '-V', '--version', 'help'];
    // A bare `cni-sweep` asks what it can do, as `kubectl` and `gh` answer: the help, exit 0.
    if (first === undefined) {
      program.outputHelp();
      return 0;
    }
    if (first.startsWith('-') && !topLevel.includes(first))
      throw new UsageError(
        `no command given before ${first}: options come after the command`,
        `commands: ${program.commands.map((c) => c.name()).join(', ')}; see cni-sweep --help`,
      );
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version') return 0;
      // `cni-sweep help [command]` exits 0; help shown because something was missing is bad usage.
      if (err.code === 'commander.help') return err.exitCode === 0 ? 0 : 2;
      io.stderr.write(`cni-sweep: error: ${err.message.replace(/^error: /, '')}\n  hint: see cni-sweep --help\n`);
      return 2;
    }
    if (err instanceof CniSweepError) {
      io.stderr.write(`cni-sweep: error: ${err.message}\n${err.hint ? `  hint: ${err.hint}\n` : ''}`);
      if (verbose) io.stderr.write(`${err.stack}\n`);
      return exitCodeFor(err);
    }
    const e = err as Error;
    io.stderr.write(
      `cni-sweep: error: ${e?.message ?? String(err)}\n${verbose ? `${e?.stack}\n` : '  hint: rerun with --verbose for details\n'}`,
    );
    return 1;
  }
}

const flag = (key: string) => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;

/**
 * An empty value is never what was meant: `--root ''` would resolve to the working directory,
 * `--only ''` would run every phase, `--keep ''` would prune every backup. A list option must name
 * something too (`--only ,`). Typically a templated variable that was not set.
 */
function rejectEmpty(opts: Record<string, unknown>, lists: string[] = []): void {
  for (const [key, v] of Object.entries(opts)) {
    if (typeof v !== 'string') continue;
    if (v.trim() === '') throw new UsageError(`${flag(key)}: empty value`, `give ${flag(key)} a value, or leave the option out`);
    if (lists.includes(key) && !list(v).length) throw new UsageError(`${flag(key)}: no names in "${v}"`);
  }
}

function parse(opts: Record<string, unknown>): CommonOpts {
  rejectEmpty(opts, ['cni', 'skip', 'only', 'with', 'podCidr']);
  const r = CommonOpts.safeParse(opts);
  if (!r.success) {
    const i = r.error.issues[0]!; // a failed parse has at least one issue
    throw new UsageError(`${flag(String(i.path[0]))}: ${i.message}`);
  }
  return r.data;
}
