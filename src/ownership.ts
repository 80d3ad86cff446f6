// Pure decisions about what a CNI owns, given what the node shows. Shared by the phases and doctor.
import type { ProfileFacts } from './inspect.js';
import { bridgesOf, networksOf } from './inspect.js';
import type { IptDump, IptRule } from './parse/iptables.js';
import { tokenize } from './parse/iptables.js';
import type { Link, Route } from './parse/iproute.js';
import type { CniConfig } from './parse/conflist.js';
import { contains, routeDst, type Prefix } from './util/cidr.js';

export interface OwnedLink {
  name: string;
  /** Why it is the CNI's: "name", "pattern", "bridge port of cni0", "kernel-owned". */
  why: string;
  isPort: boolean;
  /** Cannot be deleted (tunl0): flushed and set down instead. */
  kernelOwned: boolean;
  up: boolean;
  /** `ip -d` link kind (veth, bridge, vxlan ...), when the kernel reports one. */
  kind?: string;
}

export function ownedLinks(links: Link[], facts: ProfileFacts[]): OwnedLink[] {
  const out: OwnedLink[] = [];
  for (const f of facts) {
    const names = new Set(f.profile.interfaces.names);
    const patterns = f.profile.interfaces.patterns.map((p) => new RegExp(p));
    // Ports of every bridge the CNI owns: the one its config names, and any of its named links that is a bridge.
    const bridges = new Set(bridgesOf(f));
    for (const l of links)
      if (l.linkinfo?.info_kind === 'bridge' && (names.has(l.ifname) || patterns.some((r) => r.test(l.ifname)))) bridges.add(l.ifname);
    const kernel = new Set(f.profile.interfaces.kernelOwned);
    for (const l of links) {
      if (out.some((o) => o.name === l.ifname)) continue;
      const base = { isPort: false, kernelOwned: false, up: (l.flags ?? []).includes('UP'), kind: l.linkinfo?.info_kind };
      if (kernel.has(l.ifname)) out.push({ ...base, name: l.ifname, why: 'kernel-owned', kernelOwned: true });
      else if (names.has(l.ifname) || bridges.has(l.ifname)) out.push({ ...base, name: l.ifname, why: 'name' });
      else if (patterns.some((r) => r.test(l.ifname))) out.push({ ...base, name: l.ifname, why: 'pattern' });
      else if (f.profile.interfaces.bridgePorts && l.master && bridges.has(l.master) && l.linkinfo?.info_kind === 'veth') {
        out.push({ ...base, name: l.ifname, why: `bridge port of ${l.master}`, isPort: true });
      }
    }
  }
  return out;
}

export type FamilyRoute = Route & { family: 4 | 6 };

/**
 * Routes the CNI owns that do not go away with its devices: host-gw routes into the pod network
 * through the uplink, and routes tagged with the CNI's routing protocol. Routes through devices
 * in `dyingDevices` are left out, because deleting the device takes them along.
 */
export function ownedRoutes(
  routes: FamilyRoute[],
  facts: ProfileFacts[],
  ownedDevices: Set<string>,
  dyingDevices: Set<string>,
): FamilyRoute[] {
  return routes.filter((r) => {
    if (r.dev && dyingDevices.has(r.dev)) return false;
    // Connected routes (proto kernel) belong to the device's address and go with it.
    if (r.dev && ownedDevices.has(r.dev)) return r.protocol !== 'kernel';
    for (const f of facts) {
      // Calico's BIRD (proto bird) and felix (proto 80) routes, blackholes for its IPAM blocks included.
      if (r.protocol && f.profile.routes.protocols.includes(r.protocol)) return true;
      if (!f.profile.routes.podNetworkRoutes || r.dst === 'default' || r.protocol === 'kernel' || !r.gateway) continue;
      const dst = routeDst(r.dst, r.family);
      if (dst && f.podNetworks.some((net) => contains(net, dst))) return true;
    }
    return false;
  });
}

