// Stopping and starting kubelet and the container runtime. Stopped first so nothing recreates
// interfaces or IPAM files while they are removed; started again in reverse order.
import { unitStates, unitStatesArgv } from '../host/units.js';
import { kubeadm } from '../distros/kubeadm.js';
import type { Ctx, Phase, PhasePlan } from './types.js';
import { nothing } from './types.js';
import { refusesUndrained } from './drain.js';

/** kubeadm's units, in stop order (src/distros/kubeadm.ts); other distributions bring their own. */
export const RUNTIME_UNITS = kubeadm.units.runtime;
export const KUBELET_UNITS = kubeadm.units.kubelet;

/**
 * States of a unit that runs, or will by itself: `activating` is also a unit waiting out its
 * Restart= delay (kubelet's RestartSec=10, k3s's 5s), which systemd starts mid-cleanup unless it is
 * stopped (a stop cancels the restart); `reloading` runs. Not `deactivating`: someone is stopping it.
 */
const RUNNING = ['active', 'activating', 'reloading'];
/** Whether `systemctl is-active` says a unit runs (see RUNNING). */
export const runs = (state: string | undefined): boolean => RUNNING.includes(state ?? '');
/** Whether `systemctl is-active` says a unit is stopped. */
export const stopped = (state: string | undefined): boolean => state === 'inactive' || state === 'failed';

async function activeUnits(ctx: Ctx, units: string[]): Promise<string[] | string> {
  const states = await unitStates(ctx.host, serviceUnits(ctx));
  if (!states) return 'systemctl is not installed';
  return units.filter((u) => runs(states.get(u)));
}

/**
 * Runtimes whose stop leaves every pod and its network as they are: containerd's own unit has
 * KillMode=process, so systemd stops containerd alone and the shims (and the pods' processes, network
 * namespaces, veths, rules) outlive it. Only when systemd says that KillMode is still in force: a
 * drop-in can change it. Not CRI-O (its unit kills its control group: whether the conmons are in it
 * depends on its cgroup manager) nor Docker (without live-restore, stopping it stops the containers,
 * and their namespaces and veths go with them).
 */
const KEEP_PODS_ON_STOP = ['containerd.service'];

/**
 * How long a `systemctl stop` or `start` may take: systemd waits a unit's TimeoutStopSec (90 s by
 * default) and its ExecStopPost (rke2's kills kubelet and containerd) before the job ends, and
 * killing systemctl does not cancel the job, so a start after it would race it. Above systemd's own.
 */
const SERVICE_TIMEOUT_MS = 300_000;

/** `systemctl show`'s KillMode of each unit, one line each in order (systemd 230 and later). */
const killModesArgv = (units: string[]) => ['systemctl', 'show', '--property=KillMode', '--value', '--', ...units];

/**
 * Whether stopping these runtime units can change none of the listings read so far: no kubelet
 * unit is running (kubelet tears pods down on its own, so what was read while it ran is not kept
 * past its stop), and each unit keeps its pods when stopped. When in doubt (an answer missing), no.
 */
async function stopKeepsPods(ctx: Ctx, units: string[]): Promise<boolean> {
  // Kubelet stopped by this run: every listing is stale already, and is read again after this stop anyway.
  if (ctx.stopped.kubelet.length || !units.every((u) => KEEP_PODS_ON_STOP.includes(u))) return false;
  const states = await unitStates(ctx.host, serviceUnits(ctx));
  if (!states || unitsOf(ctx).kubelet.some((u) => states.get(u) !== 'inactive' && states.get(u) !== 'failed')) return false;
  const r = await ctx.host.query(killModesArgv(units)).catch(() => null);
  if (!r || r.code !== 0) return false;
  const modes = r.stdout.split('\n');
  return units.every((_, i) => modes[i]?.trim() === 'process');
}

/** The distribution's units (k3s: one unit holds kubelet and the runtime); kubeadm's by default. */
const unitsOf = (ctx: Ctx) => ctx.snapshot.distro?.units ?? { kubelet: KUBELET_UNITS, runtime: RUNTIME_UNITS };

/**
 * The units both stop phases ask about, in one `systemctl is-active` (one line per unit, each
 * unit's answer its own): a plan reads them once instead of once per phase.
 */
