// Plan, then apply: one pipeline for `plan` and `run`. A dry run stops after planning, so the
// printed plan and what a run executes cannot drift apart. A real run plans each phase again
// just before applying it, against the node as earlier phases left it.
import { CommandFailedError, PhaseFailedError, RefusedError } from './errors.js';
import {
  REPORT_SCHEMA_VERSION,
  emptyRemoved,
  tallyRemoved,
  type PhaseReport,
  type PhaseStatus,
  type Report,
  type Reporter,
  type StepReport,
} from './events.js';
import type { Host } from './host/host.js';
import path from 'node:path';
import { CNI_CONF_DIR, Gaps, startListings, takeSnapshot, type Snapshot } from './inspect.js';
import { earlierBackups, JOURNAL, journalText, openJob, readJournal, resumeFrom, type Journal } from './journal.js';
import type { Ctx, Phase, PhasePlan, PlannedStep, RunOptions } from './phases/types.js';
import { waitsFor } from './phases/types.js';
import { byRole, runs, stopped } from './phases/services.js';
import { unitStates } from './host/units.js';
import { checkBackupDir, preflightProblems, removalTargets } from './phases/preflight.js';
import { startReading, underRoot } from './host/host.js';
import { mark, traced } from './util/trace.js';
import type { Profile } from './profiles/schema.js';
import type { NodeDistro } from './distros/node.js';
import { plural } from './util/plural.js';

// The report types live in events.ts, below the journal that records them.
export type { PhaseReport, Report, StepReport } from './events.js';

export interface SweepRequest {
  host: Host;
  profiles: Profile[];
  opts: RunOptions;
  /** Every phase in order; those not in `selected` are reported as skipped. */
  phases: Phase[];
  selected: Set<string>;
  reporter: Reporter;
  /** Asked once, after planning, before the first change. Resolves false to abort. */
  confirm?: (plans: Array<{ phase: Phase; plan: PhasePlan }>) => Promise<boolean>;
  restartOnFailure?: boolean;
  /** Where unreadable state is recorded; shared with detection. */
  gaps?: Gaps;
  /** Set by the signal handler; checked between steps. */
  interrupt?: { signal: NodeJS.Signals | null };
  /** The node's distribution (conf dirs, units, CRI socket); absent: kubeadm's layout. */
  distro?: NodeDistro;
}

export interface Sweep {
  report: Report;
  plans: Array<{ phase: Phase; plan: PhasePlan | null }>;
  snapshot: Snapshot;
  gaps: Gaps;
  aborted: boolean;
}

const LOCK = '/run/cni-sweep.lock';

/**
 * The context phases plan with. `cleanupPlans`: the cleanup phases' plans already made against the
 * node as it is (the backup keeps what they remove); without them they are planned when asked.
 */
export function newCtx(
  req: Pick<SweepRequest, 'host' | 'opts' | 'profiles' | 'phases' | 'selected'>,
  snapshot: Snapshot,
  gaps: Gaps,
  dryRun: boolean,
  cleanupPlans?: Map<string, PhasePlan>,
  onWork?: () => void,
): Ctx {
  const ctx: Ctx = {
    host: req.host,
    opts: { ...req.opts, dryRun },
    profiles: req.profiles,
    snapshot,
    gaps,
    selected: req.selected,
    hasWork: false,
    stopped: { kubelet: [], runtime: [] },
    drained: false,
    // Cleanup phases only read to plan, so planning them ahead (for the backup) changes nothing.
    planCleanup: async () => {
      if (cleanupPlans) return cleanupPlans;
      const out = new Map<string, PhasePlan>();
      for (const p of req.phases) {
        if (!p.cleanup || !req.selected.has(p.name)) continue;
        const plan = await traced(`plan ${p.name}`, () => p.plan(ctx));
        out.set(p.name, plan);
        if (plan.steps.length) onWork?.();
      }
      return out;
    },
  };
  return ctx;
}

/** Records what a phase's plan established in the context the phases after it plan with. */
export function absorb(ctx: Ctx, plan: PhasePlan): void {
  const f = plan.facts;
  if (!f) return;
  ctx.stopped.kubelet.push(...(f.stopped?.kubelet ?? []));
  ctx.stopped.runtime.push(...(f.stopped?.runtime ?? []));
  if (f.drained) ctx.drained = true;
  if (f.backupDir) ctx.backupDir = f.backupDir;
}

export async function sweep(req: SweepRequest): Promise<Sweep> {
  if (req.opts.dryRun) return sweepLocked(req);
  // Two runs must never interleave; a plan only reads, so it takes no lock.
  const release = await req.host.lock(LOCK);
  try {
    return await sweepLocked(req);
  } finally {
    await release();
  }
}

