// Read-only views of the node. The snapshot is taken once, before anything changes, because
// later phases need facts (network names, pod CIDRs) that earlier phases remove.
import path from 'node:path';
import { startReading, type ExecResult, type Host } from './host/host.js';
import { CNI_CONF_EXTENSIONS, parseCniConfig, type CniConfig } from './parse/conflist.js';
import { parseIptablesSave, type IptDump } from './parse/iptables.js';
import { defaultHops, parseAddrs, parseLinks, parseRoutes, type Link, type LinkAddrs, type Route } from './parse/iproute.js';
import { parseNftTables, parseTableHeaders, type NftTable } from './parse/nft.js';
import { parseSubnetEnv, type SubnetEnv } from './parse/subnetenv.js';
import { contains, networkOf, parsePrefix, type Prefix } from './util/cidr.js';
import { Gaps } from './util/gaps.js';
import type { Profile } from './profiles/schema.js';
import { UsageError } from './errors.js';
import type { NodeDistro } from './distros/node.js';
import { delegateVia, resolveMultus } from './multus.js';
import { knownProfiles } from './profiles/index.js';

export const CNI_CONF_DIR = '/etc/cni/net.d';
export const NETNS_DIR = '/run/netns';
export const RESULTS_DIR = '/var/lib/cni/results';

// Gaps lives in util/ so that the host layer (tolerant reads) can record into it too.
export { Gaps };

/** The files libcni would load from the conf dir, with their text, in its (lexical) order. */
export async function readCniConfigFiles(host: Host, dirs: string[] = [CNI_CONF_DIR]): Promise<Array<{ file: string; text: string }>> {
  const out: Array<{ file: string; text: string }> = [];
  // Several dirs on some distributions (k3s: its own, then /etc/cni/net.d): the runtime's comes first.
  for (const dir of dirs) {
    for (const e of (await host.readDir(dir)) ?? []) {
      if (e.type === 'dir' || !CNI_CONF_EXTENSIONS.some((x) => e.name.endsWith(x))) continue;
      const file = `${dir}/${e.name}`;
      const text = await host.readFile(file).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOTREG') throw err;
        throw new UsageError((err as Error).message, 'the runtime cannot load it either: move it out of the conf dir, then run again');
      });
      if (text !== null) out.push({ file, text }); // null: a dangling symlink, which libcni skips too
    }
  }
  return out; // readDir is sorted: this is the order the runtime considers them in
}

export async function readCniConfigs(host: Host, dirs: string[] = [CNI_CONF_DIR]): Promise<CniConfig[]> {
  const configs = (await readCniConfigFiles(host, dirs)).map(({ file, text }) => {
    try {
      return parseCniConfig(file, text);
    } catch (err) {
      throw new UsageError(
        (err as Error).message,
        'cni-sweep will not guess who owns a config it cannot parse: fix or move it, then run again',
      );
    }
  });
  return resolveMultus(host, configs, dirs);
}

/**
 * A config is a profile's when one of its plugins has the profile's type (and IPAM type, where the
 * profile names one), and, for a type the profile qualifies (kube-router's generic `bridge`), the
 * config's network and the plugin's bridge are the ones the CNI writes: podman's bridge config is not.
 */
export function ownsConfig(profile: Profile, c: CniConfig): boolean {
  const { pluginTypes, ipamTypes, pluginQualifiers } = profile.config;
  return c.plugins.some((p) => {
    if (!pluginTypes.includes(p.type) || (ipamTypes && (p.ipam === undefined || !ipamTypes.includes(p.ipam)))) return false;
    const q = pluginQualifiers[p.type];
    if (!q) return true;
    return (!q.networks || q.networks.includes(c.name)) && (!q.bridges || (p.bridge !== undefined && q.bridges.includes(p.bridge)));
  });
}

export interface ProfileFacts {
  profile: Profile;
  configs: CniConfig[];
  /** The CNI's configs with a name that fails validation: kept, and nothing is derived from them. */
  untrusted?: CniConfig[];
  extraFiles: string[];
  networks: string[];
  bridges: string[];
  /** Pod networks (from subnet.env, or --pod-cidr). */
  podNetworks: Prefix[];
  /** This node's pod subnets (network form, e.g. 10.244.1.0/24). */
  nodeSubnets: Prefix[];
  /** Devices that stay whatever a config says (the uplink, foreign addresses), and why: read by takeSnapshot. */
  keptDevices?: Map<string, string>;
  /** The profile's directories in the conf dir that exist (multus.d/): read by takeSnapshot. */
  confSubdirs?: string[];
  /** Multus configs whose cluster network is this CNI's: they go with it, and why. Read by takeSnapshot. */
  wrappers?: Array<{ config: CniConfig; why: string }>;
  /**
   * Configs of this CNI that another CNI this run keeps owns too (a chained conflist: flannel then
   * cilium-cni): kept, with their networks' state, and the CNIs they are shared with. Read by takeSnapshot.
   */
  shared?: Array<{ config: CniConfig; with: string[] }>;
  /**
   * Network names a config that stays uses too (a site's bridge config named cbr0, a chained
   * conflist kept with its other CNI): their IPAM allocations, result caches and firewall comments
   * are that config's as much, and stay. Read by takeSnapshot; networksOf leaves them out.
   */
  keptNetworks?: Map<string, string>;
}