const serviceUnits = (ctx: Ctx) => {
  const { kubelet, runtime } = unitsOf(ctx);
  return [...new Set([...kubelet, ...runtime])];
};

async function planStop(ctx: Ctx, units: string[], kind: 'kubelet' | 'runtime'): Promise<PhasePlan> {
  if (!ctx.hasWork) return nothing();
  if (!units.length) {
    const holder = unitsOf(ctx).kubelet.join(' or ');
    return nothing(`the container runtime runs inside ${holder}: stopped and started with it`);
  }
  const active = await activeUnits(ctx, units);
  if (typeof active === 'string') {
    const plan = nothing(`not stopping ${units.join(', ')}: ${active}`);
    // Without systemd (OpenRC, a hand-run kubelet) the cleanup would run beside a live kubelet,
    // which recreates what it removes: said where a warning is seen, once.
    if (kind === 'kubelet')
      plan.warnings = [
        `kubelet and the container runtime are not stopped (${active}): stop them before the cleanup (or it runs beside a kubelet that sets pods up again), and start them after`,
      ];
    return plan;
  }
  if (!active.length)
    return nothing(
      units.length === 1
        ? `${units[0]!} is not running`
        : kind === 'runtime'
          ? 'no container runtime is running'
          : `none of ${units.join(', ')} is running`,
    );
  // A stop that cannot change any listing says so: the cleanup phases then plan on what was read
  // before it instead of reading every table again. Otherwise it declares nothing: every answer is stale.
  const keeps = kind === 'runtime' && (await stopKeepsPods(ctx, active));
  return {
    steps: [{ argv: ['systemctl', 'stop', ...active], timeoutMs: SERVICE_TIMEOUT_MS, ...(keeps ? { touches: [] } : {}) }],
    notes: [],
    facts: { stopped: kind === 'kubelet' ? { kubelet: active } : { runtime: active } },
  };
}

function planStart(ctx: Ctx, units: string[]): PhasePlan {
  if (!units.length) return nothing();
  const left = ctx.leftBehind && units.some((u) => ctx.leftBehind!.units.includes(u)) ? [ctx.leftBehind.note] : [];
  return { steps: [{ argv: ['systemctl', 'start', ...[...units].reverse()], timeoutMs: SERVICE_TIMEOUT_MS }], notes: left };
}

/** Splits units into the lists the start phases start them from (the distribution's kubelet units, else kubeadm's). */
export function byRole(units: string[], kubeletUnits: string[] = KUBELET_UNITS): { kubelet: string[]; runtime: string[] } {
  return { kubelet: units.filter((u) => kubeletUnits.includes(u)), runtime: units.filter((u) => !kubeletUnits.includes(u)) };
}

/** The is-active query planStop makes, started early; not for a run that refuses at drain. */
async function stopReads(ctx: Ctx, units: string[]): Promise<string[][]> {
  if (!ctx.hasWork || !units.length || (await refusesUndrained(ctx)) || !(await ctx.host.has('systemctl'))) return [];
  return [unitStatesArgv(serviceUnits(ctx))];
}

export const stopKubelet: Phase = {
  name: 'stop-kubelet',
  summary: 'stop kubelet so it does not set pods up again mid-cleanup',
  cleanup: false,
  plan: (ctx) => planStop(ctx, unitsOf(ctx).kubelet, 'kubelet'),
  reads: (ctx) => stopReads(ctx, unitsOf(ctx).kubelet),
};

export const stopRuntime: Phase = {
  name: 'stop-runtime',
  summary: 'stop the active container runtime (containerd, CRI-O, or Docker with cri-dockerd)',
  cleanup: false,
  plan: (ctx) => planStop(ctx, unitsOf(ctx).runtime, 'runtime'),
  reads: (ctx) => stopReads(ctx, unitsOf(ctx).runtime),
};

export const startRuntime: Phase = {
  name: 'start-runtime',
  summary: 'start the container runtime again',
  cleanup: false,
  afterFailure: true,
  plan: async (ctx) => planStart(ctx, ctx.stopped.runtime),
};

export const startKubelet: Phase = {
  name: 'start-kubelet',
  summary: 'start kubelet again',
  cleanup: false,
  afterFailure: true,
  plan: async (ctx) => planStart(ctx, ctx.stopped.kubelet),
};