async function sweepLocked(req: SweepRequest): Promise<Sweep> {
  const { reporter } = req;
  const gaps = req.gaps ?? new Gaps();
  const snapshot = await traced('snapshot', () => takeSnapshot(req.host, req.profiles, req.opts.podCidrs, gaps, req.distro));
  const journal = await readJournal(req.host);
  const resumed = resumeFrom(journal, snapshot, req.opts.node);
  const earlier = earlierBackups(journal, req.opts.node);
  if (resumed) reporter.emit({ type: 'note', text: resumed });
  const leftBehind = await stoppedByEarlierRun(req, journal);
  if (leftBehind) reporter.emit({ type: 'note', text: leftBehind.note });

  // The other phases are planned one after another below, once there is work; their reads
  // (systemd, the CRI) go at once, as soon as a cleanup phase has found work: they then run while
  // the rest is planned, not after it.
  let readsStarted = false;
  const startReads = () => {
    if (readsStarted) return;
    readsStarted = true;
    const ctx = newCtx(req, snapshot, gaps, true);
    ctx.hasWork = true;
    const phases = req.phases.filter((p) => req.selected.has(p.name));
    void Promise.all(phases.map(async (p) => (p.reads ? p.reads(ctx).catch(() => []) : [])))
      .then((reads) => {
        startReading(req.host, reads.flat());
      })
      .catch(() => {});
  };
  // Cleanup phases are read-only to plan: plan them once to learn whether there is work at all,
  // so that a clean node is not drained and its services are not restarted.
  mark('snapshot taken');
  const cleanupPlans = await newCtx(req, snapshot, gaps, true, undefined, startReads).planCleanup();
  mark('cleanup planned');
  const planCtx = newCtx(req, snapshot, gaps, true, cleanupPlans);
  withLeftBehind(planCtx, leftBehind);
  planCtx.hasWork = [...cleanupPlans.values()].some((pl) => pl.steps.length > 0);

  const plans: Sweep['plans'] = [];
  let planError: { phase: string; err: Error } | null = null;
  for (const p of req.phases) {
    if (!req.selected.has(p.name)) {
      plans.push({ phase: p, plan: null });
      continue;
    }
    try {
      const plan = cleanupPlans.get(p.name) ?? (await traced(`plan ${p.name}`, () => p.plan(planCtx)));
      absorb(planCtx, plan);
      plans.push({ phase: p, plan });
    } catch (err) {
      if (!(err instanceof PhaseFailedError)) {
        // A refusal changes nothing, but what an earlier run left stopped is put back all the same.
        if (err instanceof RefusedError && !req.opts.dryRun) await startLeftBehind(req, snapshot, leftBehind, null, err.message);
        throw err;
      }
      planError = { phase: p.name, err };
      plans.push({ phase: p, plan: { steps: [], notes: [] } });
      break;
    }
  }

  // Nothing is changed unless everything can be: checked once, before the prompt and the backup.
  let preflightFailed: string[] = [];
  if (!planError && planCtx.hasWork) {
    mark('plans done');
    const removed = removalTargets(plans).map((t) => t.path);
    if (req.phases.some((p) => p.writesBackup && req.selected.has(p.name))) {
      const confDirs = [CNI_CONF_DIR, ...(req.distro?.confDirs ?? []), ...snapshot.configs.map((c) => path.posix.dirname(c.file))].map(
        (d) => underRoot(req.host.root, d),
      );
      checkBackupDir(req.opts.backupDir, removed, [...new Set(confDirs)]);
      mark('backup dir checked');
    }
    // Without root, access(2) answers for the caller, not for the run: a plan checks the tools only.
    preflightFailed = await traced('preflight checks', () => preflightProblems(req.host, plans, req.host.isRoot()));
  }

  const report: Report = {
    schemaVersion: REPORT_SCHEMA_VERSION,
    version: req.opts.version,
    startedAt: req.opts.now.toISOString(),
    durationMs: 0,
    removed: emptyRemoved(),
    changed: false,
    dryRun: req.opts.dryRun,
    node: req.opts.node,
    root: req.host.root,
    cni: req.profiles.map((p) => p.name),
    backup: null,
    ...(earlier.length ? { earlierBackups: earlier } : {}),
    phases: [],
    inspected: [...gaps.inspected],
    unreadable: gaps.items,
    warnings: [...plans.flatMap((p) => p.plan?.warnings ?? []), ...leftStoppedBySelection(plans, req.selected)],
    ...(req.distro ? { distro: { name: req.distro.name, role: req.distro.role, evidence: req.distro.evidence } } : {}),
  };
  for (const g of gaps.items) reporter.emit({ type: 'warn', text: `could not read ${g}` });
  // A prompt shows them itself.
  if (req.opts.dryRun || !req.confirm) for (const w of report.warnings ?? []) reporter.emit({ type: 'warn', text: w });

  // A crashed run's stopped services are started even when nothing is left to clean.
  const restartOnly = !planCtx.hasWork && Boolean(leftBehind?.units.length);
  if (req.opts.dryRun || (!planCtx.hasWork && !restartOnly) || planError || preflightFailed.length) {
    for (const { phase, plan } of plans) {
      if (phase.name === 'preflight' && preflightFailed.length) {
        // A plan changes nothing either way: it says what a run would refuse, and still shows the commands.
        const said = req.opts.dryRun ? preflightFailed.map((p) => `a run would refuse: ${p}`) : preflightFailed;
        const notes = [...(plan?.notes ?? []), ...said];
        for (const n of plan?.notes ?? []) reporter.emit({ type: 'note', phase: phase.name, text: n });
        if (plan) plan.notes = notes; // the plan script shows them under its preflight heading
        report.phases.push({ name: phase.name, status: req.opts.dryRun ? 'nothing-to-do' : 'failed', notes, steps: [] });
        for (const n of said) reporter.emit({ type: 'warn', text: n });
        continue;
      }
      const status: PhaseStatus = !plan
        ? 'skipped'
        : planError?.phase === phase.name
          ? 'failed'
          : plan.steps.length
            ? 'ok'
            : 'nothing-to-do';
      report.phases.push({
        name: phase.name,
        status,
        notes: plan?.notes ?? [],
        steps: (plan?.steps ?? []).map((s) => ({ argv: s.argv, stdin: s.stdin, status: 'planned', ms: 0 })),
      });
      for (const n of plan?.notes ?? []) reporter.emit({ type: 'note', phase: phase.name, text: n });
      if (plan) recordPodsLeft(report, plan);
    }
    if (planError) report.failed = { phase: planError.phase, error: planError.err.message };
    else if (preflightFailed.length && !req.opts.dryRun) {
      const more = preflightFailed.length - 1;
      report.failed = {
        phase: 'preflight',
        error: `${preflightFailed[0]}${more ? ` (and ${more} more: see the preflight notes)` : ''}; nothing was changed`,
      };
    }
    if (!req.opts.dryRun && report.failed) await startLeftBehind(req, snapshot, leftBehind, report, report.failed.error);
    // Nothing left of an unfinished job (a crashed run, one limited to some phases): it is done, and
    // the journal says so, or every later run would take it up again to find nothing.
    if (!req.opts.dryRun && !report.failed && !planCtx.hasWork && openJob(journal, req.opts.node) && !leftBehind?.units.length)
      await req.host
        .writeState(JOURNAL, journalText('finished', req.opts.now, req.opts.node, snapshot, report, leftBehind?.stillStopped ?? []))
        .catch(() => {});
    if (req.opts.dryRun) {
      report.wouldRemove = emptyRemoved();
      for (const { plan } of plans) for (const st of plan?.steps ?? []) tallyRemoved(report.wouldRemove, st.removes);
      // A run refused by preflight changes nothing, but the node still holds what it would remove.
      report.wouldChange = !planError && (planCtx.hasWork || restartOnly);
    }
    // A plan writes no backup: the directory it would use is in the plan script, not the report.
    return { report: timed(report, req), plans, snapshot, gaps, aborted: false };
  }

  // Starting what an earlier run left stopped is putting the node back, not a cleanup to confirm.
  if (req.confirm && !restartOnly) {
    if (!(await req.confirm(plans.filter((x) => x.plan) as Array<{ phase: Phase; plan: PhasePlan }>))) {
      await startLeftBehind(req, snapshot, leftBehind, report, 'the cleanup was not confirmed');
      return { report: timed(report, req), plans, snapshot, gaps, aborted: true };
    }
    // The node may have changed while the prompt waited: read it again.
    req.host.refresh?.();
  }

  // Without a prompt nothing happened since planning: the backup can keep what the plans remove.
  await apply(req, snapshot, report, req.confirm ? null : cleanupPlans, planCtx.hasWork, leftBehind);
  return { report: timed(report, req), plans, snapshot, gaps, aborted: false };
}

