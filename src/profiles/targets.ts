// Which detected CNIs a run removes and which it keeps, and why. A live CNI (its agent runs) is
// never a default target; beside others, neither is the CNI whose config the runtime uses now.
import path from 'node:path';
import { RefusedError } from '../errors.js';
import type { Host, ProcessInfo } from '../host/host.js';
import { ownsConfig, readCniConfigs } from '../inspect.js';
import { delegateVia } from '../multus.js';
import type { CniConfig } from '../parse/conflist.js';
import type { Detection } from './detect.js';
import { knownProfiles } from './index.js';
import type { Profile } from './schema.js';

/** CNIs live by other means than their agent's name (a distribution runs it inside its own process, as k3s runs Flannel; its pidfile names a running process), by profile name: why it is live and how to stop it. */
export type Embedded = Map<string, { why: string; hint: string }>;

export interface Target {
  cni: string;
  action: 'remove' | 'keep';
  why: string;
}

/** The processes of the profile's node agent among these. */
export function agentsOf(profile: Profile, procs: ProcessInfo[]): ProcessInfo[] {
  return procs.filter((p) =>
    profile.agents.processes.some(
      (a) =>
        (p.comm === a.name || (p.argv[0] ?? '').split('/').pop() === a.name) &&
        (a.cmdline === undefined || new RegExp(a.cmdline).test(p.argv.join(' '))),
    ),
  );
}

/**
 * The profiles live now: an agent of theirs runs, or a distribution runs them inside its own
 * process (`embedded`); a composite (Canal) when all its parts are, since flanneld alone is
 * Flannel's agent.
 */
export function liveProfiles(all: Profile[], procs: ProcessInfo[], embedded: ReadonlyMap<string, unknown>): Profile[] {
  const parts = new Set(all.filter((p) => !p.includes.length && (embedded.has(p.name) || agentsOf(p, procs).length)).map((p) => p.name));
  return all.filter((p) => (p.includes.length ? p.includes.every((i) => parts.has(i)) : parts.has(p.name)));
}

const named = (procs: ProcessInfo[]) =>
  procs
    .slice(0, 3)
    .map((p) => `${(p.argv[0] ?? p.comm).split('/').pop()} (pid ${p.pid})`)
    .join(', ') + (procs.length > 3 ? `, and ${procs.length - 3} more` : '');

/**
 * The configs pods get their network from: the first in lexical order (containerd and CRI-O load
 * only that one) and, when that first one is Multus, the delegate it hands pods to (its first
 * delegate or clusterNetwork); every config when that delegate is unknown (a NetworkAttachmentDefinition).
 */
export function runtimeConfigs(configs: CniConfig[]): CniConfig[] {
  const [first] = configs;
  if (!first) return [];
  if (!first.multus) return [first];
  const m = first.multus;
  return m.delegate && !m.alsoError ? [first, m.delegate, ...(m.also ?? [])] : configs;
}

/** Whether a config is a pod network's: one a CNI cni-sweep knows owns (podman's bridge is not). */
export function isPodNetworkConfig(c: CniConfig): boolean {
  return knownProfiles().some((p) => ownsConfig(p, c));
}

/** The config of this profile the runtime uses now, if any. */
export function configInUse(profile: Profile, configs: CniConfig[]): CniConfig | undefined {
  return runtimeConfigs(configs).find((c) => ownsConfig(profile, c));
}

/** "10-flannel.conflist (the first in lexical order)", or how the first config, Multus's, hands pods to it. */
function usedVia(used: CniConfig, configs: CniConfig[]): string {
  return viaMultus(used, configs) ?? `${used.file} (the first in lexical order)`;
}

/** When the runtime reaches this config through the Multus config in front of it: how. */
function viaMultus(used: CniConfig, configs: CniConfig[]): string | undefined {
  const first = configs[0]!;
  if (used === first || !first.multus) return undefined;
  const later = first.multus.also?.indexOf(used) ?? -1;
  if (later >= 0) return `${first.file} (Multus's, the first in lexical order, which adds it to every pod too: its delegate ${later + 2})`;
  return `${first.file} (Multus's, the first in lexical order, delegating to it: ${delegateVia(first)})`;
}

/** Why a CNI is live, and how to stop it: `agent` when its agent's process runs, else a distribution or a pidfile runs it. */
interface Live {
  why: string;
  hint: string;
  agent: boolean;
}

