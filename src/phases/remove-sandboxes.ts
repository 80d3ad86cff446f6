// Stops and removes, through the CRI and while the runtime is still up, the pod sandboxes on the
// network being removed: a runtime stopped the way systemd stops containerd (KillMode=process)
// leaves the pause processes running, so without this the pods stay READY with only `lo` inside
// once their veths go, and kubelet never recreates them. Removed sandboxes come back (kubelet
// creates them again) on the network configured next.
//
// A sandbox is the removed CNI's when its pod interface pairs with one of the CNI's host interfaces
// (a port of cni0, a cali* veth), or, when that cannot be seen, when its IP lies in the CNI's node
// subnet (else its pod network). Host-network sandboxes and those of another CNI are never touched.
// Only crictl's real subcommands: pods -o json, inspectp -o json, stopp, rmp.
import { z } from 'zod';
import { crictl } from '../distros/node.js';
import { refusesUndrained } from './drain.js';
import { listLinks, networksOf, RESULTS_DIR, type ProfileFacts } from '../inspect.js';
import { ownedLinks } from '../ownership.js';
import { parseLinks } from '../parse/iproute.js';
import { contains, parsePrefix } from '../util/cidr.js';
import type { Ctx, Phase, PhasePlan, PodLeft } from './types.js';
import { nothing } from './types.js';
import { plural } from '../util/plural.js';

/** host-local's allocations, one file per address holding the container ID. */
const IPAM_NETWORKS_DIR = '/var/lib/cni/networks';

const PodList = z.looseObject({
  items: z
    .array(
      z.looseObject({
        id: z.string(),
        metadata: z.looseObject({ name: z.string().optional(), namespace: z.string().optional() }).optional(),
        state: z.string().optional(),
      }),
    )
    .nullish(),
});

const PodStatus = z.looseObject({
  status: z
    .looseObject({
      network: z.looseObject({ ip: z.string().optional(), additionalIps: z.array(z.looseObject({ ip: z.string() })).nullish() }).nullish(),
      linux: z
        .looseObject({ namespaces: z.looseObject({ options: z.looseObject({ network: z.string().optional() }).nullish() }).nullish() })
        .nullish(),
    })
    .optional(),
  info: z
    .looseObject({
      runtimeSpec: z
        .looseObject({
          linux: z
            .looseObject({ namespaces: z.array(z.looseObject({ type: z.string(), path: z.string().optional() })).nullish() })
            .nullish(),
        })
        .nullish(),
    })
    .nullish(),
});

export interface Sandbox extends PodLeft {
  ips: string[];
  hostNetwork: boolean;
  netns?: string;
}

/** A few crictl calls at a time: a node may run hundreds of DaemonSet pods, each one call. */
async function inBatches<T, R>(items: T[], fn: (item: T) => Promise<R>, size = 8): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += size) out.push(...(await Promise.all(items.slice(i, i + size).map(fn))));
  return out;
}

const json = (text: string): unknown => {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
};

/**
 * The READY sandboxes the runtime runs, with their IPs and network namespaces; a line saying why
 * when crictl cannot tell (not installed, runtime not answering).
 */
export async function readySandboxes(
  host: Ctx['host'],
  cri: (...args: string[]) => string[] = (...args) => ['crictl', ...args],
): Promise<{ sandboxes: Sandbox[] } | { error: string }> {
  const r = await host.query(cri('pods', '-o', 'json'));
  if (!r) return { error: 'crictl is not installed' };
  if (r.code !== 0) return { error: `crictl pods failed: ${r.stderr.trim().split('\n').pop() || `exit ${r.code}`}` };
  const list = PodList.safeParse(json(r.stdout));
  if (!list.success) return { error: 'crictl pods -o json printed something that is not a pod list' };
  const ready = (list.data.items ?? []).filter((p) => p.state === 'SANDBOX_READY');
  const inspected = await inBatches(ready, (p) => host.query(cri('inspectp', '-o', 'json', p.id)));
  const out: Sandbox[] = [];
  for (const [i, p] of ready.entries()) {
    const r = inspected[i];
    const s = r && r.code === 0 ? PodStatus.safeParse(json(r.stdout)) : null;
    const st = s?.success ? s.data.status : undefined;
    const ips = [st?.network?.ip, ...(st?.network?.additionalIps ?? []).map((a) => a.ip)].filter((x): x is string => Boolean(x));
    const netns = s?.success ? (s.data.info?.runtimeSpec?.linux?.namespaces ?? []).find((n) => n.type === 'network')?.path : undefined;
    out.push({
      id: p.id,
      name: p.metadata?.name,
      namespace: p.metadata?.namespace,
      ip: ips[0],
      ips,
      hostNetwork: st?.linux?.namespaces?.options?.network === 'NODE',
      netns: netns || undefined,
    });
  }
  return { sandboxes: out };
}