/** The time from the command's start (opts.now) to now. */
function timed(report: Report, req: SweepRequest): Report {
  report.durationMs = Math.max(0, Date.now() - req.opts.now.getTime());
  return report;
}

/** Pods a phase leaves without a network go into the report, with what to do about them. */
function recordPodsLeft(report: Report, plan: PhasePlan): void {
  if (!plan.podsWithoutNetwork?.length) return;
  report.podsWithoutNetwork = [...(report.podsWithoutNetwork ?? []), ...plan.podsWithoutNetwork];
  const ids = report.podsWithoutNetwork.map((p) => p.id).join(' ');
  report.podsWithoutNetworkFix = `once the runtime is up: crictl stopp ${ids} && crictl rmp ${ids} (kubelet creates them again on the new network), or delete the pods`;
}

/** The backup is cni-sweep's own files, not a change to the node: it does not make a run "changed". */
const changesNode = (phase: Applied) => !phase.writesBackup && !phase.ownFiles;

/** What applying steps needs: the host, the reporter and the interrupt flag (a sweep, a restore, a prune). */
type Applier = Pick<SweepRequest, 'host' | 'reporter' | 'interrupt'>;
/** What applying steps records: whether the node changed, and what went, by kind. */
type Tally = Pick<Report, 'changed' | 'removed'>;
/** What is applied: a phase, or steps by a name; ownFiles: they change cni-sweep's own files only (prune). */
type Applied = Pick<Phase, 'name' | 'writesBackup'> & { ownFiles?: boolean };