export interface Snapshot {
  configs: CniConfig[];
  facts: ProfileFacts[];
  /** CNI configs that stay after the run (not owned by a selected CNI). */
  remainingConfigs: CniConfig[];
  /** The distribution and its layout on this node; absent: kubeadm's (/etc/cni/net.d ...). */
  distro?: NodeDistro;
  /** Configs another CNI set aside (*.cilium_bak) that this run puts back, removes or keeps. */
  renamed?: RenamedConfig[];
}

/** What a profile owns on this node, from its configs and (Flannel) subnet.env. Shared by run and doctor. */
export function profileFacts(
  profile: Profile,
  configs: CniConfig[],
  env: SubnetEnv | null,
  podCidrs: Prefix[],
  extraFiles: string[],
): ProfileFacts {
  const all = configs.filter((c) => ownsConfig(profile, c));
  const mine = all.filter((c) => !c.untrusted);
  const podNetworks: Prefix[] = [...podCidrs];
  const nodeSubnets: Prefix[] = [];
  if (profile.state.subnetEnv && env) {
    for (const n of [...env.networks, ...env.ipv6Networks]) {
      const p = parsePrefix(n);
      if (p && !podNetworks.some((q) => q.text === networkOf(p).text)) podNetworks.push(networkOf(p));
    }
    for (const s of [env.subnet, env.ipv6Subnet]) {
      const p = s ? parsePrefix(s) : null;
      if (p) nodeSubnets.push(networkOf(p));
    }
  }
  return {
    profile,
    configs: mine,
    untrusted: all.filter((c) => c.untrusted),
    extraFiles,
    networks: [...new Set(mine.map((c) => c.name))],
    bridges: [...new Set(mine.flatMap((c) => c.bridges))],
    podNetworks,
    nodeSubnets,
  };
}

