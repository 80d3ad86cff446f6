// The phases, in the order they run. `--help` lists them from here.
import { backup } from './backup.js';
import { bpf } from './bpf.js';
import { cniConfig } from './cni-config.js';
import { cniState } from './cni-state.js';
import { drain } from './drain.js';
import { firewall } from './firewall.js';
import { interfaces } from './interfaces.js';
import { modules } from './modules.js';
import { netns } from './netns.js';
import { removeSandboxes } from './remove-sandboxes.js';
import { preflight } from './preflight.js';
import { routes } from './routes.js';
import { startKubelet, startRuntime, stopKubelet, stopRuntime } from './services.js';
import type { Phase } from './types.js';
import { uncordon } from './uncordon.js';

export const PHASES: Phase[] = [
  preflight,
  backup,
  drain,
  stopKubelet,
  removeSandboxes,
  stopRuntime,
  cniConfig,
  cniState,
  bpf,
  interfaces,
  routes,
  firewall,
  netns,
  modules,
  startRuntime,
  startKubelet,
  uncordon,
];

export const PHASE_NAMES = PHASES.map((p) => p.name);

/**
 * The order for a node whose container runtime runs inside the kubelet's unit (k3s, rke2: one unit
 * holds kubelet and containerd): stopping that unit takes the CRI away, so the sandboxes are removed
 * just before it, while kubelet still runs. Pods kubelet brings back meanwhile get the network the
 * runtime is configured with next.
 */
export function phasesFor(units: { runtime: string[] } | undefined): Phase[] {
  if (!units || units.runtime.length) return PHASES;
  const rest = PHASES.filter((p) => p !== removeSandboxes);
  const at = rest.indexOf(stopKubelet);
  return [...rest.slice(0, at), removeSandboxes, ...rest.slice(at)];
}