/** One `ip -batch` line that deletes exactly this route. Batch lines take no -4/-6: the family follows from the addresses. */
export function routeDeleteLine(r: FamilyRoute): string {
  const parts = ['route', 'delete'];
  if (r.type && r.type !== 'unicast') parts.push(r.type);
  parts.push(r.dst);
  if (r.gateway) parts.push('via', r.gateway);
  if (r.dev) parts.push('dev', r.dev);
  if (r.table && r.table !== 'main') parts.push('table', r.table);
  if (r.metric !== undefined) parts.push('metric', String(r.metric));
  return parts.join(' ');
}

/** Devices whose routes disappear when the interfaces phase acts on them: deleted links, and kernel-owned ones it sets down. */
export function dyingDevices(owned: OwnedLink[]): Set<string> {
  return new Set(owned.filter((l) => !l.kernelOwned || l.up).map((l) => l.name));
}

/** Chains the bridge and portmap plugins share between every CNI that uses portmap. */
export const PORTMAP_CHAINS = ['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-SETMARK', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SNAT'];

export interface FirewallContext {
  facts: ProfileFacts[];
  /** CNI configs that stay: portmap chains are shared with them. */
  remainingConfigs: CniConfig[];
  family: 4 | 6;
}

export interface TableDeletions {
  table: string;
  /** `-D CHAIN spec` lines, for rules in chains the CNI does not own. */
  deletes: IptRule[];
  /** Chains to flush and delete. */
  chains: string[];
}

const NET_COMMENT = /(?:^|\s)name: "([^"]*)" id: "/;

function fill(spec: string, values: Record<string, string>): string {
  return spec.replace(/\{(\w+)\}/g, (_, k: string) => values[k] ?? `{${k}}`);
}

/** Legacy untagged rules as token strings, filled in with every pod network and node subnet of this family. */
function legacyShapes(ctx: FirewallContext): Map<string, Set<string>> {
  const byChain = new Map<string, Set<string>>();
  for (const f of ctx.facts) {
    const nets = f.podNetworks.filter((p) => p.family === ctx.family);
    const subnets = f.nodeSubnets.filter((p) => p.family === ctx.family);
    for (const shape of f.profile.firewall.legacyRules) {
      if (shape.family !== ctx.family) continue;
      for (const network of nets) {
        for (const subnet of subnets.length ? subnets : [undefined as Prefix | undefined]) {
          if (shape.spec.includes('{subnet}') && !subnet) continue;
          const spec = fill(shape.spec, { network: network.text, subnet: subnet?.text ?? '' });
          const key = `${shape.table}/${shape.chain}`;
          if (!byChain.has(key)) byChain.set(key, new Set());
          byChain.get(key)!.add(tokenize(spec).join(' '));
        }
      }
    }
  }
  return byChain;
}

export function firewallDeletions(dump: IptDump, ctx: FirewallContext): TableDeletions[] {
  const prefixes = ctx.facts.flatMap((f) => f.profile.firewall.chainPrefixes);
  const comments = new Set(ctx.facts.flatMap((f) => f.profile.firewall.comments));
  const commentPrefixes = ctx.facts.flatMap((f) => f.profile.firewall.commentPrefixes);
  const networks = new Set(ctx.facts.flatMap(networksOf));
  const portmapShared = ctx.remainingConfigs.some((c) => c.types.includes('portmap'));
  const legacy = legacyShapes(ctx);
  const out: TableDeletions[] = [];

  for (const t of dump.tables) {
    const userChains = new Set(t.chains.filter((c) => c.policy === null).map((c) => c.name));
    const namesNetwork = (r: IptRule) =>
      r.comments.some((c) => {
        const m = NET_COMMENT.exec(c);
        return m !== null && networks.has(m[1]!);
      });
    const owned = new Set<string>();
    for (const c of userChains) {
      if (prefixes.some((p) => c.startsWith(p))) owned.add(c);
      // The shared portmap chains go whole only when a CNI is being removed and no config left uses portmap.
      if (ctx.facts.length && !portmapShared && PORTMAP_CHAINS.includes(c)) owned.add(c);
    }
    // Per-container chains (CNI-<hash>, CNI-DN-<hash>) are the network's when the rules leading to them name it.
    for (const r of t.rules) {
      if (r.target && userChains.has(r.target) && r.target.startsWith('CNI-') && !PORTMAP_CHAINS.includes(r.target) && namesNetwork(r)) {
        owned.add(r.target);
      }
    }
    const isOwnedRule = (r: IptRule): boolean => {
      if (r.target && owned.has(r.target)) return true;
      if (r.comments.some((c) => comments.has(c) || commentPrefixes.some((p) => c.startsWith(p)))) return true;
      if (namesNetwork(r)) return true;
      return legacy.get(`${t.name}/${r.chain}`)?.has(r.tokens.join(' ')) ?? false;
    };
    const deletes = t.rules.filter((r) => !owned.has(r.chain) && isOwnedRule(r));
    const chains = t.chains.map((c) => c.name).filter((c) => owned.has(c));
    if (deletes.length || chains.length) out.push({ table: t.name, deletes, chains });
  }
  return out;
}

