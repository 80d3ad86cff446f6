// Pure decisions about what a CNI owns, given what the node shows. Shared by the phases and doctor.
import type { ProfileFacts } from './inspect.js';
import { sha256 } from './util/lazy.js';
import { bridgesOf, networksOf, profileFacts, withDelegates } from './inspect.js';
import type { IptDump, IptRule } from './parse/iptables.js';
import { tokenize } from './parse/iptables.js';
import { defaultHops, type Link, type Route } from './parse/iproute.js';
import { batchSafeDevice } from './util/names.js';
import type { CniConfig } from './parse/conflist.js';
import { contains, parsePrefix, routeDst, type Prefix } from './util/cidr.js';
import type { Profile } from './profiles/schema.js';
import { protectedName } from './profiles/protected.js';

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

export function ownedLinks(links: Link[], facts: ProfileFacts[]): readonly OwnedLink[] {
  return linkOwnership(links, facts).owned;
}

/**
 * Devices a profile would own that stay whatever its config says: the loopback device, a device
 * named in a config that is not a bridge, a bridge with a port that is not a pod veth, names the
 * kernel or `ip -batch` cannot take, and what the snapshot found protected (the uplink, devices
 * with addresses outside the pod network: ProfileFacts.keptDevices).
 */
export function keptLinks(links: Link[], facts: ProfileFacts[]): ReadonlyArray<{ name: string; why: string }> {
  return linkOwnership(links, facts).kept;
}

type Ownership = { owned: readonly OwnedLink[]; kept: ReadonlyArray<{ name: string; why: string }> };

/**
 * The answers for one listing of the links and one set of facts: a plan asks about the same
 * listing in most phases (interfaces, routes, netns, bpf, remove-sandboxes, policy-routing: seven
 * times, each a walk of every link with the profiles' patterns). A new listing (a run reads the
 * links again after a change) is a new array, answered anew. Frozen: the callers share them.
 */
const answered = new WeakMap<Link[], WeakMap<ProfileFacts[], Ownership>>();

function linkOwnership(links: Link[], facts: ProfileFacts[]): Ownership {
  let byFacts = answered.get(links);
  if (!byFacts) answered.set(links, (byFacts = new WeakMap()));
  let o = byFacts.get(facts);
  if (!o) {
    const { owned, kept } = decideOwnership(links, facts);
    byFacts.set(facts, (o = { owned: Object.freeze(owned), kept: Object.freeze(kept) }));
  }
  return o;
}