async function runSteps(
  req: Applier,
  phase: Applied,
  plan: Pick<PhasePlan, 'steps'>,
  pr: PhaseReport,
  report: Tally,
  interruptible = true,
  /** The phase running beside this one that failed, if one did: no step of this one starts after that. */
  failedBeside: () => string | undefined = () => undefined,
): Promise<void> {
  const steps = plan.steps;
  for (let i = 0; i < steps.length;) {
    const signal = interruptible ? req.interrupt?.signal : undefined;
    const beside = failedBeside();
    if (signal || beside) {
      for (const rest of steps.slice(i)) pr.steps.push({ argv: rest.argv, stdin: rest.stdin, status: 'not-run', ms: 0 });
      // A phase that had not started a step ran nothing: not run, as one kept from planning, not
      // "stopped part way".
      if (i === 0) {
        pr.notes.push(`not run: ${signal ?? `phase ${beside} failed`}`);
        pr.status = 'skipped';
      } else if (signal) {
        pr.notes.push(`interrupted by ${signal} after ${i} of ${plural(steps.length, 'step')}`);
        pr.status = 'interrupted';
      } else {
        pr.notes.push(`stopped after ${i} of ${plural(steps.length, 'step')}: phase ${beside} failed`);
        pr.status = 'failed';
      }
      return;
    }
    // A run of consecutive concurrent steps goes at once; anything else runs alone.
    let j = i + 1;
    if (steps[i]!.concurrent) while (j < steps.length && steps[j]!.concurrent) j++;
    const results = await Promise.allSettled(steps.slice(i, j).map((step) => runStep(req, phase, step, pr, report)));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    i = j;
  }
}

async function runStep(req: Applier, phase: Applied, step: PlannedStep, pr: PhaseReport, report: Tally): Promise<void> {
  const sr: StepReport = { argv: step.argv, stdin: step.stdin, status: 'ok', ms: 0 };
  pr.steps.push(sr);
  req.reporter.emit({ type: 'step-start', phase: phase.name, step });
  const t0 = performance.now();
  try {
    if (step.completeStdin && step.stdin !== undefined) {
      step = { ...step, stdin: await step.completeStdin(req.host, step.stdin) };
      sr.stdin = step.stdin;
    }
    await req.host.apply(step, { timeoutMs: step.timeoutMs, readOnly: !changesNode(phase) });
    if (changesNode(phase)) report.changed = true;
    // Only what a step that succeeded removed: a failed batch may have applied part of its lines, unknown which.
    tallyRemoved(report.removed, step.removes);
  } catch (err) {
    sr.status = 'failed';
    sr.error = (err as Error).message;
    if (err instanceof CommandFailedError) {
      sr.exitCode = err.exitCode;
      sr.stderr = err.stderr;
      if (changesNode(phase)) report.changed = true; // a failed batch may have applied part of its lines
    }
    throw err;
  } finally {
    sr.ms = Math.round(performance.now() - t0);
    req.reporter.emit({ type: 'step-end', phase: phase.name, step, status: sr.status, ms: sr.ms, error: sr.error });
  }
}

/**
 * Applies steps that are not a sweep's phase (`restore`, `backups prune`) through the same loop as a
 * run: one host.apply per step, the same events, stopping between steps on a signal, the first
 * failure ending it. Resolves to the steps' report; a failure is in `error`, not thrown.
 */
