// `run` and `plan` (one pipeline: a plan is a run that stops after planning).
import type { Command } from 'commander';
import { RefusedError } from '../errors.js';
import { startBackupReads } from '../phases/backup.js';
import { refusesUndrained } from '../phases/drain.js';
import { PHASES, phasesFor } from '../phases/index.js';
import { removalSummary, renderScript } from '../plan.js';
import { detect } from '../profiles/detect.js';
import { loadProfileSet } from '../profiles/files.js';
import { selectProfiles } from '../profiles/index.js';
import { chooseTargets, liveProfiles, type Target } from '../profiles/targets.js';
import type { Profile } from '../profiles/schema.js';
import { builtInDistros, selectDistro } from '../distros/index.js';
import { applyDistro, detectDistro, distroReads, embeddedLive, withoutLive } from '../distros/node.js';
import { sweep, type Report } from '../run.js';
import { Gaps, startListings } from '../inspect.js';
import { foreignJournal, readJournal, stoppedByOpenJob, unfinishedRun } from '../journal.js';
import type { Host } from '../host/host.js';
import { renderArgv } from '../util/shell.js';
import { mark, traced } from '../util/trace.js';
import { runSummary } from '../report/summary.js';
import {
  VERSION,
  addCommon,
  backupBase,
  checkRoot,
  cniNames,
  distroName,
  kubeconfigOf,
  list,
  openHost,
  parse,
  parseCidrs,
  phaseHelp,
  reporterFor,
  selectPhases,
  signalExit,
  watchInterrupts,
  type CommonOpts,
  type Done,
  type Io,
} from './common.js';

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

async function confirmRun(io: Io, lines: string[], node: string, targets: Target[], warnings: string[]): Promise<boolean> {
  if (!io.ask) return false;
  io.stderr.write(`cni-sweep will change node ${node}. It will remove:\n${lines.map((l) => `  - ${l}`).join('\n')}\n`);
  if (targets.length) io.stderr.write(`Per CNI:\n${targets.map((t) => `  ${t.action} ${t.cni}: ${t.why}\n`).join('')}`);
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  io.stderr.write('Every command, in full: `cni-sweep plan` (with the same options).\n');
  const answer = await io.ask('Proceed? [y/N] ');
  return /^y(es)?$/i.test(answer.trim());
}