function decideOwnership(links: Link[], facts: ProfileFacts[]): { owned: OwnedLink[]; kept: Array<{ name: string; why: string }> } {
  const out: OwnedLink[] = [];
  const taken = new Set<string>(); // the names in out: a node has hundreds of veths
  const keptOut: Array<{ name: string; why: string }> = [];
  const keptNames = new Set<string>(); // the names in keptOut
  const byName = new Map(links.map((l) => [l.ifname, l]));
  for (const f of facts) {
    const names = new Set([...f.profile.interfaces.names, ...f.profile.interfaces.ovsDatapaths]);
    const patterns = f.profile.interfaces.patterns.map((p) => new RegExp(p));
    const byProfile = (n: string) => names.has(n) || patterns.some((r) => r.test(n));
    const kept = new Map(f.keptDevices ?? []);
    for (const l of links) if (l.ifname === 'lo' || (l.flags ?? []).includes('LOOPBACK')) kept.set(l.ifname, 'the loopback device');
    // Ports of every bridge the CNI owns: the one its config names, and any of its named links that is a bridge.
    const bridges = new Set<string>();
    for (const b of bridgesOf(f)) {
      const l = byName.get(b);
      // The bridge plugin makes a bridge: a config naming another kind of device (eth0) does not make it the CNI's.
      if (l && !byProfile(b) && l.linkinfo?.info_kind !== 'bridge' && !kept.has(b))
        kept.set(b, `a config names it as the bridge, but it is a ${l.linkinfo?.info_kind ?? 'physical'} device`);
      bridges.add(b);
    }
    for (const l of links) if (l.linkinfo?.info_kind === 'bridge' && byProfile(l.ifname)) bridges.add(l.ifname);
    // What a veth's peer in this namespace (a pod's peer is in the pod's namespace) carries of
    // another network: an address, or a bridge that is not the CNI's. Deleting the veth deletes it.
    const carries = (peer: string): string | null => {
      const l = byName.get(peer);
      if (!l || byProfile(peer)) return null;
      if (l.master && !byProfile(l.master) && !bridges.has(l.master)) return `is a port of ${l.master}`;
      const addr = ((l as { addr_info?: Array<{ local?: string; scope?: string }> }).addr_info ?? []).find((a) => a.scope !== 'link');
      return addr?.local ? `carries ${addr.local}` : null;
    };
    // A bridge of the CNI with a port that is not a pod veth (the uplink enslaved to it, a tap, a
    // site's vxlan, a veth to another network) carries more than pods, whether a config names it or
    // it has the profile's name (cni0 is also a lab's bridge name): deleting it would take that network.
    for (const l of links) {
      if (!l.master || !bridges.has(l.master) || kept.has(l.master) || byProfile(l.ifname)) continue;
      const peer = l.linkinfo?.info_kind === 'veth' && l.link !== undefined ? carries(l.link) : null;
      if (l.linkinfo?.info_kind !== 'veth') kept.set(l.master, `it has the port ${l.ifname}, which is not a pod veth`);
      else if (peer) kept.set(l.master, `it has the port ${l.ifname}, a veth whose peer ${l.link} ${peer}: not a pod's`);
    }
    // A veth with the CNI's name whose peer, in this namespace, carries another network: not a pod's.
    for (const l of links) {
      if (l.linkinfo?.info_kind !== 'veth' || l.link === undefined || !byProfile(l.ifname) || kept.has(l.ifname)) continue;
      const peer = carries(l.link);
      if (peer) kept.set(l.ifname, `it is a veth whose peer ${l.link} ${peer}: not a pod's`);
    }
    const named = new Set(bridges);
    for (const b of bridges) if (kept.has(b)) bridges.delete(b);
    const kernel = new Set(f.profile.interfaces.kernelOwned);
    for (const l of links) {
      if (taken.has(l.ifname)) continue;
      const base = { isPort: false, kernelOwned: false, up: (l.flags ?? []).includes('UP'), kind: l.linkinfo?.info_kind };
      let owned: OwnedLink | null = null;
      if (kernel.has(l.ifname)) owned = { ...base, name: l.ifname, why: 'kernel-owned', kernelOwned: true };
      else if (names.has(l.ifname) || named.has(l.ifname)) owned = { ...base, name: l.ifname, why: 'name' };
      else if (patterns.some((r) => r.test(l.ifname))) owned = { ...base, name: l.ifname, why: 'pattern' };
      else if (f.profile.interfaces.bridgePorts && l.master && bridges.has(l.master) && l.linkinfo?.info_kind === 'veth') {
        owned = { ...base, name: l.ifname, why: `bridge port of ${l.master}`, isPort: true };
      }
      if (!owned) continue;
      const why = kept.get(l.ifname) ?? (batchSafeDevice(l.ifname) ? null : 'its name cannot be passed safely to ip -batch');
      if (why) {
        if (!keptNames.has(l.ifname)) {
          keptNames.add(l.ifname);
          keptOut.push({ name: l.ifname, why });
        }
        continue;
      }
      out.push(owned);
      taken.add(owned.name);
    }
  }
  return { owned: keptNames.size ? out.filter((o) => !keptNames.has(o.name)) : out, kept: keptOut };
}

export type FamilyRoute = Route & { family: 4 | 6 };