export async function applySteps(
  req: Applier,
  name: string,
  steps: PlannedStep[],
  ownFiles = false,
): Promise<{ phase: PhaseReport; changed: boolean; error?: Error }> {
  const pr: PhaseReport = { name, status: steps.length ? 'ok' : 'nothing-to-do', notes: [], steps: [] };
  const tally: Tally = { changed: false, removed: emptyRemoved() };
  const t0 = performance.now();
  req.reporter.emit({ type: 'phase-start', phase: name, summary: name });
  try {
    await runSteps(req, { name, ownFiles }, { steps }, pr, tally);
    return { phase: pr, changed: tally.changed };
  } catch (err) {
    pr.status = 'failed';
    return { phase: pr, changed: tally.changed, error: err as Error };
  } finally {
    pr.ms = Math.round(performance.now() - t0);
    req.reporter.emit({ type: 'phase-end', phase: name, status: pr.status, ms: pr.ms });
  }
}

type JournalStatus = Journal['status'];

/**
 * The journal, written one write at a time. `now` waits for the disk. `later` records progress
 * after a phase without waiting: on a busy disk a rename over the journal can stall for hundreds
 * of milliseconds behind other writeback, and the next phase need not wait for it. A newer record
 * replaces one not yet started. What a crash needs (the facts read before anything was removed) is
 * in the first write, which is a `now`.
 */
function journalWriter(render: (status: JournalStatus) => string, write: (text: string) => Promise<void>) {
  let tail: Promise<void> = Promise.resolve();
  let next: string | null = null;
  return {
    /** The record is taken now (the run goes on changing the report); it is written when the disk is free. */
    later(status: JournalStatus): void {
      const idle = next === null;
      next = render(status);
      if (!idle) return;
      tail = tail.then(async () => {
        const text = next;
        next = null;
        // A progress record that cannot be written is not worth stopping a cleanup half way: the
        // final write (a `now`) reports a disk that stays unwritable.
        if (text !== null) await write(text).catch(() => {});
      });
    },
    async now(status: JournalStatus): Promise<void> {
      next = null; // superseded by this newer record
      const done = tail.then(() => write(render(status)));
      tail = done.catch(() => {});
      await done;
    },
  };
}

type LeftBehind = NonNullable<Ctx['leftBehind']> & { stillStopped: string[] };

/** Whether a process is running; a plan takes no lock, so the run it reads about may be live. */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Units the journal says an earlier run stopped and did not start again (it was killed, or its
 * restart failed) and that are still stopped. This run starts them at the end, unless it was told
 * to leave services stopped.
 */
async function stoppedByEarlierRun(req: SweepRequest, journal: Journal | null): Promise<LeftBehind | null> {
  const recorded = journal?.leftStopped ?? [];
  if (!journal || !recorded.length) return null;
  // A run holds the lock, so the one it read about is over; a plan may be reading a live one.
  if (req.opts.dryRun && journal.status === 'running' && journal.pid !== process.pid && running(journal.pid)) return null;
  const states = await unitStates(req.host, recorded);
  const units = recorded.filter((u) => stopped(states?.get(u)));
  // Started since by someone else, they are no longer this tool's to start: kept on record, a later
  // run would start a kubelet the operator has stopped since, weeks on. Forgotten by a run (which
  // holds the lock); only units systemd says run, never for want of an answer.
  if (!req.opts.dryRun && recorded.some((u) => runs(states?.get(u))))
    await req.host.writeState(JOURNAL, JSON.stringify({ ...journal, leftStopped: units }, null, 2) + '\n').catch(() => {});
  if (!units.length) return null;
  const who = `the ${journal.status === 'running' ? 'unfinished ' : ''}run of ${journal.started} (pid ${journal.pid}) stopped ${units.join(', ')} and did not start ${units.length > 1 ? 'them' : 'it'} again`;
  if (req.restartOnFailure === false)
    return {
      units: [],
      stillStopped: units,
      note: `${who}; left stopped (--no-restart-on-failure): systemctl start ${[...units].reverse().join(' ')}`,
    };
  return { units, stillStopped: units, note: `${who}: starting ${units.length > 1 ? 'them' : 'it'} at the end of this run` };
}

function withLeftBehind(ctx: Ctx, leftBehind: LeftBehind | null): void {
  if (!leftBehind?.units.length) return;
  ctx.leftBehind = { units: leftBehind.units, note: leftBehind.note };
  const { kubelet, runtime } = byRole(leftBehind.units, ctx.snapshot.distro?.units.kubelet);
  ctx.stopped.kubelet.push(...kubelet);
  ctx.stopped.runtime.push(...runtime);
}