/**
 * Why a CNI is live, if it is: its agent runs, or a distribution or a pidfile runs it. A composite
 * (Canal) is live when any of its parts is: its state is its parts' (flannel.1, /run/flannel, the
 * FLANNEL-* chains are Canal's and Flannel's alike), so removing it would remove the live part's.
 * (A running flanneld does not say whether it is Canal's or a Flannel of its own: the hint names both.)
 */
function liveness(profile: Profile, procs: ProcessInfo[], embedded: Embedded): Live | undefined {
  const agents = agentsOf(profile, procs);
  const byAgent = { why: `its agent runs: ${named(agents)}`, hint: stopHint(profile), agent: true };
  // A composite's own agents are its parts' (said below, with what they share).
  if (agents.length && !profile.includes.length) return byAgent;
  const inside = embedded.get(profile.name);
  if (inside) return { ...inside, agent: false };
  for (const name of profile.includes) {
    const part = knownProfiles().find((p) => p.name === name);
    const live = part && liveness(part, procs, embedded);
    if (!live) continue;
    const why = `${live.why}, and ${profile.name}'s state is ${name}'s too: removing ${profile.name} would remove the live ${name}'s`;
    // A distribution's or a pidfile's: its own hint says how to stop it.
    if (!live.agent) return { ...live, why };
    const others = profile.includes.filter((n) => n !== name);
    return {
      why,
      hint:
        `if that ${name} is ${profile.name}'s, ${stopHint(profile)}; ` +
        `if it is a ${name} of its own (${profile.name} replaced by ${name}), cni-sweep keeps ${profile.name}'s state, which is ${name}'s: ` +
        `remove ${others.map((o) => `its ${o} part with --cni ${o}`).join(' and ')} and ${profile.name}'s config by hand`,
      agent: true,
    };
  }
  // A profile file's composite may name agents of its own.
  return agents.length ? byAgent : undefined;
}

/** How to stop a CNI whose agent runs. */
const stopHint = (p: Profile) =>
  `stop it for good first, by deleting its DaemonSet (${p.agents.stop || 'the DaemonSet that runs it'}), wait for its pods to go, then run again`;

/** The selection rule, without --cni: see README "Which CNI is removed". */
export function decideTargets(detected: Detection[], procs: ProcessInfo[], configs: CniConfig[], embedded: Embedded = new Map()): Target[] {
  return detected.map(({ profile }) => {
    const used = configInUse(profile, configs);
    const live = liveness(profile, procs, embedded);
    if (live) return { cni: profile.name, action: 'keep', why: `live: ${live.why}${live.agent ? '' : `; ${live.hint}`}` };
    if (used && detected.length > 1)
      return {
        cni: profile.name,
        action: 'keep',
        why: `the runtime uses its config ${usedVia(used, configs)}: pods get their network from it`,
      };
    return {
      cni: profile.name,
      action: 'remove',
      why: used
        ? `no agent of it runs; its config ${viaMultus(used, configs) ?? used.file} is still the runtime's, so new pods get no network until another CNI is installed`
        : detected.length > 1
          ? 'leftovers: no agent of it runs and the runtime does not use its config'
          : 'leftovers: no agent of it runs',
    };
  });
}

/**
 * --cni: each named CNI is removed, unless it is live, which refuses the whole run. Naming the CNI
 * the runtime uses is allowed; the reason says pods use it now.
 */