export interface RouteContext {
  facts: ProfileFacts[];
  /** Devices of the CNIs being removed: routes through them are theirs. */
  ownedDevices: Set<string>;
  /** Devices the interfaces phase deletes: their routes go with them, so they are left out. */
  dyingDevices: Set<string>;
  /** Devices of every known CNI, the removed ones included: never an uplink. */
  cniDevices: Set<string>;
}

/** A route that looked like the removed CNI's (its protocol, or inside its pod network) and stays, with why. */
export interface KeptRoute {
  route: FamilyRoute;
  why: string;
}

const protocolOf = (r: Route) => r.protocol ?? 'boot'; // iproute2 prints no protocol for boot
const isMain = (r: Route) => !r.table || r.table === 'main';
const isUnicast = (r: Route) => (r.type ?? 'unicast') === 'unicast';

/**
 * The destinations of the connected routes (no gateway, unicast, main table, not default) of a route
 * list, by device. A loop over a host-gw cluster's routes (one per node) computes it once and passes
 * it to gatewayConnected, instead of a scan of every route for each.
 */
export function connectedByDev(routes: FamilyRoute[]): Map<string, Prefix[]> {
  const byDev = new Map<string, Prefix[]>();
  for (const c of routes) {
    if (c.dev === undefined || c.gateway || !isUnicast(c) || !isMain(c) || c.dst === 'default') continue;
    const cdst = routeDst(c.dst, c.family);
    if (cdst === null) continue;
    const list = byDev.get(c.dev);
    if (list) list.push(cdst);
    else byDev.set(c.dev, [cdst]);
  }
  return byDev;
}

/**
 * Whether a connected route (no gateway, not via a CNI device) covers the route's gateway on its own
 * device. `connected`: connectedByDev(routes), when the caller has it.
 */
export function gatewayConnected(
  r: FamilyRoute,
  routes: FamilyRoute[],
  cniDevices: Set<string>,
  connected?: Map<string, Prefix[]>,
): boolean {
  const gw = r.gateway ? parsePrefix(r.gateway) : null;
  if (!gw || !r.dev || cniDevices.has(r.dev)) return false;
  return ((connected ?? connectedByDev(routes)).get(r.dev) ?? []).some((cdst) => contains(cdst, gw));
}

/** The lease lengths of a pod network: the node's own subnet's, else the profile's default (Flannel: network + 2 for small networks). */
function leaseLens(f: ProfileFacts, net: Prefix): number[] {
  const own = f.nodeSubnets.filter((s) => s.family === net.family && contains(net, s)).map((s) => s.len);
  if (own.length) return own;
  const d = f.profile.routes.defaultLeaseLen;
  if (!d) return [];
  return [Math.max(net.family === 4 ? d.v4 : d.v6, net.len + 2)];
}

/**
 * Why a route inside the pod network is not one of the CNI's host-gw routes, or null when its shape is
 * one (the gateway's reachability aside, see gatewayConnected).
 */
export function notHostGw(r: FamilyRoute, f: ProfileFacts, cniDevices: Set<string>): string | null {
  const dst = routeDst(r.dst, r.family);
  const net = dst && f.podNetworks.find((n) => contains(n, dst));
  if (!dst || !net) return 'outside the pod network';
  const proto = protocolOf(r);
  if (!f.profile.routes.hostGwProtocols.includes(proto)) return `proto ${proto}: another routing daemon's route`;
  if (!isMain(r)) return `in table ${r.table}`;
  if (!isUnicast(r)) return `a ${r.type} route`;
  if (r.dev && cniDevices.has(r.dev)) return `via ${r.dev}, another CNI's device`;
  if (!r.gateway || !r.dev) return 'no gateway';
  const lens = leaseLens(f, net);
  if (!lens.includes(dst.len)) return lens.length ? `/${dst.len} is not a lease (/${lens.join(', /')})` : 'the lease length is unknown';
  if (f.nodeSubnets.some((s) => s.family === dst.family && s.len === dst.len && s.addr === dst.addr)) return "this node's own subnet";
  return null;
}