/** Whether an address lies in the CNI's node subnet, else (no subnet known) its pod network. */
function inNetwork(ip: string, facts: ProfileFacts[]): boolean {
  const a = parsePrefix(ip);
  if (!a) return false;
  return facts.some((f) => (f.nodeSubnets.length ? f.nodeSubnets : f.podNetworks).some((n) => contains(n, a)));
}

/**
 * Which sandboxes are on the removed network, and which stay (with why). The pod interface's
 * peer decides when it can be seen; the IP otherwise.
 */
export async function sandboxesOf(ctx: Ctx, sandboxes: Sandbox[]): Promise<{ mine: Sandbox[]; notes: string[] }> {
  // The node's links only tell the peer of a pod interface seen in a sandbox's namespace: with no
  // such sandbox (none running, a common case once drained), they are not read (after the stop of
  // kubelet, that would be a fresh listing of every link).
  const peers = sandboxes.some((s) => !s.hostNetwork && s.netns);
  const links = peers ? await listLinks(ctx.host, ctx.gaps) : [];
  const owned = new Set(ownedLinks(links, ctx.snapshot.facts).map((l) => l.name));
  const byIndex = new Map(links.map((l) => [l.ifindex, l]));
  const mine: Sandbox[] = [];
  const notes: string[] = [];
  for (const s of sandboxes) {
    if (s.hostNetwork) continue;
    let peer: string | undefined;
    if (s.netns) {
      const r = await ctx.host.query(['nsenter', `--net=${s.netns}`, 'ip', '-j', '-d', 'link', 'show']);
      if (r?.code === 0)
        peer = parseLinks(r.stdout)
          .filter((l) => l.linkinfo?.info_kind === 'veth' && l.link_index !== undefined)
          .map((l) => byIndex.get(l.link_index!)?.ifname)
          .find(Boolean);
    }
    if (peer !== undefined) {
      if (owned.has(peer)) mine.push(s);
      else notes.push(`kept pod sandbox ${podName(s)}: its pod interface pairs with ${peer}, which is not the removed CNI's`);
    } else if (s.ips.some((ip) => inNetwork(ip, ctx.snapshot.facts))) mine.push(s);
  }
  return { mine, notes };
}

export const podName = (p: PodLeft) =>
  `${p.namespace && p.name ? `${p.namespace}/${p.name}` : p.id.slice(0, 13)}${p.ip ? ` (${p.ip})` : ''}`;
const podLeft = (s: PodLeft): PodLeft => ({ id: s.id, name: s.name, namespace: s.namespace, ip: s.ip });
const listed = (pods: PodLeft[]) => `${pods.slice(0, 5).map(podName).join(', ')}${pods.length > 5 ? `, and ${pods.length - 5} more` : ''}`;

/**
 * The result caches of a network (`<network>-<id>-<ifname>`) by container id: for each id, the first
 * name in `names` that starts with `<network>-<id>-`, as a scan of them would find it, without one
 * scan per allocation. Every `-` after the network's prefix may end the id.
 */
export function cacheFiles(names: string[], net: string): Map<string, string> {
  const out = new Map<string, string>();
  const prefix = `${net}-`;
  for (const c of names) {
    if (!c.startsWith(prefix)) continue;
    for (let i = c.indexOf('-', prefix.length); i >= 0; i = c.indexOf('-', i + 1)) {
      const id = c.slice(prefix.length, i);
      if (!out.has(id)) out.set(id, c);
    }
  }
  return out;
}