export async function takeSnapshot(
  host: Host,
  profiles: Profile[],
  podCidrs: Prefix[],
  gaps: Gaps,
  distro?: NodeDistro,
): Promise<Snapshot> {
  let configs: CniConfig[] = [];
  const dirs = distro?.confDirs ?? [CNI_CONF_DIR];
  for (const d of dirs) gaps.saw(d);
  try {
    configs = await readCniConfigs(host, dirs);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    gaps.add(dirs.join(', '), err);
  }
  const facts: ProfileFacts[] = [];
  // A config another CNI owns too stays while that CNI stays: removing a chained conflist (flannel
  // with cilium-cni) with one of them would leave the other, maybe running, without its config.
  const removing = new Set(profiles.map((p) => p.name));
  const keeping = knownProfiles().filter((q) => !removing.has(q.name));
  const sharedWith = (c: CniConfig) => keeping.filter((q) => ownsConfig(q, c)).map((q) => q.name);
  for (const profile of profiles) {
    const extraFiles: string[] = [];
    for (const f of profile.config.extraFiles) {
      for (const dir of dirs) {
        const p = `${dir}/${f}`;
        if ((await host.entryType(p).catch(() => null)) !== null) extraFiles.push(p);
      }
    }
    let env: SubnetEnv | null = null;
    if (profile.state.subnetEnv) {
      // Without it (and without --pod-cidr) the pod network is unknown: say what that leaves.
      const costs = podCidrs.length
        ? 'using --pod-cidr for the pod network'
        : 'host-gw routes into the pod network and untagged legacy iptables rules will not be removed (pass --pod-cidr)';
      try {
        const text = await host.readFile(profile.state.subnetEnv);
        if (text !== null) {
          gaps.saw(profile.state.subnetEnv);
          env = parseSubnetEnv(text);
          if (!env.networks.length && !env.ipv6Networks.length)
            gaps.add(profile.state.subnetEnv, `no FLANNEL_NETWORK or FLANNEL_IPV6_NETWORK; ${costs}`);
        }
      } catch (err) {
        gaps.add(profile.state.subnetEnv, `${err instanceof Error ? err.message.split('\n')[0] : String(err)}; ${costs}`);
      }
    }
    const shared = configs.flatMap((c) => {
      const others = ownsConfig(profile, c) ? sharedWith(c) : [];
      return others.length ? [{ config: c, with: others }] : [];
    });
    const f = profileFacts(
      profile,
      configs.filter((c) => !shared.some((s) => s.config === c)),
      env,
      podCidrs,
      extraFiles,
    );
    if (shared.length) f.shared = shared;
    f.confSubdirs = [];
    for (const d of profile.config.confSubdirs)
      for (const dir of dirs) if ((await host.entryType(`${dir}/${d}`).catch(() => null)) === 'dir') f.confSubdirs.push(`${dir}/${d}`);
    facts.push(f);
  }
  for (const f of facts) f.wrappers = staleWrappers(f, configs);
  // Without ip there are no links to protect, and the phases say that ip is missing.
  if (facts.length && (await host.has('ip'))) {
    const [addrs, routes] = await Promise.all([listAddrs(host, gaps), listRoutes(host, gaps)]);
    for (const f of facts) f.keptDevices = protectedDevices(addrs, routes, f);
  }
  const owned = new Set(facts.flatMap((f) => [...f.configs, ...(f.wrappers ?? []).map((w) => w.config)].map((c) => c.file)));
  const removedFiles = new Set([...owned, ...facts.flatMap((f) => f.extraFiles)]);
  let renamed: RenamedConfig[] = [];
  try {
    if (facts.length) renamed = await renamedConfigs(host, dirs, facts, knownProfiles(), removedFiles, configs);
  } catch (err) {
    gaps.add(`set-aside configs in ${dirs.join(', ')}`, err);
  }
  // A config put back is one the runtime loads after the run, in its place in lexical order.
  const back = renamed.flatMap((r) => (r.action === 'restore' && r.config ? [r.config] : []));
  const remainingConfigs = [...configs.filter((c) => !owned.has(c.file)), ...back].sort((a, b) => runtimeOrder(dirs)(a.file, b.file));
  keepWhatStays(facts, remainingConfigs);
  return { configs, facts, remainingConfigs, ...(distro ? { distro } : {}), ...(renamed.length ? { renamed } : {}) };
}

/** A config and, for Multus's, the delegates it hands every pod to. */
export const withDelegates = (c: CniConfig): CniConfig[] => [
  c,
  ...(c.multus?.delegate ? [c.multus.delegate] : []),
  ...(c.multus?.also ?? []),
];

/**
 * What a config that stays names is not the removed CNI's to take, whoever's it was first: its
 * network's state (a site's bridge config also named cbr0) and its bridge with the pods on it
 * (containerd's stock 10-containerd-net.conflist also uses cni0).
 */
function keepWhatStays(facts: ProfileFacts[], remaining: CniConfig[]): void {
  // An untrusted config (a name that fails validation) is handled as such: nothing is derived from it.
  for (const c of remaining.flatMap(withDelegates)) {
    if (c.untrusted) continue;
    for (const f of facts) {
      if (networksOf(f).includes(c.name))
        (f.keptNetworks ??= new Map()).set(c.name, `${c.file}, a config that stays, is network ${JSON.stringify(c.name)} too`);
      for (const b of c.bridges)
        if (!f.keptDevices?.has(b)) (f.keptDevices ??= new Map()).set(b, `the bridge of ${c.file}, a config that stays`);
    }
  }
}

/**
 * Multus configs that hand pods to this CNI (their first delegate, or clusterNetwork, is its
 * config): once the CNI is gone, such a config still sorts first and every new pod fails in Multus
 * (`error waiting for pod: Unauthorized`, `dial unix /run/multus/multus.sock: connect: connection
 * refused`), so it goes with the CNI. One whose delegate is unknown, or another CNI's, stays.
 */
export function staleWrappers(f: ProfileFacts, configs: CniConfig[]): Array<{ config: CniConfig; why: string }> {
  const out: Array<{ config: CniConfig; why: string }> = [];
  for (const c of configs) {
    const d = c.multus?.delegate;
    if (!d || c.untrusted || f.configs.includes(c) || !ownsConfig(f.profile, d)) continue;
    out.push({
      config: c,
      why: `removes ${c.file}: it delegates to ${f.profile.name} (${delegateVia(c)}), which this run removes; left behind, the runtime still loads it first and every new pod fails in Multus`,
    });
  }
  return out;
}