export function checkNamed(
  profiles: Profile[],
  procs: ProcessInfo[],
  configs: CniConfig[],
  embedded: Embedded = new Map(),
  loaded: CniConfig[] = configs,
): Target[] {
  for (const p of profiles) {
    const live = liveness(p, procs, embedded);
    if (live)
      throw new RefusedError(`--cni ${p.name}: ${p.name} is live on this node: ${live.why}; cni-sweep never removes a live CNI`, live.hint);
  }
  // A config another CNI owns too (flannel chained with cilium-cni) stays with that CNI. When this
  // one is its first plugin, the one that gives pods their interface, the config needs what this
  // one leaves (subnet.env, cni0, the network's IPAM): removing only this one would leave that
  // config's pods, and every new one, without a network. (The chained plugin's CNI may go alone.)
  const names = new Set(profiles.map((p) => p.name));
  for (const p of profiles)
    for (const c of configs) {
      if (c.untrusted || !ownsConfig(p, c) || !p.config.pluginTypes.includes(c.plugins[0]?.type ?? '')) continue;
      const others = knownProfiles().filter((q) => !names.has(q.name) && ownsConfig(q, c));
      if (!others.length) continue;
      const with_ = others.map((q) => q.name).join(' and ');
      throw new RefusedError(
        `--cni ${p.name}: ${c.file} is ${with_}'s config too (a chained config), which stays with ${with_}, and it needs ${p.name}'s state: removing ${p.name} alone would leave its pods and every new one without a network`,
        `name both (--cni ${[p.name, ...others.map((q) => q.name)].join(',')}) once ${with_} no longer runs, or remove ${c.file} first`,
      );
    }
  // A Multus config adds every delegate to every pod: one that stays (its first delegate's CNI is
  // not removed) and also hands pods to a removed CNI makes every new pod fail in Multus.
  for (const c of configs) {
    const m = c.multus;
    if (!m?.also?.length || (m.delegate && profiles.some((p) => ownsConfig(p, m.delegate!)))) continue;
    for (const [i, d] of m.also.entries()) {
      const p = profiles.find((q) => ownsConfig(q, d));
      if (!p) continue;
      throw new RefusedError(
        `--cni ${p.name}: ${c.file} (Multus's) adds ${p.name}'s network to every pod (its delegate ${i + 2}), and it stays: removing ${p.name} would make every new pod fail in Multus and take that interface from the pods that have it`,
        `remove ${p.name}'s delegate from ${c.file} first, then run again`,
      );
    }
  }
  return profiles.map((p) => {
    const used = configInUse(p, loaded);
    return {
      cni: p.name,
      action: 'remove',
      why: used
        ? `named with --cni; pods use it now: ${viaMultus(used, loaded) ?? used.file} is the runtime's config, so new pods get no network until another CNI is installed`
        : 'named with --cni',
    };
  });
}

/**
 * CNIs whose agent's pidfile names a process running in cni-sweep's network namespace, and why; a
 * pidfile whose pid is gone (a crashed agent) or that does not hold a pid says nothing.
 */
export async function pidfileLive(host: Host, profiles: Profile[], procs: ProcessInfo[]): Promise<Embedded> {
  const live: Embedded = new Map();
  for (const p of profiles) {
    for (const file of p.agents.pidfiles) {
      const text = await host.readFile(file).catch(() => null);
      const pid = /^\s*(\d+)\s*$/.exec(text ?? '')?.[1];
      const proc = pid === undefined ? undefined : procs.find((x) => x.pid === Number(pid));
      if (!proc) continue;
      live.set(p.name, {
        why: `its pidfile ${file} names ${(proc.argv[0] ?? proc.comm).split('/').pop()} (pid ${proc.pid}), which runs`,
        hint: `stop it for good first (${p.agents.stop || 'delete the DaemonSet that runs it'}), wait for its pods to go, then run again`,
      });
      break;
    }
  }
  return live;
}

/** Reads what the rule needs (the conf dir, the processes) and applies it: to the detected CNIs, or to those named with --cni. */
export async function chooseTargets(
  host: Host,
  input: { detected: Detection[] } | { named: Profile[] },
  layout: { confDirs?: string[]; embedded?: (procs: ProcessInfo[]) => Embedded } = {},
): Promise<Target[]> {
  const [configs, procs] = await Promise.all([readCniConfigs(host, layout.confDirs), host.processes()]);
  // The runtime reads one conf dir, the distribution's first (k3s: its own while its Flannel is on,
  // /etc/cni/net.d without it): a config elsewhere is never the one pods get their network from.
  const runtimeDir = layout.confDirs?.[0];
  const loaded = runtimeDir ? configs.filter((c) => path.posix.dirname(c.file) === runtimeDir) : configs;
  const embedded: Embedded = layout.embedded?.(procs) ?? new Map<string, { why: string; hint: string }>();
  const profiles = 'named' in input ? input.named : input.detected.map((d) => d.profile);
  for (const [cni, live] of await pidfileLive(host, profiles, procs)) if (!embedded.has(cni)) embedded.set(cni, live);
  return 'named' in input
    ? checkNamed(input.named, procs, configs, embedded, loaded)
    : decideTargets(input.detected, procs, loaded, embedded);
}
