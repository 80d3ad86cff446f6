// Read-only views of the node. The snapshot is taken once, before anything changes, because
// later phases need facts (network names, pod CIDRs) that earlier phases remove.
import path from 'node:path';
import type { ExecResult, Host } from './host/host.js';
import { CNI_CONF_EXTENSIONS, parseCniConfig, type CniConfig } from './parse/conflist.js';
import { parseIptablesSave, type IptDump } from './parse/iptables.js';
import { parseLinks, parseRoutes, type Link, type Route } from './parse/iproute.js';
import { parseNftTables, type NftTable } from './parse/nft.js';
import { parseSubnetEnv, type SubnetEnv } from './parse/subnetenv.js';
import { networkOf, parsePrefix, type Prefix } from './util/cidr.js';
import { Gaps } from './util/gaps.js';
import type { Profile } from './profiles/schema.js';
import { UsageError } from './errors.js';

export const CNI_CONF_DIR = '/etc/cni/net.d';
export const NETNS_DIR = '/run/netns';
export const RESULTS_DIR = '/var/lib/cni/results';

// Gaps lives in util/ so that the host layer (tolerant reads) can record into it too.
export { Gaps };

/** The files libcni would load from the conf dir, with their text, in its (lexical) order. */
export async function readCniConfigFiles(host: Host): Promise<Array<{ file: string; text: string }>> {
  const out: Array<{ file: string; text: string }> = [];
  for (const e of (await host.readDir(CNI_CONF_DIR)) ?? []) {
    if (e.type === 'dir' || !CNI_CONF_EXTENSIONS.some((x) => e.name.endsWith(x))) continue;
    const file = `${CNI_CONF_DIR}/${e.name}`;
    const text = await host.readFile(file);
    if (text !== null) out.push({ file, text }); // null: a dangling symlink, which libcni skips too
  }
  return out; // readDir is sorted: this is the order the runtime considers them in
}

export async function readCniConfigs(host: Host): Promise<CniConfig[]> {
  return (await readCniConfigFiles(host)).map(({ file, text }) => {
    try {
      return parseCniConfig(file, text);
    } catch (err) {
      throw new UsageError(
        (err as Error).message,
        'cni-sweep will not guess who owns a config it cannot parse: fix or move it, then run again',
      );
    }
  });
}

/** A config is a profile's when one of its plugins has the profile's type (and IPAM type, where the profile names one). */
export function ownsConfig(profile: Profile, c: CniConfig): boolean {
  const { pluginTypes, ipamTypes } = profile.config;
  return c.plugins.some((p) => pluginTypes.includes(p.type) && (!ipamTypes || (p.ipam !== undefined && ipamTypes.includes(p.ipam))));
}

export interface ProfileFacts {
  profile: Profile;
  configs: CniConfig[];
  extraFiles: string[];
  networks: string[];
  bridges: string[];
  /** Pod networks (from subnet.env, or --pod-cidr). */
  podNetworks: Prefix[];
  /** This node's pod subnets (network form, e.g. 10.244.1.0/24). */
  nodeSubnets: Prefix[];
}

export interface Snapshot {
  configs: CniConfig[];
  facts: ProfileFacts[];
  /** CNI configs that stay after the run (not owned by a selected CNI). */
  remainingConfigs: CniConfig[];
}

/** What a profile owns on this node, from its configs and (Flannel) subnet.env. Shared by run and doctor. */
export function profileFacts(
  profile: Profile,
  configs: CniConfig[],
  env: SubnetEnv | null,
  podCidrs: Prefix[],
  extraFiles: string[],
): ProfileFacts {
  const mine = configs.filter((c) => ownsConfig(profile, c));
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
    extraFiles,
    networks: [...new Set(mine.map((c) => c.name))],
    bridges: [...new Set(mine.flatMap((c) => c.bridges))],
    podNetworks,
    nodeSubnets,
  };
}

export async function takeSnapshot(host: Host, profiles: Profile[], podCidrs: Prefix[], gaps: Gaps): Promise<Snapshot> {
  let configs: CniConfig[] = [];
  gaps.saw(CNI_CONF_DIR);
  try {
    configs = await readCniConfigs(host);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    gaps.add(CNI_CONF_DIR, err);
  }
  const facts: ProfileFacts[] = [];
  for (const profile of profiles) {
    const extraFiles: string[] = [];
    for (const f of profile.config.extraFiles) {
      const p = `${CNI_CONF_DIR}/${f}`;
      if ((await host.entryType(p).catch(() => null)) !== null) extraFiles.push(p);
    }
    let env: SubnetEnv | null = null;
    if (profile.state.subnetEnv) {
      try {
        const text = await host.readFile(profile.state.subnetEnv);
        if (text !== null) {
          gaps.saw(profile.state.subnetEnv);
          env = parseSubnetEnv(text);
        }
      } catch (err) {
        gaps.add(profile.state.subnetEnv, err);
      }
    }
    facts.push(profileFacts(profile, configs, env, podCidrs, extraFiles));
  }
  const owned = new Set(facts.flatMap((f) => f.configs.map((c) => c.file)));
  return { configs, facts, remainingConfigs: configs.filter((c) => !owned.has(c.file)) };
}

/** Networks a profile's per-network state and firewall comments are named after; "cbr0" when Flannel's config is already gone. */
export function networksOf(f: ProfileFacts): string[] {
  if (f.networks.length) return f.networks;
  return f.profile.defaultNetworks;
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

export async function listLinks(host: Host, gaps: Gaps): Promise<Link[]> {
  gaps.saw('ip link');
  const r = await host.query(['ip', '-j', '-d', 'link', 'show']);
  if (!r) {
    gaps.add('ip', 'not installed');
    return [];
  }
  if (r.code !== 0) {
    gaps.add('ip -j -d link show', r.stderr.trim() || `exit ${r.code}`);
    return [];
  }
  return parsedOnce(r, parseLinks);
}

export async function listRoutes(host: Host, gaps: Gaps): Promise<Array<Route & { family: 4 | 6 }>> {
  const out: Array<Route & { family: 4 | 6 }> = [];
  gaps.saw('ip route');
  const argvs = ([4, 6] as const).map((family) => ['ip', '-j', `-${family}`, 'route', 'show', 'table', 'main']);
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
 * Which of these nftables tables exist. One `nft list table` each: listing all tables makes nft
 * fetch the whole ruleset, which costs a quarter of a second on a node with thousands of rules.
 * Null when nft is not installed.
 */
export async function nftTablesPresent(host: Host, wanted: NftTable[], gaps: Gaps): Promise<NftTable[] | null> {
  if (wanted.length) gaps.saw('nft');
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

export async function listNftTables(host: Host, gaps: Gaps): Promise<NftTable[] | null> {
  gaps.saw('nft');
  const r = await host.query(['nft', '-j', 'list', 'tables']);
  if (!r) return null;
  if (r.code !== 0) {
    gaps.add('nft -j list tables', r.stderr.trim() || `exit ${r.code}`);
    return null;
  }
  return parseNftTables(r.stdout);
}

/**
 * A check of whether every directory above a node path (below the root) is free of symlinks.
 * Directories are looked at once per checker: hundreds of result caches share one parent.
 */
export function containment(host: Host): (nodePath: string) => Promise<boolean> {
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