/**
 * The CNI's routes that do not go away with its devices, by the exact shapes it writes, and the routes
 * that looked like its own but stay (another daemon's protocol, another table, another CNI's device,
 * wider than a lease or a block, a gateway off the uplink's network, a BIRD route a site's BIRD may
 * have written), with why. Routes through dying devices are left out: deleting the device takes them.
 */
export function classifyRoutes(routes: FamilyRoute[], ctx: RouteContext): { owned: FamilyRoute[]; kept: KeptRoute[] } {
  const owned: FamilyRoute[] = [];
  const kept: KeptRoute[] = [];
  const connected = connectedByDev(routes);
  const blackholes = routes.filter((b) => b.type === 'blackhole' && isMain(b));
  // The site's router: a route via a default route's gateway goes to it, not to another node. A
  // device that stays with a network inside the pod network (another CNI's gateway on the same
  // podCIDR, Antrea's antrea-gw0): routes of the host-gw shape may be that CNI's as much. Not the
  // uplinks (the devices of default routes), which host-gw routes go through.
  const hops = defaultHops(routes);
  const routers = new Set(hops.map((h) => h.gateway).filter(Boolean));
  const uplinks = new Set(hops.map((h) => h.dev).filter(Boolean));
  // Per family: an IPv4 network of a device that stays says nothing of the IPv6 routes.
  const sharers = new Map<string, string | undefined>();
  const sharer = (f: ProfileFacts, family: 4 | 6): string | undefined => {
    const key = `${ctx.facts.indexOf(f)}/${family}`;
    if (sharers.has(key)) return sharers.get(key);
    let found: string | undefined;
    for (const [dev, nets] of connected) {
      if (ctx.ownedDevices.has(dev) || ctx.dyingDevices.has(dev) || uplinks.has(dev)) continue;
      if (nets.some((p) => p.family === family && f.podNetworks.some((n) => contains(n, p)))) found ??= dev;
    }
    sharers.set(key, found);
    return found;
  };
  for (const r of routes) {
    if (r.dev && ctx.dyingDevices.has(r.dev)) continue;
    const proto = protocolOf(r);
    if (proto === 'kernel' || r.dst === 'default') continue; // connected routes go with their address
    let why: string | null = null;
    let mine = false;
    for (const f of ctx.facts) {
      const rt = f.profile.routes;
      const dst = routeDst(r.dst, r.family);
      if (!dst) continue;
      if (r.dev && ctx.ownedDevices.has(r.dev)) {
        // Through its own device: the CNI's, unless another daemon put it there.
        if (isMain(r) && (rt.hostGwProtocols.includes(proto) || rt.protocols.includes(proto))) mine = true;
        else why ??= isMain(r) ? `proto ${proto}: another routing daemon's route` : `in table ${r.table}`;
      } else if (rt.protocols.includes(proto)) {
        const lens = rt.prefixLens ? (r.family === 4 ? rt.prefixLens.v4 : rt.prefixLens.v6) : null;
        if (!isMain(r)) why ??= `in table ${r.table}`;
        else if (lens && (dst.len < lens[0] || dst.len > lens[1]))
          why ??= `/${dst.len} is wider than ${f.profile.name}'s blocks (/${lens[0]}-/${lens[1]})`;
        else if (r.type === 'blackhole') mine = true;
        else if (!isUnicast(r)) why ??= `a ${r.type} route`;
        else if (r.dev && ctx.cniDevices.has(r.dev)) why ??= `via ${r.dev}, another CNI's device`;
        else if (!gatewayConnected(r, routes, ctx.cniDevices, connected)) why ??= "its gateway is not on the uplink's connected network";
        else if (!rt.sharedProtocols.includes(proto)) mine = true;
        else {
          // proto bird via the uplink: Calico's when it is as long as one of Calico's own blocks here, or inside --pod-cidr.
          const blocks = blackholes.filter((b) => b.family === r.family && rt.protocols.includes(protocolOf(b)));
          const blockLens = new Set(blocks.map((b) => routeDst(b.dst, b.family)?.len));
          if (blockLens.has(dst.len) || f.podNetworks.some((n) => contains(n, dst))) mine = true;
          else
            why ??= `proto ${proto} via the uplink and no ${f.profile.name} block of that size on this node: a site's own ${proto === 'bird' ? 'BIRD' : 'daemon'} may have written it`;
        }
      } else if (rt.podNetworkRoutes && f.podNetworks.some((n) => contains(n, dst))) {
        const not = notHostGw(r, f, ctx.cniDevices);
        const other = not === null ? sharer(f, r.family) : undefined;
        if (not !== null) why ??= not;
        else if (r.gateway && routers.has(r.gateway))
          why ??= `via ${r.gateway}, the default route's gateway: the site's router, not a node`;
        else if (other) why ??= `${other}, which stays, has a network inside the pod network: the route may be its CNI's`;
        else if (gatewayConnected(r, routes, ctx.cniDevices, connected)) mine = true;
        else why ??= "its gateway is not on the uplink's connected network";
      }
      if (mine) break;
    }
    if (mine) owned.push(r);
    else if (why) kept.push({ route: r, why });
  }
  return { owned, kept };
}