/**
 * Networks a profile's per-network state and firewall comments are named after; "cbr0" when Flannel's
 * config is already gone. Not when only an untrusted config is left: which network it stands for is
 * unknown, and guessing could remove another network's state.
 */
/**
 * Where a profile's state may be, in the order cni-state removes it and the doctor reports it: its
 * own paths, then for each network its per-network paths and libcni's result caches of that
 * network (`results`: the names in RESULTS_DIR). Caches are named <network>-<containerID>-<ifname>;
 * the ID pins the network name, so "cbr0-v2-<id>-eth0" (network cbr0-v2) is not cbr0's.
 */
export function stateCandidates(profile: Profile, networks: string[], results: string[]): string[] {
  const out = [...profile.state.paths];
  for (const net of networks) {
    for (const p of profile.state.networkPaths) out.push(p.replaceAll('{network}', net));
    const cache = new RegExp(`^${net.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-[0-9a-f]{64}-[^/]+$`);
    for (const r of results) if (cache.test(r)) out.push(`${RESULTS_DIR}/${r}`);
  }
  return out;
}

export function networksOf(f: ProfileFacts): string[] {
  const nets = f.networks.length || f.untrusted?.length ? f.networks : f.profile.defaultNetworks;
  return f.keptNetworks?.size ? nets.filter((n) => !f.keptNetworks!.has(n)) : nets;
}

/** The note that says why an untrusted config and what derives from it stay. */
export function untrustedNote(c: CniConfig): string {
  return `kept ${c.file}: ${c.untrusted}; nothing named after it (its IPAM allocations, result caches, bridge, firewall comments) is removed`;
}

/** Whether an address is link-local (169.254/16, fe80::/10): every device may carry one. */
function linkLocal(a: { family: string; local: string }): boolean {
  return a.family === 'inet6' ? /^fe[89ab]/i.test(a.local) : a.local.startsWith('169.254.');
}

/**
 * Devices that stay whatever a config says, read from the node before anything changes: the
 * uplink (a default route goes through it) and devices with an address outside the pod network.
 * The profile's own device names (cni0, flannel.1) are not checked for addresses: they are its by
 * name, and a stale address on them is what the cleanup is for.
 */
export function protectedDevices(
  addrs: LinkAddrs[] | null,
  routes: Array<Route & { family: 4 | 6 }>,
  f: ProfileFacts,
): Map<string, string> {
  const kept = new Map<string, string>();
  for (const { dev } of defaultHops(routes)) if (dev) kept.set(dev, 'it is the uplink: a default route goes through it');
  const names = new Set(f.profile.interfaces.names);
  const patterns = f.profile.interfaces.patterns.map((p) => new RegExp(p));
  if (!addrs) {
    // Unknown addresses: a bridge only a config names may carry the node's own.
    for (const b of bridgesOf(f))
      if (!names.has(b) && !patterns.some((r) => r.test(b)) && !kept.has(b)) kept.set(b, 'its addresses could not be read');
    return kept;
  }
  for (const d of addrs) {
    if (kept.has(d.ifname)) continue;
    // The profile's own devices are its by name: a stale address on cni0 is what the cleanup is for.
    if (names.has(d.ifname) || patterns.some((r) => r.test(d.ifname)) || f.profile.interfaces.kernelOwned.includes(d.ifname)) continue;
    for (const a of d.addr_info) {
      if (linkLocal(a)) continue;
      const p = parsePrefix(`${a.local}/${a.family === 'inet6' ? 128 : 32}`);
      if (p && f.podNetworks.some((net) => contains(net, p))) continue;
      kept.set(
        d.ifname,
        f.podNetworks.length
          ? `it carries ${a.local}, outside the pod network ${f.podNetworks.map((n) => n.text).join(', ')}`
          : `it carries ${a.local} and the pod network is unknown`,
      );
      break;
    }
  }
  return kept;
}

/** Bridges a profile owns: named in its configs, else its default bridge names. */
export function bridgesOf(f: ProfileFacts): string[] {
  return f.bridges.length ? f.bridges : f.profile.interfaces.names.filter((n) => n === 'cni0');
}

/**
 * Parses an answer once: the host hands out the same answer until the node changes, and planning
 * reads the same listings in several phases (a 5000-rule dump takes tens of ms to parse). The
 * parsed values are shared: callers never modify them.
 */
const parsed = new WeakMap<ExecResult, Map<(text: string) => unknown, unknown>>();
function parsedOnce<T>(r: ExecResult, parse: (text: string) => T): T {
  let byParser = parsed.get(r);
  if (!byParser) parsed.set(r, (byParser = new Map<(text: string) => unknown, unknown>()));
  if (!byParser.has(parse)) byParser.set(parse, parse(r.stdout));
  return byParser.get(parse) as T;
}