/**
 * A backup that could not be written whole (a full disk) is no backup: it is removed, so that
 * `backups` and `restore` never offer it. Nothing on the node has changed yet.
 */
async function removePartialBackup(req: SweepRequest, dir: string, pr: PhaseReport): Promise<string> {
  // Its very directory could not be made (a read-only backup dir): there is nothing to remove.
  if ((await req.host.realEntryType(dir).catch(() => null)) === null) return 'no backup was written; nothing on the node was changed';
  const argv = ['rm', '-rf', '--', dir];
  const sr: StepReport = { argv, status: 'ok', ms: 0 };
  pr.steps.push(sr);
  const t0 = performance.now();
  try {
    await req.host.apply({ argv }, { readOnly: true });
  } catch (err) {
    sr.status = 'failed';
    sr.error = (err as Error).message;
  }
  sr.ms = Math.round(performance.now() - t0);
  const said = sr.status === 'ok' ? `removed the partial backup ${dir}` : `could not remove the partial backup ${dir}: ${sr.error}`;
  pr.notes.push(said);
  return `${said}; nothing on the node was changed`;
}

/**
 * Runs the start phases for these units only (a unit started already is not started again), in
 * the report's place for each phase. Steps are not interruptible: a second signal must not leave
 * kubelet stopped. Returns the phases' reports.
 */
async function restartPhases(
  req: SweepRequest,
  ctx: Ctx,
  units: string[],
  report: Pick<Report, 'phases'> & Tally,
  note: string,
): Promise<PhaseReport[]> {
  const out: PhaseReport[] = [];
  for (const phase of req.phases.filter((p) => p.afterFailure)) {
    const plan = await phase.plan(ctx);
    const steps = plan.steps
      .map((st) =>
        st.argv[0] === 'systemctl' && st.argv[1] === 'start'
          ? { ...st, argv: [...st.argv.slice(0, 2), ...st.argv.slice(2).filter((u) => units.includes(u))] }
          : st,
      )
      .filter((st) => !(st.argv[0] === 'systemctl' && st.argv.length <= 2));
    if (!steps.length) continue;
    let pr = report.phases.find((p) => p.name === phase.name);
    if (!pr) report.phases.push((pr = { name: phase.name, status: 'ok', notes: [], steps: [] }));
    pr.status = 'ok';
    pr.steps = pr.steps.filter((st) => st.status !== 'planned');
    pr.notes = [note];
    req.reporter.emit({ type: 'note', phase: phase.name, text: note });
    try {
      await runSteps(req, phase, { steps }, pr, report, false);
    } catch {
      pr.status = 'failed';
    }
    out.push(pr);
  }
  return out;
}

/**
 * A run that refuses or is not confirmed changes nothing of the cleanup, but the units an earlier
 * run left stopped are started all the same, as the note about them said: that is putting the
 * node back. Its journal stays as it is (the next run finds them active, and the unfinished job).
 */
async function startLeftBehind(req: SweepRequest, snapshot: Snapshot, leftBehind: LeftBehind | null, report: Report | null, why: string) {
  if (!leftBehind?.units.length || req.restartOnFailure === false) return;
  const ctx = newCtx(req, snapshot, new Gaps(), false);
  withLeftBehind(ctx, leftBehind);
  const into = report ?? { phases: [], changed: false, removed: emptyRemoved() };
  await restartPhases(
    req,
    ctx,
    leftBehind.units,
    into,
    `run although nothing is cleaned (${why}): an earlier run left ${leftBehind.units.join(', ')} stopped`,
  );
}

/** A phase's place in the run's order. */
const order = (phases: Phase[], name: string) => phases.findIndex((p) => p.name === name);

/** The units the `systemctl <verb>` steps of a list name. */
const unitsOf = (steps: Array<{ argv: string[] }>, verb: 'stop' | 'start') =>
  steps.filter((s) => s.argv[0] === 'systemctl' && s.argv[1] === verb).flatMap((s) => s.argv.slice(2));

/**
 * What a selection of phases (--only, --skip) stops and does not start again, or starts in the
 * wrong order: said before anything changes, since the node is then left without kubelet or its
 * runtime by design, not by a failure.
 */