/** The iptables-restore --noflush input: only -D, -F and -X lines, table by table. */
export function restoreScript(tables: TableDeletions[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    lines.push(`*${t.table}`);
    for (const r of t.deletes) lines.push(`-D ${r.chain} ${r.spec}`);
    for (const c of t.chains) lines.push(`-F ${c}`);
    for (const c of t.chains) lines.push(`-X ${c}`);
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * The inverse of restoreScript, kept in the backup: declares the removed chains and puts every
 * removed rule back at its original position (`-I CHAIN <n>`, in ascending order, so the original
 * order comes back when the rest of the chain is unchanged).
 */
export function undoScript(dump: IptDump, tables: TableDeletions[]): string {
  const lines: string[] = [];
  for (const t of tables) {
    const table = dump.tables.find((x) => x.name === t.table);
    if (!table) continue;
    lines.push(`*${t.table}`);
    for (const c of t.chains) lines.push(`:${c} - [0:0]`);
    const byChain = new Map<string, IptRule[]>();
    const position = new Map<IptRule, number>();
    for (const r of table.rules) {
      let rules = byChain.get(r.chain);
      if (!rules) byChain.set(r.chain, (rules = []));
      rules.push(r);
      position.set(r, rules.length);
    }
    for (const c of t.chains) for (const r of byChain.get(c) ?? []) lines.push(`-A ${c} ${r.spec}`);
    for (const r of t.deletes) lines.push(`-I ${r.chain} ${position.get(r)!} ${r.spec}`); // deletes are rules of this table
    lines.push('COMMIT');
  }
  return lines.join('\n') + '\n';
}

/**
 * What of an undo script is missing from the current dump: chains that do not exist and rules
 * that are not there, so a restore never duplicates a rule or flushes a chain by redeclaring it.
 * Insert positions past the end of a chain become appends.
 */
export function missingFromDump(undo: string, current: IptDump): string {
  const out: string[] = [];
  let table: IptDump['tables'][number] | undefined;
  const counts = new Map<string, number>();
  let body: string[] = [];
  const flush = (name: string) => {
    if (body.length) out.push(`*${name}`, ...body, 'COMMIT');
    body = [];
  };
  let name = '';
  for (const line of undo.split('\n')) {
    if (line.startsWith('*')) {
      name = line.slice(1);
      table = current.tables.find((t) => t.name === name);
      counts.clear();
      for (const r of table?.rules ?? []) counts.set(r.chain, (counts.get(r.chain) ?? 0) + 1);
      continue;
    }
    if (line === 'COMMIT') {
      flush(name);
      continue;
    }
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (!table?.chains.some((c) => c.name === chain)) {
        body.push(line);
        counts.set(chain, 0);
      }
      continue;
    }
    const m = /^-(A|I) (\S+) (?:(\d+) )?(.*)$/.exec(line);
    if (!m) continue;
    const [op, chain, pos, spec] = [m[1]!, m[2]!, m[3], m[4]!]; // pos is the only optional group
    const tokens = tokenize(spec).join(' ');
    if (table?.rules.some((r) => r.chain === chain && r.tokens.join(' ') === tokens)) continue;
    const n = counts.get(chain) ?? 0;
    if (op === 'I' && Number(pos) <= n + 1) body.push(`-I ${chain} ${pos!} ${spec}`);
    else body.push(`-A ${chain} ${spec}`);
    counts.set(chain, n + 1);
  }
  return out.length ? out.join('\n') + '\n' : '';
}