/**
 * The one listing of links and addresses: `ip -d -j addr show` prints each link with every field
 * `ip -j -d link show` prints for it (iproute2's print_linkinfo serves both; ifindex, ifname,
 * flags, link, link_index, link_netnsid, master, group, operstate, linkinfo, altnames, ifalias
 * alike), plus its addr_info; only linkmode and inet6_addr_gen_mode are link-only, and nothing here
 * reads them. One process instead of two, and the backup saves this answer as node/addrs.json.
 */
export const LINKS_AND_ADDRS = ['ip', '-d', '-j', 'addr', 'show'];

export async function listLinks(host: Host, gaps: Gaps): Promise<Link[]> {
  gaps.saw('ip link');
  const r = await host.query(LINKS_AND_ADDRS);
  if (!r) {
    gaps.add('ip', 'not installed');
    return [];
  }
  if (r.code !== 0) {
    gaps.add(LINKS_AND_ADDRS.join(' '), r.stderr.trim() || `exit ${r.code}`);
    return [];
  }
  return parsedOnce(r, parseLinks);
}

/** Addresses of every link; null when they cannot be read. */
export async function listAddrs(host: Host, gaps: Gaps): Promise<LinkAddrs[] | null> {
  const argv = LINKS_AND_ADDRS;
  const r = await host.query(argv);
  if (!r || r.code !== 0) {
    gaps.add(argv.join(' '), r ? r.stderr.trim() || `exit ${r.code}` : 'not installed');
    return null;
  }
  try {
    return parsedOnce(r, parseAddrs);
  } catch (err) {
    gaps.add(argv.join(' '), err);
    return null;
  }
}

/** The main routing table of each family, as listRoutes reads it. */
export const MAIN_ROUTES = ([4, 6] as const).map((family) => ['ip', '-j', `-${family}`, 'route', 'show', 'table', 'main']);

export async function listRoutes(host: Host, gaps: Gaps): Promise<Array<Route & { family: 4 | 6 }>> {
  const out: Array<Route & { family: 4 | 6 }> = [];
  gaps.saw('ip route');
  const argvs = MAIN_ROUTES;
  const answers = await Promise.all(argvs.map((argv) => host.query(argv)));
  for (const [i, family] of ([4, 6] as const).entries()) {
    const argv = argvs[i]!;
    const r = answers[i];
    if (!r || r.code !== 0) {
      gaps.add(argv.join(' '), r ? r.stderr.trim() || `exit ${r.code}` : 'not installed');
      continue;
    }
    for (const route of parsedOnce(r, parseRoutes)) out.push({ ...route, family });
  }
  return out;
}

export interface Backend {
  id: string;
  family: 4 | 6;
  save: string;
  restore: string;
}

export const BACKENDS: Backend[] = [
  { id: 'iptables-nft', family: 4, save: 'iptables-nft-save', restore: 'iptables-nft-restore' },
  { id: 'iptables-legacy', family: 4, save: 'iptables-legacy-save', restore: 'iptables-legacy-restore' },
  { id: 'ip6tables-nft', family: 6, save: 'ip6tables-nft-save', restore: 'ip6tables-nft-restore' },
  { id: 'ip6tables-legacy', family: 6, save: 'ip6tables-legacy-save', restore: 'ip6tables-legacy-restore' },
];

/** Every iptables backend present: nft and legacy can both hold rules on one node. */
export async function iptablesBackends(host: Host): Promise<Backend[]> {
  const out: Backend[] = [];
  for (const family of [4, 6] as const) {
    const named = [];
    for (const b of BACKENDS.filter((x) => x.family === family)) if (await host.has(b.save)) named.push(b);
    if (named.length) out.push(...named);
    else {
      // Distributions that ship only one variant, under the plain name.
      const base = family === 4 ? 'iptables' : 'ip6tables';
      if (await host.has(`${base}-save`)) out.push({ id: base, family, save: `${base}-save`, restore: `${base}-restore` });
    }
  }
  return out;
}

export async function saveIptables(host: Host, b: Backend, gaps: Gaps): Promise<IptDump | null> {
  gaps.saw(b.save);
  const r = await host.query([b.save]);
  if (!r) return null;
  if (r.code !== 0) {
    gaps.add(b.save, r.stderr.trim() || `exit ${r.code}`);
    return null;
  }
  return parsedOnce(r, parseIptablesSave);
}