function leftStoppedBySelection(plans: Sweep['plans'], selected: ReadonlySet<string>): string[] {
  const stoppedBy = (phase: string) => unitsOf(plans.find((p) => p.phase.name === phase)?.plan?.steps ?? [], 'stop');
  const out: string[] = [];
  for (const [stop, start] of [
    ['stop-kubelet', 'start-kubelet'],
    ['stop-runtime', 'start-runtime'],
  ] as const) {
    const units = stoppedBy(stop);
    if (units.length && !selected.has(start))
      out.push(
        `${units.join(', ')} ${units.length > 1 ? 'are' : 'is'} stopped and not started again (phase ${start} is not selected): the node stays without ${units.length > 1 ? 'them' : 'it'} until \`systemctl start ${[...units].reverse().join(' ')}\``,
      );
  }
  const runtime = stoppedBy('stop-runtime');
  if (runtime.length && !selected.has('start-runtime') && selected.has('start-kubelet') && stoppedBy('stop-kubelet').length)
    out.push(`kubelet is started again while ${runtime.join(', ')} stays stopped: the node goes NotReady`);
  return out;
}

async function apply(
  req: SweepRequest,
  snapshot: Snapshot,
  report: Report,
  cleanupPlans: Map<string, PhasePlan> | null,
  hasWork: boolean,
  leftBehind: LeftBehind | null,
): Promise<void> {
  const ctx = newCtx(req, snapshot, new Gaps(), false, cleanupPlans ?? undefined);
  ctx.hasWork = hasWork;
  withLeftBehind(ctx, leftBehind);
  // A run limited to some cleanup phases leaves the job unfinished: the next run takes it up.
  const partial = req.phases.some((p) => p.cleanup && !p.optIn && !req.selected.has(p.name));
  // What is stopped and not started again, as the journal must say should this process die.
  const leftStopped = new Set<string>(leftBehind?.stillStopped ?? []);
  const started = (pr: PhaseReport) => {
    for (const u of unitsOf(
      pr.steps.filter((s) => s.status === 'ok'),
      'start',
    ))
      leftStopped.delete(u);
  };
  const journal = journalWriter(
    (status) => journalText(status, req.opts.now, req.opts.node, snapshot, report, [...leftStopped], partial),
    (text) => traced('journal', () => req.host.writeState(JOURNAL, text)),
  );
  // Written before the first change: a read-only root fails here, with nothing changed.
  await journal.now('running');
  // Set by whichever phase fails first (phases may run side by side); typed so, since TypeScript
  // cannot see the assignments inside runPhase.
  let failure = null as { phase: string; err: Error } | null;
  let relisted = false;
  const runPhase = async (phase: Phase): Promise<void> => {
    if (!req.selected.has(phase.name)) {
      report.phases.push({ name: phase.name, status: 'skipped', notes: [], steps: [] });
      return;
    }
    if (failure || req.interrupt?.signal) {
      report.phases.push({
        name: phase.name,
        status: 'skipped',
        notes: [failure ? `not run: phase ${failure.phase} failed` : `not run: ${req.interrupt?.signal}`],
        steps: [],
      });
      return;
    }
    if (phase.cleanup && !relisted) {
      relisted = true;
      // A drain, a kubelet stop, removed sandboxes or a runtime stop that takes pods down left no
      // listing standing: read them again together, while the first phases remove files, instead of
      // one process at a time as each phase asks. What is still known (a run that stopped nothing,
      // or only a containerd that keeps its pods: services.ts) is not read again.
      // Awaited: it resolves once they are started, before this phase changes anything (started
      // later, they would be read while its step runs, and thrown away after it).
      await startListings(req.host, req.profiles);
    }
    const pr: PhaseReport = { name: phase.name, status: 'ok', notes: [], steps: [] };
    report.phases.push(pr);
    req.reporter.emit({ type: 'phase-start', phase: phase.name, summary: phase.summary });
    const t0 = performance.now();
    let partialBackup: string | null = null;
    try {
      // What an earlier phase changed is read again: the phase's reads together, ahead of plan().
      if (phase.reads) startReading(req.host, await phase.reads(ctx).catch(() => []));
      const plan = await traced(`plan ${phase.name}`, () => phase.plan(ctx));
      absorb(ctx, plan);
      // A backup directory this run creates is this run's to remove if the backup cannot be finished.
      const dir = plan.facts?.backupDir;
      if (phase.writesBackup && dir && (await req.host.realEntryType(dir)) === null) partialBackup = dir;
      pr.notes = plan.notes;
      for (const n of plan.notes) req.reporter.emit({ type: 'note', phase: phase.name, text: n });
      pr.status = plan.steps.length ? 'ok' : 'nothing-to-do';
      // On disk before the stop: a run killed right after it leaves the next run what to start.
      const stopping = unitsOf(plan.steps, 'stop');
      if (stopping.length) {
        for (const u of stopping) leftStopped.add(u);
        // The record shows the phases that ended; this one is in it once it has.
        report.phases.splice(report.phases.indexOf(pr), 1);
        try {
          await journal.now('running');
        } finally {
          report.phases.push(pr);
        }
      }
      recordPodsLeft(report, plan);
      // A phase running beside this one that failed stops it between steps, as a signal does.
      await runSteps(req, phase, plan, pr, report, true, () => failure?.phase);
      // Stopped by a signal half way: no backup either, and removed like one that failed.
      if (partialBackup && (pr.status as PhaseStatus) === 'interrupted') await removePartialBackup(req, partialBackup, pr);
    } catch (err) {
      pr.status = 'failed';
      failure ??= { phase: phase.name, err: err as Error };
      const cmd = err instanceof CommandFailedError ? err : undefined;
      report.failed ??= { phase: phase.name, error: (err as Error).message, argv: cmd?.argv, exitCode: cmd?.exitCode, stderr: cmd?.stderr };
      if (partialBackup) report.failed.error += `; ${await removePartialBackup(req, partialBackup, pr)}`;
    }
    started(pr);
    pr.ms = Math.round(performance.now() - t0);
    req.reporter.emit({ type: 'phase-end', phase: phase.name, status: pr.status, ms: pr.ms });
    if (phase.writesBackup && pr.status === 'ok') report.backup = ctx.backupDir ?? null;
    journal.later('running');
    mark(`applied ${phase.name}`);
  };
  // Each phase starts once the phases it waits for have ended (Phase.after: by default every phase
  // before it), so that the cleanup phases changing different kernel tables run side by side.
  const ended = new Map<string, Promise<void>>();
  for (const [i, phase] of req.phases.entries()) {
    const waits = waitsFor(req.phases, i).flatMap((n) => ended.get(n) ?? []);
    ended.set(
      phase.name,
      Promise.all(waits).then(() => runPhase(phase)),
    );
  }
  // Every phase ends before anything goes on (the restarts, the journal's last word), even when one
  // threw: the others may have a command in flight.
  const outcomes = await Promise.allSettled(ended.values());
  const thrown = outcomes.find((o): o is PromiseRejectedResult => o.status === 'rejected');
  if (thrown) throw thrown.reason;
  // In the order of the phases, whichever ended first.
  report.phases.sort((a, b) => order(req.phases, a.name) - order(req.phases, b.name));
  if (req.interrupt?.signal) report.interrupted = req.interrupt.signal;

  // Never leave a node with kubelet or the runtime stopped because a later phase went wrong or a
  // signal came, whichever start phase had run already (a signal during start-runtime skipped
  // start-kubelet); nor with the units an earlier run left stopped, whatever --only/--skip selected.
  // Start phases left out on purpose in a run that ended well leave this run's own stops stopped.
  const pending = failure || report.interrupted ? [...leftStopped] : (leftBehind?.units ?? []).filter((u) => leftStopped.has(u));
  if (req.restartOnFailure !== false && pending.length) {
    const why = failure
      ? `phase ${failure.phase} failed`
      : report.interrupted
        ? `of ${report.interrupted}`
        : 'an earlier run left them stopped';
    for (const pr of await restartPhases(req, ctx, pending, report, `run because ${why}`)) started(pr);
  }
  // What a failure or a signal leaves stopped (a start that failed, --no-restart-on-failure) is said
  // where it is seen, not only in the journal.
  if ((failure || report.interrupted) && leftStopped.size) {
    const units = [...leftStopped];
    const them = units.length > 1 ? 'them' : 'it';
    const w = `${units.join(', ')} ${units.length > 1 ? 'are' : 'is'} still stopped: the next cni-sweep run starts ${them} (the journal records ${them}), or \`systemctl start ${[...units].reverse().join(' ')}\``;
    report.warnings = [...(report.warnings ?? []), w];
    req.reporter.emit({ type: 'warn', text: w });
  }
  // The cleanup and the restarts are done: a journal that cannot be written now (the disk filled
  // meanwhile) is a warning, not a failure that hides the report and the exit code the run earned.
  // The journal on disk keeps its last record, and the next run reads what it says.
  await journal.now(report.interrupted ? 'interrupted' : failure ? 'failed' : 'finished').catch((err: unknown) => {
    const w = `could not write the journal ${JOURNAL}: ${(err as Error).message.split('\n')[0]}; the next run may take this one for unfinished and check the node again`;
    report.warnings = [...(report.warnings ?? []), w];
    req.reporter.emit({ type: 'warn', text: w });
  });
}