/**
 * When the runtime cannot be asked: the pods the CNI's host-local IPAM still holds addresses for, with
 * their names from the result cache (libcni keeps K8S_POD_NAMESPACE/K8S_POD_NAME in cniArgs). Some may
 * be long gone; the note says so.
 */
async function allocatedPods(ctx: Ctx): Promise<PodLeft[]> {
  const out: PodLeft[] = [];
  const seen = new Set<string>(); // the ids in out
  const cache = ((await ctx.host.readDir(RESULTS_DIR)) ?? []).map((e) => e.name);
  for (const net of new Set(ctx.snapshot.facts.flatMap(networksOf))) {
    const dir = `${IPAM_NETWORKS_DIR}/${net}`;
    const caches = cacheFiles(cache, net);
    for (const e of (await ctx.host.readDir(dir)) ?? []) {
      if (e.type !== 'file' || !parsePrefix(e.name)) continue;
      const id = ((await ctx.host.readFile(`${dir}/${e.name}`)) ?? '').split(/\r?\n/)[0]!.trim();
      if (!id || seen.has(id)) continue;
      seen.add(id);
      const pod: PodLeft = { id, ip: e.name };
      const file = caches.get(id);
      const args = file ? (json((await ctx.host.readFile(`${RESULTS_DIR}/${file}`)) ?? '') as { cniArgs?: unknown } | null)?.cniArgs : null;
      if (Array.isArray(args))
        for (const a of args) {
          if (Array.isArray(a) && a[0] === 'K8S_POD_NAME') pod.name = String(a[1]);
          if (Array.isArray(a) && a[0] === 'K8S_POD_NAMESPACE') pod.namespace = String(a[1]);
        }
      out.push(pod);
    }
  }
  return out;
}

export const removeSandboxes: Phase = {
  name: 'remove-sandboxes',
  summary: 'stop and remove, through the CRI while the runtime is up, the pod sandboxes on the removed network',
  cleanup: false,
  async plan(ctx): Promise<PhasePlan> {
    if (!ctx.hasWork || !ctx.snapshot.facts.length) return nothing();
    // The distribution's runtime socket (k3s, rke2, microk8s do not use crictl's default).
    const cri = (...args: string[]) => crictl(ctx.snapshot.distro, ctx.host.root, ...args);
    const found = await readySandboxes(ctx.host, cri);
    if ('error' in found) {
      const pods = await allocatedPods(ctx);
      if (!pods.length) return nothing(`${found.error}: no pod sandbox checked (no IPAM allocation on the removed network either)`);
      const warning =
        `${found.error}: pod sandboxes cannot be removed through the CRI; ${plural(pods.length, 'pod')} ${pods.length === 1 ? 'holds' : 'hold'} addresses on the removed network and, ` +
        `if still running, ${pods.length === 1 ? 'is' : 'are'} left without a network: ${listed(pods)}. Once the runtime is up: crictl stopp <ids> && crictl rmp <ids>, or delete the pods`;
      return {
        steps: [],
        notes: [warning, 'from IPAM allocations: some of them may be gone already'],
        warnings: [warning],
        podsWithoutNetwork: pods,
      };
    }
    const { mine, notes } = await sandboxesOf(ctx, found.sandboxes);
    if (!mine.length) return nothing(...notes, found.sandboxes.length ? '' : 'no running pod sandboxes');
    if (ctx.opts.keepSandboxes) {
      const warning = `--keep-sandboxes: ${plural(mine.length, 'pod')} on the removed network ${mine.length === 1 ? 'keeps' : 'keep'} running without a network: ${listed(mine)}`;
      return { steps: [], notes: [warning, ...notes], warnings: [warning], podsWithoutNetwork: mine.map(podLeft) };
    }
    const ids = mine.map((s) => s.id);
    return {
      steps: [{ argv: cri('stopp', ...ids) }, { argv: cri('rmp', ...ids), removes: { kind: 'pod sandbox', items: mine.map(podName) } }],
      notes,
    };
  },
  // The sandbox list plan() reads first; not for a run that refuses at drain.
  async reads(ctx) {
    if (!ctx.hasWork || !ctx.snapshot.facts.length || (await refusesUndrained(ctx))) return [];
    return [crictl(ctx.snapshot.distro, ctx.host.root, 'pods', '-o', 'json')];
  },
};