export async function sweepCommand(io: Io, o: CommonOpts, dryRun: boolean): Promise<number> {
  // The report's startedAt and durationMs count from here, detection included.
  const started = new Date();
  mark('sweep command');
  const root = checkRoot(o.root);
  const selected = selectPhases(o);
  const podCidrs = parseCidrs(o.podCidr);
  const { all } = loadProfileSet(root, o.profile);
  const names = cniNames(list(o.cni), all);
  const preselected = names.length ? selectProfiles(all, names) : null;
  const distros = builtInDistros();
  const override = o.distro ? selectDistro(distros, distroName(o.distro, distros)) : undefined;
  const gaps = new Gaps();
  const host = openHost(io, root, gaps);
  if (!dryRun) {
    if (!host.isRoot()) throw new RefusedError('run must be run as root', 'use sudo, or `cni-sweep plan` to see what it would do');
    if (!o.yes && !io.stdinIsTty)
      throw new RefusedError('refusing to change the node without confirmation', 'pass --yes to run without a terminal');
  }
  mark('listings');
  await startListings(host, preselected ?? all, distroReads(distros));
  mark('listings started');
  // The distribution decides where CNI configs live and what the profiles own beyond their own (k3s's netpol).
  const node = o.node ?? host.hostname();
  const journal = await readJournal(host);
  const distro = await traced('distro', () => detectDistro(host, distros, override, stoppedByOpenJob(journal, node)));
  // Detection sees the profiles alone: k3s's netpol chains by themselves are no sign of Flannel.
  const adds = Object.values(distro.adds);
  const claimed = { chainPrefixes: adds.flatMap((a) => a.chainPrefixes), nftables: adds.flatMap((a) => a.nftables) };
  const found = preselected ? [] : await traced('detect', () => detect(host, all, gaps, distro.confDirs, claimed));
  const foreign = foreignJournal(journal, node);
  const detected = preselected ? [] : [...found, ...unfinishedRun(journal, all, found, node)];
  // A live CNI is never a target: named with --cni it refuses the run, detected it is kept.
  let live: Profile[] = [];
  const targets = await traced('targets', () =>
    chooseTargets(host, preselected ? { named: preselected } : { detected }, {
      confDirs: distro.confDirs,
      embedded: (procs) => {
        const inside = embeddedLive(distro, procs);
        live = liveProfiles(all, procs, inside);
        return inside;
      },
    }),
  );
  mark('targets chosen');
  const removed = new Set(targets.filter((t) => t.action === 'remove').map((t) => t.cni));
  // Once detection has its listings (started beside them, they took a share of the cores it waited
  // on): the backup needs these only once planning is done. Not when nothing is to be removed, nor
  // for a run that refuses at drain (no kubeconfig): it writes no backup.
  const layout = withoutLive(distro, live);
  const profiles = applyDistro(preselected ?? detected.map((d) => d.profile).filter((p) => removed.has(p.name)), layout.distro);
  if (!dryRun && o.yes && removed.size && PHASES.some((p) => p.writesBackup && selected.has(p.name)))
    void refusesUndrained({ host, selected, opts: { refuseUndrained: true, kubeconfig: kubeconfigOf(io, o) } }).then((refuses) =>
      refuses ? undefined : startBackupReads(host, profiles),
    );
  const reporter = reporterFor(io, o.verbose, o.quiet);
  reporter.emit({
    type: 'note',
    text: `distro ${distro.name}${distro.role ? ` (${distro.role})` : ''}: ${distro.evidence.slice(0, 4).join(', ')}`,
  });
  for (const d of detected)
    reporter.emit({
      type: 'note',
      text: `found ${d.profile.name}: ${d.evidence.slice(0, 4).join(', ')}${d.evidence.length > 4 ? ', ...' : ''}`,
    });
  if (foreign) reporter.emit({ type: 'note', text: foreign });
  if (layout.kept.length && profiles.length)
    reporter.emit({ type: 'note', text: `not taken with ${distro.name}'s additions: ${layout.kept.join(', ')}` });
  for (const t of targets) if (t.action === 'keep') reporter.emit({ type: 'note', text: `keeping ${t.cni}: ${t.why}` });
  if (!detected.length && !preselected) reporter.emit({ type: 'note', text: 'no CNI state found on this node' });

  const { interrupt, unhook } = watchInterrupts(io, !dryRun);
  try {
    const result = await sweep({
      host,
      profiles,
      opts: {
        node,
        kubeconfig: kubeconfigOf(io, o),
        podCidrs,
        uncordon: o.uncordon,
        dryRun,
        drainTimeoutSec: o.drainTimeout,
        backupDir: backupBase(root, o.backupDir),
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
    if (result.aborted) {
      await logRun(io, host, report, 3);
      // An answer, not an error: said plainly, with the refusal's exit code.
      io.stderr.write('cni-sweep: not confirmed: nothing was changed\n');
      return 3;
    }
    mark('output');
    if (o.json) io.stdout.write(JSON.stringify(report, null, 2) + '\n');
    else if (dryRun) io.stdout.write(renderScript(result.plans, report, VERSION));
    else io.stdout.write(runSummary(report));
    let code = 0;
    if (report.interrupted) code = signalExit(report.interrupted);
    else if (report.failed) {
      code = 1;
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
    }
    if (!dryRun) await logRun(io, host, report, code);
    mark('written');
    return code;
  } finally {
    unhook();
  }
}

/** The run log: one JSON line per run, appended, so that a fleet has a history beyond the last journal. */
export const RUN_LOG = '/var/log/cni-sweep.log';

/** Appends the run's line to the run log; a log that cannot be written is a warning, not a failed run. */
async function logRun(io: Io, host: Host, report: Report, exit: number): Promise<void> {
  const removed = Object.fromEntries(Object.entries(report.removed).map(([kind, r]) => [kind, r.count]));
  const line = {
    time: report.startedAt,
    node: report.node,
    cni: report.cni,
    changed: report.changed,
    removed,
    backup: report.backup,
    exit,
    durationMs: report.durationMs,
    version: report.version,
    ...(report.failed ? { failed: report.failed.phase } : {}),
    ...(report.interrupted ? { interrupted: report.interrupted } : {}),
  };
  try {
    const old = (await host.readFile(RUN_LOG)) ?? '';
    await host.writeState(RUN_LOG, `${old}${old && !old.endsWith('\n') ? '\n' : ''}${JSON.stringify(line)}\n`);
  } catch (e) {
    io.stderr.write(`cni-sweep: warning: could not write the run log ${RUN_LOG}: ${(e as Error).message}\n`);
  }
}

export function runCommand(program: Command, io: Io, done: Done): void {
  addCommon(program.command('run'))
    .description('remove the CNI state from this node (drain, stop services, clean, restart)')
    .option('-y, --yes', 'do not ask for confirmation')
    .option('--dry-run', 'same as `plan`')
    .option('--uncordon', 'uncordon the node at the end (only when a CNI config is present again)')
    .option('--no-restart-on-failure', 'leave kubelet and the runtime stopped when a phase fails')
    .addHelpText('after', phaseHelp() + RUN_EXIT_CODES)
    .action(async (opts: Record<string, unknown>) => {
      const o = parse(opts);
      done(await sweepCommand(io, o, o.dryRun));
    });
}