/** Every backend's dump, read at the same time. */
export async function saveAllIptables(host: Host, gaps: Gaps): Promise<Array<{ backend: Backend; dump: IptDump | null }>> {
  const backends = await iptablesBackends(host);
  return Promise.all(backends.map(async (backend) => ({ backend, dump: await saveIptables(host, backend, gaps) })));
}

/**
 * The listing that names every nftables table at the cost of the tables alone: `nft list flowtables`
 * prints `table FAMILY NAME {` and `}` for every table of every family, with its flowtables (lines
 * indented by a tab) in between (do_list_flowtables in src/rule.c, the same from nftables 0.9.0
 * to 1.1.6), and nft 1.0.1 and later fetch only tables and flowtables for it (evaluate_cache_list).
 * `nft list tables` fetches the whole ruleset (a quarter of a second at 5000 rules, nft 1.0.6),
 * `nft list sets` every set's elements too (1.1.0 and later), and a `nft list table` per table
 * costs a process per table, present or not. A flowtable dump the kernel refuses is skipped
 * (netlink_list_flowtables): the tables are still listed.
 */
export const NFT_TABLE_LISTING = ['nft', 'list', 'flowtables'];

/**
 * Every nftables table, from NFT_TABLE_LISTING; null when nft is not installed; undefined when
 * the answer cannot be relied on: nft failed, printed a line of another form, or left out a table
 * an iptables-nft save shows (those are nftables tables of the ip and ip6 families). The caller then
 * asks as it did before this listing existed.
 */
