// Reads the node once, read-only (host.query and file reads), into the view every check works on.
// Nothing here judges: a read that fails is recorded in notChecked and the checks see less.
import path from 'node:path';
import { z } from 'zod';
import type { Host } from '../host/host.js';
import {
  CNI_CONF_DIR,
  Gaps,
  readCniConfigFiles,
  listIpsets,
  listLinks,
  listNftTables,
  listRoutes,
  networksOf,
  ownsConfig,
  profileFacts,
  RESULTS_DIR,
  saveAllIptables,
  staleWrappers,
  stateCandidates,
  type ProfileFacts,
} from '../inspect.js';
import { resolveMultus } from '../multus.js';
import { gatherMultus } from './checks/multus.js';
import { plannedLeftovers } from './planned.js';
import { parseCniConfig } from '../parse/conflist.js';
import { parseAddrs, parseLinks } from '../parse/iproute.js';
import { readySandboxes } from '../phases/remove-sandboxes.js';
import { parseSubnetEnv, type SubnetEnv } from '../parse/subnetenv.js';
import { RUNTIME_UNITS } from '../phases/services.js';
import type { Profile } from '../profiles/schema.js';
import { crictl, embeddedLive, resolveNodePath, type NodeDistro } from '../distros/node.js';
import { liveProfiles, runtimeConfigs } from '../profiles/targets.js';
import { networkOf, parsePrefix, type Prefix } from '../util/cidr.js';
import type { ConfigEntry, InterfaceAddr, IpamNetwork, NodeView } from './types.js';

export const CNI_BIN_DIR = '/opt/cni/bin';
export const IPAM_DIR = '/var/lib/cni/networks';
/** Units that run a container runtime: the runtimes themselves, and the distributions that embed containerd. */
const RUNTIMES = [
  ...RUNTIME_UNITS.filter((u) => u !== 'docker.socket'),
  'k3s.service',
  'k3s-agent.service',
  'rke2-server.service',
  'rke2-agent.service',
];

export interface ViewOptions {
  node: string;
  kubeconfig?: string;
  podCidrs: Prefix[];
  profiles: Profile[];
  allProfiles: Profile[];
  /** The node's distribution: its conf and bin dirs; absent: kubeadm's. */
  distro?: NodeDistro;
  /** --profile files (absolute): the fix commands name them again, or their CNIs would be unknown. */
  profileFiles?: string[];
}

/** Every config in the conf dir, parsed where possible: a broken one is a finding, not a reason to stop. */
async function readConfigs(host: Host, all: Profile[], dirs?: string[]): Promise<ConfigEntry[]> {
  const out: ConfigEntry[] = [];
  for (const { file, text } of await readCniConfigFiles(host, dirs)) {
    let json: unknown = null;
    try {
      json = JSON.parse(text);
    } catch {
      /* parseCniConfig says why */
    }
    try {
      const config = parseCniConfig(file, text);
      out.push({ file, config, json, owners: all.filter((p) => ownsConfig(p, config)).map((p) => p.name) });
    } catch (err) {
      out.push({ file, config: null, json, error: (err as Error).message, owners: [] });
    }
  }
  return out;
}

/**
 * The CNIs pods get their network from (targets.ts runtimeConfigs: the first loadable config of the
 * runtime's conf dir, every delegate of a Multus config first, or every config when one is unknown),
 * the live ones, and a composite's parts.
 */
function inUse(configs: ConfigEntry[], all: Profile[], live: string[] = [], runtimeDir?: string): Set<string> {
  const names = new Set(live);
  // The runtime reads only the distribution's first conf dir.
  const loaded = configs.flatMap((c) => (c.config && (!runtimeDir || path.posix.dirname(c.file) === runtimeDir) ? [c.config] : []));
  for (const c of runtimeConfigs(loaded)) for (const p of all) if (ownsConfig(p, c)) names.add(p.name);
  for (const p of all) if (names.has(p.name)) for (const part of p.includes) names.add(part);
  return names;
}

async function readIpam(host: Host): Promise<IpamNetwork[]> {
  const out: IpamNetwork[] = [];
  for (const d of (await host.readDir(IPAM_DIR)) ?? []) {
    if (d.type !== 'dir') continue;
    const dir = `${IPAM_DIR}/${d.name}`;
    const net: IpamNetwork = { network: d.name, dir, allocations: [] };
    for (const f of (await host.readDir(dir)) ?? []) {
      // host-local names each allocation file by its IP; lock and last_reserved_ip.<n> are bookkeeping.
      const ip = f.type === 'file' ? parsePrefix(f.name) : null;
      if (!ip) continue;
      const text = (await host.readFile(`${dir}/${f.name}`)) ?? '';
      // "<containerID>\r\n<ifname>", or only the container ID in older plugins.
      const [containerId, ifname] = text.split(/\r?\n/).map((s) => s.trim());
      net.allocations.push({ ip, file: `${dir}/${f.name}`, containerId: containerId ?? '', ifname: ifname || undefined });
    }
    out.push(net);
  }
  return out;
}