/** The routes classifyRoutes owns. */
export function ownedRoutes(routes: FamilyRoute[], ctx: RouteContext): FamilyRoute[] {
  return classifyRoutes(routes, ctx).owned;
}

/** Devices of every known CNI (names, patterns, kernel-owned, bridges and their veth ports): never an uplink. */
export function cniDevices(links: Link[], profiles: Profile[], configs: CniConfig[] = []): Set<string> {
  const facts = profiles.map((p) => profileFacts(p, configs, null, [], []));
  return new Set(ownedLinks(links, facts).map((l) => l.name));
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

/** A route for a note: what `ip route` shows of it, protocol included. */
export function routeLabel(r: FamilyRoute): string {
  const base = routeDeleteLine(r).replace(/^route delete /, '');
  return r.protocol ? `${base} proto ${r.protocol}` : base;
}

/** Devices whose routes disappear when the interfaces phase acts on them: deleted links, and kernel-owned ones it sets down. */
export function dyingDevices(owned: readonly OwnedLink[]): Set<string> {
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
      // A shape that names no network (kube-router's masquerade on its own ipset) needs no node facts.
      const fixed = !/\{(network|subnet)\}/.test(shape.spec);
      for (const network of fixed ? [nets[0] ?? ({ text: '' } as Prefix)] : nets) {
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

/** Whether a rule in the shared portmap chains names a network other than these (libcni's `name: "X" id: "..."`). */
function keptPortmapRule(rules: IptRule[], networks: Set<string>): boolean {
  return rules.some((r) => {
    if (!PORTMAP_CHAINS.includes(r.chain)) return false;
    return r.comments.some((c) => {
      const m = NET_COMMENT.exec(c);
      return m !== null && !networks.has(m[1]!);
    });
  });
}

export function firewallDeletions(dump: IptDump, ctx: FirewallContext): TableDeletions[] {
  const prefixes = ctx.facts.flatMap((f) => f.profile.firewall.chainPrefixes);
  const comments = new Set(ctx.facts.flatMap((f) => f.profile.firewall.comments));
  const commentPrefixes = ctx.facts.flatMap((f) => f.profile.firewall.commentPrefixes);
  const networks = new Set(ctx.facts.flatMap(networksOf));
  const portmapShared = ctx.remainingConfigs.flatMap(withDelegates).some((c) => c.types.includes('portmap'));
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
      // Inside KUBE-* and CNI-* a profile's sub-prefix never takes kube-proxy's, kubelet's or portmap's names.
      if (prefixes.some((p) => c.startsWith(p)) && !protectedName(c)) owned.add(c);
      // The shared portmap chains go whole only when a CNI is being removed, no config left uses
      // portmap, and no rule in them names a network this run keeps (a pod of a config cni-sweep
      // could not see, a NetworkAttachmentDefinition's).
      if (ctx.facts.length && !portmapShared && PORTMAP_CHAINS.includes(c) && !keptPortmapRule(t.rules, networks)) owned.add(c);
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

/** A rule's identity in an undo's anchor comments: 16 hex digits of the SHA-256 of its tokens. */
const ruleDigest = (tokens: string): string => sha256(tokens).slice(0, 16);

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
    // Each rule also names the rule before it (a comment iptables-restore skips): a restore puts it
    // back after that rule wherever it is by then, so a rule inserted since (a site's DROP at the
    // top of FORWARD) keeps its place ahead of it. Ascending order: an earlier one is back first.
    // By a digest: the backup and the plan that shows it carry no foreign rule's text.
    for (const r of t.deletes) {
      const n = position.get(r)!; // deletes are rules of this table
      const before = n > 1 ? byChain.get(r.chain)![n - 2]! : null;
      lines.push(before ? `# after ${r.chain} ${ruleDigest(before.tokens.join(' '))}` : `# first ${r.chain}`);
      lines.push(`-I ${r.chain} ${n} ${r.spec}`);
    }
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
  // The current table's chains, and its rules as "<chain> <tokens>": looked up for every line of the undo.
  let chains = new Set<string>();
  let rules = new Set<string>();
  const counts = new Map<string, number>();
  // Each chain's rules in order as the restore leaves them (tokens), built when an anchored insert needs it.
  let order = new Map<string, string[]>();
  let table: IptDump['tables'][number] | undefined;
  const chainOrder = (chain: string): string[] => {
    let o = order.get(chain);
    if (!o) order.set(chain, (o = (table?.rules ?? []).filter((r) => r.chain === chain).map((r) => ruleDigest(r.tokens.join(' ')))));
    return o;
  };
  let anchor: { chain: string; after: string | null } | null = null;
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
      order = new Map();
      counts.clear();
      for (const r of table?.rules ?? []) counts.set(r.chain, (counts.get(r.chain) ?? 0) + 1);
      chains = new Set(table?.chains.map((c) => c.name));
      rules = new Set(table?.rules.map((r) => `${r.chain} ${r.tokens.join(' ')}`));
      continue;
    }
    if (line === 'COMMIT') {
      flush(name);
      continue;
    }
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(' ')[0]!;
      if (!chains.has(chain)) {
        body.push(line);
        counts.set(chain, 0);
      }
      continue;
    }
    const a = /^# (after|first) (\S+)(?: (.*))?$/.exec(line);
    if (a) {
      anchor = { chain: a[2]!, after: a[1] === 'after' ? (a[3] ?? '') : null };
      continue;
    }
    const m = /^-(A|I) (\S+) (?:(\d+) )?(.*)$/.exec(line);
    if (!m) continue;
    const [op, chain, pos, spec] = [m[1]!, m[2]!, m[3], m[4]!]; // pos is the only optional group
    const tokens = tokenize(spec).join(' ');
    const at = anchor?.chain === chain ? anchor : null;
    anchor = null;
    if (rules.has(`${chain} ${tokens}`)) continue;
    const n = counts.get(chain) ?? 0;
    let insertAt: number | null = op === 'I' && Number(pos) <= n + 1 ? Number(pos) : null;
    if (op === 'I' && at) {
      // After the rule it followed, wherever that is now; at the top if it was first. Its old
      // index only when the rule before it is gone.
      const o = chainOrder(chain);
      const i = at.after === null ? -1 : o.lastIndexOf(at.after);
      if (at.after === null || i >= 0) insertAt = i + 2;
    }
    if (insertAt !== null) body.push(`-I ${chain} ${insertAt} ${spec}`);
    else body.push(`-A ${chain} ${spec}`);
    const o = chainOrder(chain);
    o.splice(insertAt === null ? o.length : insertAt - 1, 0, ruleDigest(tokens));
    counts.set(chain, n + 1);
  }
  return out.length ? out.join('\n') + '\n' : '';
}
