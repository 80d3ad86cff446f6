// Stopping and starting kubelet and the container runtime. Stopped first so nothing recreates
// interfaces or IPAM files while they are removed; started again in reverse order.
import type { Ctx, Phase, PhasePlan } from './types.js';
import { nothing } from './types.js';

/** Units per runtime, in stop order. Docker also needs its socket stopped or it restarts on demand. */
export const RUNTIME_UNITS = ['cri-docker.service', 'docker.socket', 'docker.service', 'containerd.service', 'crio.service'];
export const KUBELET_UNITS = ['kubelet.service'];

async function activeUnits(ctx: Ctx, units: string[]): Promise<string[] | string> {
  if (!(await ctx.host.has('systemctl'))) return 'systemctl is not installed';
  const r = await ctx.host.query(['systemctl', 'is-active', ...units]);
  if (!r) return 'systemctl is not installed';
  // One line per unit, in order; exit code is non-zero when any is inactive.
  const states = r.stdout.split('\n');
  return units.filter((_, i) => states[i]?.trim() === 'active');
}

async function planStop(ctx: Ctx, units: string[], into: string[]): Promise<PhasePlan> {
  if (!ctx.hasWork) return nothing();
  const active = await activeUnits(ctx, units);
  if (typeof active === 'string') return nothing(`not stopping ${units.join(', ')}: ${active}`);
  if (!active.length) return nothing(units.length === 1 ? `${units[0]!} is not running` : 'no container runtime is running');
  into.push(...active);
  return { steps: [{ argv: ['systemctl', 'stop', ...active] }], notes: [] };
}

function planStart(units: string[]): PhasePlan {
  if (!units.length) return nothing();
  return { steps: [{ argv: ['systemctl', 'start', ...[...units].reverse()] }], notes: [] };
}

export const stopKubelet: Phase = {
  name: 'stop-kubelet',
  summary: 'stop kubelet so it does not set pods up again mid-cleanup',
  cleanup: false,
  plan: (ctx) => planStop(ctx, KUBELET_UNITS, ctx.stopped.kubelet),
};

export const stopRuntime: Phase = {
  name: 'stop-runtime',
  summary: 'stop the active container runtime (containerd, CRI-O, or Docker with cri-dockerd)',
  cleanup: false,
  plan: (ctx) => planStop(ctx, RUNTIME_UNITS, ctx.stopped.runtime),
};

export const startRuntime: Phase = {
  name: 'start-runtime',
  summary: 'start the container runtime again',
  cleanup: false,
  plan: async (ctx) => planStart(ctx.stopped.runtime),
};

export const startKubelet: Phase = {
  name: 'start-kubelet',
  summary: 'start kubelet again',
  cleanup: false,
  plan: async (ctx) => planStart(ctx.stopped.kubelet),
};