const KubeNode = z.looseObject({
  spec: z.looseObject({ podCIDR: z.string().optional(), podCIDRs: z.array(z.string()).optional() }).optional(),
});
const KubeList = z.looseObject({
  items: z.array(z.looseObject({ metadata: z.looseObject({ name: z.string(), namespace: z.string().optional() }) })),
});

/** Runs a kubectl read; the parsed JSON, or a line for notChecked. */
async function kubectlJson(host: Host, argv: string[]): Promise<{ json: unknown } | { error: string }> {
  const r = await host.query(argv);
  if (!r) return { error: 'kubectl is not installed' };
  if (r.code !== 0) return { error: r.stderr.trim().split('\n').pop() || `exit ${r.code}` };
  if (!r.stdout.trim()) return { error: 'printed nothing' };
  try {
    return { json: JSON.parse(r.stdout) };
  } catch {
    return { error: 'printed something that is not JSON' };
  }
}

export async function gatherView(host: Host, o: ViewOptions, gaps: Gaps): Promise<NodeView> {
  const notChecked: string[] = [];
  const confDirs = o.distro?.confDirs ?? [CNI_CONF_DIR];
  const configs = await readConfigs(host, o.allProfiles, confDirs);
  const parsed = await resolveMultus(
    host,
    configs.flatMap((c) => (c.config ? [c.config] : [])),
    confDirs,
  );

  let env: SubnetEnv | null = null;
  let envError: string | undefined;
  // The subnet.env a profile reads (Flannel's, which Canal shares).
  const subnetEnvPath = o.allProfiles.find((p) => p.state.subnetEnv)?.state.subnetEnv ?? '';
  const envText = subnetEnvPath ? await host.readFile(subnetEnvPath) : null;
  if (envText !== null) {
    try {
      env = parseSubnetEnv(envText);
    } catch (err) {
      envError = (err as Error).message;
    }
  }

  // Every known CNI, not only the diagnosed ones: a fix may have to remove another one whole.
  const facts = new Map<string, ProfileFacts>();
  const statePaths = new Map<string, string[]>();
  const results = ((await host.readDir(RESULTS_DIR)) ?? []).map((e) => e.name);
  for (const p of o.allProfiles) {
    const extra: string[] = [];
    for (const f of p.config.extraFiles)
      for (const dir of confDirs) if ((await host.entryType(`${dir}/${f}`)) !== null) extra.push(`${dir}/${f}`);
    const f = profileFacts(p, parsed, env, o.podCidrs, extra);
    f.wrappers = staleWrappers(f, parsed);
    f.confSubdirs = [];
    for (const d of p.config.confSubdirs)
      for (const dir of confDirs) if ((await host.entryType(`${dir}/${d}`)) === 'dir') f.confSubdirs.push(`${dir}/${d}`);
    facts.set(p.name, f);
    const present: string[] = [];
    for (const c of stateCandidates(p, networksOf(f), results))
      if (!present.includes(c) && (await host.entryType(c)) !== null) present.push(c);
    statePaths.set(p.name, present);
  }

  // The runtime's bin dir: the distribution's first (k3s: <data-dir>/data/current/bin, its multi-call
  // `cni` binary with a symlink per plugin name), kubeadm's /opt/cni/bin.
  const cniBinDir = o.distro?.binDirs[0] ?? CNI_BIN_DIR;
  const bins = await host.readDir(cniBinDir);
  // libcni finds a plugin with stat(), which follows symlinks: a link counts when it leads to a file
  // (resolved under the root); a dangling one (k3s's `cni` gone) does not.
  let cniBins: Set<string> | null = null;
  if (bins) {
    cniBins = new Set();
    for (const e of bins) {
      if (e.type === 'dir') continue;
      if (e.type === 'symlink' && o.distro) {
        const target = await resolveNodePath(host, `${cniBinDir}/${e.name}`);
        const t = target === null ? null : await host.entryType(target);
        if (t === null || t === 'dir') continue;
      }
      cniBins.add(e.name);
    }
  }

  const links = await listLinks(host, gaps);
  const addrs = new Map<string, InterfaceAddr[]>();
  const ar = await host.query(['ip', '-j', '-d', 'addr', 'show']);
  if (ar?.code === 0) for (const l of parseAddrs(ar.stdout)) addrs.set(l.ifname, l.addr_info);
  else gaps.add('ip -j -d addr show', ar ? ar.stderr.trim() || `exit ${ar.code}` : 'not installed');
  const routes = await listRoutes(host, gaps);

  const iptables: NodeView['iptables'] = [];
  for (const { backend, dump } of await saveAllIptables(host, gaps)) if (dump) iptables.push({ backend, dump });
  const nftTables = (await listNftTables(host, gaps)) ?? [];
  // Only CNIs with ipsets (Calico) make them worth listing.
  const ipsets = o.allProfiles.some((p) => p.firewall.ipsetPrefixes.length) ? await listIpsets(host, gaps) : null;

  const ipam = await readIpam(host);
  const runtime: NodeView['runtime'] = { sandboxes: null, pods: null };
  // The distribution's runtime (k3s's containerd has a socket of its own), as a run asks it.
  const ready = await readySandboxes(host, (...args) => crictl(o.distro, host.root, ...args));
  if ('sandboxes' in ready) {
    runtime.pods = [];
    for (const s of ready.sandboxes.filter((x) => !x.hostNetwork)) {
      const r = s.netns ? await host.query(['nsenter', `--net=${s.netns}`, 'ip', '-j', '-d', 'link', 'show']) : null;
      const interfaces = r?.code === 0 ? parseLinks(r.stdout).map((l) => l.ifname) : null;
      runtime.pods.push({ id: s.id, name: s.name, namespace: s.namespace, ips: s.ips, netns: s.netns, interfaces });
    }
  }
  // Only worth asking when there are allocations to compare with.
  if (ipam.some((n) => n.allocations.length)) {
    // crictl answering is authoritative, whichever unit runs the runtime (k3s and rke2 embed containerd).
    const cr = await host.query(crictl(o.distro, host.root, 'pods', '-q'));
    if (cr?.code === 0)
      runtime.sandboxes = cr.stdout
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
    else {
      const sc = (await host.has('systemctl')) ? await host.query(['systemctl', 'is-active', ...RUNTIMES]) : null;
      const states = sc?.stdout.split('\n').map((s) => s.trim()) ?? [];
      const why = cr ? `crictl pods -q failed: ${cr.stderr.trim().split('\n').pop() || `exit ${cr.code}`}` : 'crictl is not installed';
      if (sc && !RUNTIMES.some((_, i) => states[i] === 'active'))
        runtime.down = `no container runtime is running (${RUNTIMES.map((u, i) => `${u} ${states[i] || 'unknown'}`).join(', ')})`;
      // As root, a runtime that does not answer runs no pod; without root crictl may just lack access to its socket.
      else if (cr && host.isRoot()) runtime.down = why;
      else notChecked.push(`IPAM allocations against running pods: ${why}`);
    }
  }

  const kube: NodeView['kube'] = { nodePodCidrs: null, networkPolicies: null };
  if (o.kubeconfig) {
    const base = ['kubectl', '--kubeconfig', o.kubeconfig];
    const node = await kubectlJson(host, [...base, 'get', 'node', o.node, '-o', 'json']);
    const parsedNode = 'json' in node ? KubeNode.safeParse(node.json) : null;
    if (parsedNode?.success) {
      const spec = parsedNode.data.spec;
      const cidrs = spec?.podCIDRs?.length ? spec.podCIDRs : spec?.podCIDR ? [spec.podCIDR] : [];
      kube.nodePodCidrs = cidrs
        .map((c) => parsePrefix(c))
        .filter((p): p is Prefix => p !== null)
        .map(networkOf);
    } else notChecked.push(`Node ${o.node}'s pod CIDR: kubectl get node: ${'error' in node ? node.error : 'not a Node object'}`);
    const np = await kubectlJson(host, [...base, 'get', 'networkpolicies', '-A', '-o', 'json']);
    const list = 'json' in np ? KubeList.safeParse(np.json) : null;
    if (list?.success)
      kube.networkPolicies = list.data.items.map((i) => ({ namespace: i.metadata.namespace ?? '', name: i.metadata.name }));
    else notChecked.push(`NetworkPolicy objects: kubectl get networkpolicies: ${'error' in np ? np.error : 'not a list'}`);
  } else
    notChecked.push(
      "the Kubernetes API (the Node's pod CIDR, NetworkPolicy objects): no kubeconfig (--kubeconfig, $KUBECONFIG or /etc/kubernetes/admin.conf)",
    );
  // The MTU checks measure against the default route's device: without one there is nothing to fit in.
  if (!routes.some((r) => r.dst === 'default' && r.dev))
    notChecked.push('MTU: no default route, so no uplink whose MTU the overlay and the pods must fit in');

  // A CNI whose agent runs (or that a distribution runs inside itself, as k3s its Flannel and
  // netpol) is in use whatever the configs say: its chains and devices are no leftovers.
  const procs = await host.processes().catch(() => []);
  const embedded = o.distro ? embeddedLive(o.distro, procs) : new Map<string, unknown>();
  const live = liveProfiles(o.allProfiles, procs, embedded).map((p) => p.name);
  const used = inUse(configs, o.allProfiles, live, confDirs[0]);
  const planned = await plannedLeftovers(host, gaps, { ...o, inUse: used, facts, configs: parsed });
  for (const found of planned.values()) notChecked.push(...found.notChecked);

  for (const g of gaps.items) notChecked.push(g);
  return {
    root: host.root,
    node: o.node,
    kubeconfig: o.kubeconfig,
    podCidrs: o.podCidrs,
    profileFiles: o.profileFiles ?? [],
    profiles: o.profiles,
    allProfiles: o.allProfiles,
    configs,
    confDir: confDirs[0]!,
    inUse: used,
    facts,
    statePaths,
    cniBins,
    cniBinDir,
    subnetEnv: { path: subnetEnvPath, env, error: envError },
    links,
    addrs,
    routes,
    iptables,
    nftTables,
    ipsets,
    ipam,
    runtime,
    kube,
    notChecked,
    multus: await gatherMultus(host, configs, o),
    planned,
  };
}