async function listedNftTables(host: Host): Promise<NftTable[] | null | undefined> {
  const r = await host.query(NFT_TABLE_LISTING).catch(() => undefined);
  if (r === null) return null;
  if (!r || r.code !== 0) return undefined;
  // Detection, each phase's plan and the re-plans ask again: the listing and the saves (thousands
  // of rules) are parsed once, the saves by the parse planning uses.
  const tables = parsedOnce(r, parseTableHeaders);
  if (!tables) return undefined;
  for (const b of await iptablesBackends(host).catch(() => [])) {
    const save = await host.query([b.save]).catch(() => null);
    if (!save || save.code !== 0) continue;
    let dump: IptDump;
    try {
      dump = parsedOnce(save, parseIptablesSave);
    } catch {
      return undefined;
    }
    if (!/^# Generated by \S+ v\S+ \(nf_tables\)/.test(dump.header ?? '')) continue;
    const family = b.family === 4 ? 'ip' : 'ip6';
    if (dump.tables.some((x) => !tables.some((t) => t.family === family && t.name === x.name))) return undefined;
  }
  return tables;
}

/**
 * Which of these nftables tables exist: one listing of every table (NFT_TABLE_LISTING) when its
 * answer can be relied on, else one `nft list table` each (listing every table with `nft list
 * tables` makes nft fetch the whole ruleset). Only the tables asked about are ever in the answer.
 * Null when nft is not installed.
 */
export async function nftTablesPresent(host: Host, wanted: NftTable[], gaps: Gaps): Promise<NftTable[] | null> {
  if (!wanted.length) return [];
  gaps.saw('nft');
  const listed = await listedNftTables(host);
  if (listed === null) return null;
  if (listed) return wanted.filter((t) => listed.some((x) => x.family === t.family && x.name === t.name));
  const answers = await Promise.all(wanted.map((t) => host.query(['nft', 'list', 'table', t.family, t.name])));
  if (answers.some((r) => !r)) return null;
  const out: NftTable[] = [];
  for (const [i, t] of wanted.entries()) {
    const r = answers[i]!;
    if (r.code === 0) out.push(t);
    else if (!/No such file or directory/.test(r.stderr))
      gaps.add(`nft list table ${t.family} ${t.name}`, r.stderr.trim() || `exit ${r.code}`);
  }
  return out;
}

/** The nftables tables these profiles own, each once (Canal and Flannel share Flannel's). */
export function ownedNftTables(profiles: Profile[]): NftTable[] {
  return profiles.flatMap((p) => p.nftables).filter((t, i, all) => all.findIndex((x) => x.family === t.family && x.name === t.name) === i);
}

/** ipset names; null when ipset is not installed. A failed listing is a gap, and lists nothing. */
export async function listIpsets(host: Host, gaps: Gaps): Promise<string[] | null> {
  const r = await host.query(['ipset', 'list', '-n']);
  if (!r) return null;
  if (r.code !== 0) {
    gaps.add('ipset list -n', r.stderr.trim() || `exit ${r.code}`);
    return [];
  }
  return r.stdout
    .split('\n')
    .map((x) => x.trim())
    .filter(Boolean);
}

/** Every nftables table (NFT_TABLE_LISTING, else `nft -j list tables`); null when nft is not installed. */
export async function listNftTables(host: Host, gaps: Gaps): Promise<NftTable[] | null> {
  gaps.saw('nft');
  const listed = await listedNftTables(host);
  if (listed !== undefined) return listed;
  const r = await host.query(['nft', '-j', 'list', 'tables']);
  if (!r) return null;
  if (r.code !== 0) {
    gaps.add('nft -j list tables', r.stderr.trim() || `exit ${r.code}`);
    return null;
  }
  return parseNftTables(r.stdout);
}

/**
 * Starts the kernel listings that detection and the snapshot read, without waiting for them
 * (resolves once they are started): they run while the distribution is detected (systemd first),
 * instead of after it. Same argv as the readers above, so the host hands them these answers; the
 * parsing stays theirs.
 */
export async function startListings(host: Host, profiles: Profile[], more: string[][] = []): Promise<void> {
  startReading(host, firstListings(await iptablesBackends(host).catch(() => []), profiles, more));
}

/**
 * What startListings reads on a node with the nftables backend (the iptables of every current
 * distribution), for the loader to start before it compiles the bundle (host/early.ts): fixed at
 * build time, from the built-in profiles and distributions. The legacy saves are left to the
 * host, which answers them without a process where the kernel has no legacy tables.
 */
export function earlyReads(profiles: Profile[], more: string[][]): string[][] {
  return firstListings(
    BACKENDS.filter((b) => b.id.endsWith('-nft')),
    profiles,
    more,
  );
}

function firstListings(backends: Backend[], profiles: Profile[], more: string[][]): string[][] {
  // The slowest first (iptables-nft-save of thousands of rules takes several times as long as any
  // ip listing): detection waits for them all.
  return [
    ...backends.map((b) => [b.save]),
    LINKS_AND_ADDRS,
    ...MAIN_ROUTES,
    ...(ownedNftTables(profiles).length ? [NFT_TABLE_LISTING] : []),
    ...more,
  ];
}

/**
 * A check of whether every directory above a node path (below the root) is free of symlinks.
 * Directories are looked at once per checker: hundreds of result caches share one parent.
 */
export function containment(host: Pick<Host, 'entryType'>): (nodePath: string) => Promise<boolean> {
  const dirs = new Map<string, Promise<boolean>>();
  const dirOk = (dir: string): Promise<boolean> => {
    if (dir === '/') return Promise.resolve(true);
    let ok = dirs.get(dir);
    if (!ok) {
      ok = dirOk(path.posix.dirname(dir)).then(async (above) => above && (await host.entryType(dir)) !== 'symlink');
      dirs.set(dir, ok);
    }
    return ok;
  };
  return (nodePath) => dirOk('/' + nodePath.split('/').filter(Boolean).slice(0, -1).join('/'));
}

/** The order the runtime loads config files in: its conf dirs in turn, each one's files by bytes (as libcni sorts). */
const runtimeOrder =
  (dirs: string[]) =>
  (a: string, b: string): number =>
    dirs.indexOf(path.posix.dirname(a)) - dirs.indexOf(path.posix.dirname(b)) || Buffer.compare(Buffer.from(a), Buffer.from(b));

// CNI configs another CNI set aside by renaming them (Cilium with cni.exclusive renames every other
// .conf/.conflist/.json in the conf dir to <name>.cilium_bak). Removing the CNI that renamed them puts
// them back, as its own cleanup does; a set-aside config of a CNI being removed goes with that CNI.

export interface RenamedConfig {
  /** The set-aside file (node path). */
  file: string;
  /** Its name before the CNI renamed it (node path). */
  original: string;
  /** The CNI whose suffix it carries. */
  renamer: string;
  /** restore: renamed back to `original`; remove: it is a removed CNI's config; keep: stays where it is. */
  action: 'restore' | 'remove' | 'keep';
  why: string;
  /** The config as it reads, under its original name. */
  config?: CniConfig;
}

/** Who a config belongs to, for a note: a known CNI, else its network and plugins. */
function whose(c: CniConfig, known: Profile[]): string {
  const owner = known.find((p) => ownsConfig(p, c));
  return owner ? `${owner.name}'s config` : `the config of network ${JSON.stringify(c.name)} (plugins ${c.types.join(', ')})`;
}

/**
 * The set-aside configs in the conf dirs and what a run that removes these CNIs does with each.
 * Only names the renamer could have made count: a CNI config name plus its suffix. `removedFiles`
 * are the configs this run removes: a name they free is free to put a config back under.
 * `configs` are the conf dirs' configs, in the runtime's order.
 */
export async function renamedConfigs(
  host: Host,
  dirs: string[],
  facts: ProfileFacts[],
  known: Profile[],
  removedFiles: Set<string>,
  configs: CniConfig[] = [],
): Promise<RenamedConfig[]> {
  const renamers = new Map<string, string>();
  for (const p of [...known, ...facts.map((f) => f.profile)]) for (const s of p.config.renamedSuffixes) renamers.set(s, p.name);
  if (!renamers.size) return [];
  const removing = facts.map((f) => f.profile.name);
  /** What the run does with one set-aside file, and why; undefined: it is none of this run's business. */
  const decide = async (
    file: string,
    original: string,
    renamer: string,
  ): Promise<Pick<RenamedConfig, 'action' | 'why' | 'config'> | undefined> => {
    const renamerGoes = removing.includes(renamer);
    let config: CniConfig;
    try {
      config = parseCniConfig(original, (await host.readFile(file)) ?? '');
    } catch (err) {
      if (!renamerGoes) return undefined;
      return { action: 'keep', why: `${(err as Error).message}: whose config it is cannot be told, so it stays` };
    }
    const owner = facts.find((f) => ownsConfig(f.profile, config));
    if (owner && config.untrusted)
      return { action: 'keep', config, why: `${config.untrusted}; it stays, as such a config of ${owner.profile.name} does` };
    if (owner)
      return {
        action: 'remove',
        config,
        why: `${owner.profile.name}'s config, which ${renamer} set aside: it goes with ${owner.profile.name}`,
      };
    if (!renamerGoes) return undefined;
    if ((await host.entryType(original)) !== null && !removedFiles.has(original))
      return {
        action: 'keep',
        config,
        why: `${whose(config, known)}, which ${renamer} set aside; ${path.posix.basename(original)} exists again, so it is not put back over it: compare the two and keep one`,
      };
    const back = { ...config, file: original };
    // A Multus config hands every pod to its delegates: put back in front of a removed one, every
    // new pod would fail in Multus. (Set aside, the runtime does not read it.)
    if (back.multus) await resolveMultus(host, [back, ...configs], dirs);
    const delegates = back.multus ? [back.multus.delegate, ...(back.multus.also ?? [])].filter((d) => d !== undefined) : [];
    const gone = delegates.map((d) => facts.find((f) => ownsConfig(f.profile, d))).find((f) => f !== undefined);
    if (gone)
      return {
        action: 'keep',
        config,
        why: `${whose(config, known)}, which ${renamer} set aside, hands pods to ${gone.profile.name} (${delegateVia(back)}), which this run removes: put back, every new pod would fail in Multus, so it stays set aside`,
      };
    if (back.multus?.delegateError)
      return {
        action: 'keep',
        config,
        why: `${whose(config, known)}, which ${renamer} set aside; which network it hands pods to cannot be told (${back.multus.delegateError}), so it stays set aside`,
      };
    // The runtime loads the first config in lexical order: one put back in front of a pod network's
    // config that stays (the new CNI's, installed since) would take its place for every new pod.
    const first = configs.find((c) => !removedFiles.has(c.file));
    if (first && runtimeOrder(dirs)(original, first.file) < 0 && known.some((p) => ownsConfig(p, first)))
      return {
        action: 'keep',
        config,
        why: `${whose(config, known)}, which ${renamer} set aside; put back as ${path.posix.basename(original)}, it would sort before ${first.file} (${whose(first, known)}), which stays, and the runtime would load it instead: it stays set aside (rename it back by hand if that is the network you want)`,
      };
    return {
      action: 'restore',
      config: back,
      why: `${whose(config, known)}, which ${renamer} set aside when it took over the node: put back under its name, as ${renamer}'s own cleanup does`,
    };
  };
  const out: RenamedConfig[] = [];
  for (const dir of dirs) {
    for (const e of (await host.readDir(dir)) ?? []) {
      if (e.type !== 'file') continue;
      const suffix = [...renamers.keys()].find((s) => e.name.endsWith(s) && e.name.length > s.length);
      if (suffix === undefined) continue;
      const name = e.name.slice(0, -suffix.length);
      if (!CNI_CONF_EXTENSIONS.some((x) => name.endsWith(x))) continue;
      const renamer = renamers.get(suffix)!;
      const file = `${dir}/${e.name}`;
      const original = `${dir}/${name}`;
      const choice = await decide(file, original, renamer);
      if (choice) out.push({ file, original, renamer, ...choice });
    }
  }
  return out;
}
