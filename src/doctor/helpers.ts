// Small pure helpers the checks share: the fix commands, how things are named in evidence.
import type { ProfileFacts } from '../inspect.js';
import type { FamilyRoute } from '../ownership.js';
import type { Profile } from '../profiles/schema.js';
import { formatAddr, type Prefix } from '../util/cidr.js';
import type { ConfigEntry, NodeView } from './types.js';

/**
 * `cni-sweep run` limited to the phases that remove this kind of state, with the backup phase
 * first: `--only` selects exactly the phases named, and nothing may be removed without a backup.
 * For state of a CNI that stays (its stale config, its bridge): a departed CNI goes with runFix.
 */
export function sweepFix(v: NodeView, cnis: string[], phases: string[]): string[] {
  return ['cni-sweep', 'run', '--cni', [...new Set(cnis)].join(','), '--only', ['backup', ...phases].join(','), ...sameNode(v)];
}

/** A whole `cni-sweep run`: drain, the services stopped, backup, every cleanup phase, in the run's safe order. */
export function runFix(v: NodeView, cnis: string[]): string[] {
  return ['cni-sweep', 'run', '--cni', [...new Set(cnis)].join(','), ...sameNode(v)];
}

/** A whole run's argv (no --only), as runFix makes it: the fixes the recommended command stands for. */
export const isWholeRun = (fix: string[] | null): fix is string[] =>
  fix?.[0] === 'cni-sweep' && fix[1] === 'run' && !fix.includes('--only');

/** --root, --pod-cidr, --kubeconfig and --profile echoed, so the run sees the node the doctor saw. */
function sameNode(v: NodeView): string[] {
  const argv: string[] = [];
  if (v.root !== '/') argv.push('--root', v.root);
  if (v.podCidrs.length) argv.push('--pod-cidr', v.podCidrs.map((p) => p.text).join(','));
  if (v.kubeconfig) argv.push('--kubeconfig', v.kubeconfig);
  for (const f of v.profileFiles ?? []) argv.push('--profile', f);
  return argv;
}

/** kubectl with the kubeconfig the doctor was given, if any. */
export function kubectl(v: NodeView, ...args: string[]): string[] {
  return v.kubeconfig ? ['kubectl', '--kubeconfig', v.kubeconfig, ...args] : ['kubectl', ...args];
}

/** A node path as it is on the machine (under --root): what a manual command must name. */
export function realPath(v: NodeView, nodePath: string): string {
  return v.root === '/' ? nodePath : `${v.root}${nodePath}`;
}

export function profileNamed(v: NodeView, name: string): Profile | undefined {
  return v.allProfiles.find((p) => p.name === name);
}

/** "flannel", or what is known of a config no profile claims. */
export function cniOf(c: ConfigEntry): string {
  if (c.owners.length) return c.owners.join(', ');
  if (!c.config) return 'unreadable';
  return `unknown CNI: network ${c.config.name}, plugins ${c.config.types.join(', ')}`;
}

/**
 * The known CNIs whose leftovers are worth reporting: diagnosed, not in use, and not a composite
 * whose parts are diagnosed themselves (Canal's state is Flannel's plus Calico's: say it once).
 */
export function notInUse(v: NodeView): Array<{ profile: Profile; facts: ProfileFacts }> {
  const names = new Set(v.profiles.map((p) => p.name));
  return v.profiles
    .filter((p) => !v.inUse.has(p.name))
    .filter((p) => !p.includes.length || !p.includes.every((i) => names.has(i)))
    .map((p) => ({ profile: p, facts: v.facts.get(p.name)! }));
}

export const isUp = (flags: string[] | undefined) => (flags ?? []).includes('UP');

/** Addresses of a link as "10.244.1.1/24", without IPv6 link-local ones. */
export function addrsOf(v: NodeView, ifname: string): string[] {
  return (v.addrs.get(ifname) ?? [])
    .filter((a) => !(a.family === 'inet6' && a.local.toLowerCase().startsWith('fe80:')))
    .map((a) => `${a.local}/${a.prefixlen}`);
}

/** A route the way `ip route` prints it. */
export function routeText(r: FamilyRoute): string {
  const parts: string[] = [];
  if (r.type && r.type !== 'unicast') parts.push(r.type);
  parts.push(r.dst);
  if (r.gateway) parts.push('via', r.gateway);
  if (r.dev) parts.push('dev', r.dev);
  if (r.protocol && r.protocol !== 'boot') parts.push('proto', r.protocol);
  if (r.scope && r.scope !== 'global' && r.scope !== 'universe') parts.push('scope', r.scope);
  if (r.metric !== undefined) parts.push('metric', String(r.metric));
  const flags = (r as { flags?: unknown }).flags;
  if (Array.isArray(flags) && flags.includes('onlink')) parts.push('onlink');
  return parts.join(' ');
}

export { plural } from '../util/plural.js';

/** Container IDs as crictl shows them. */
export const shortId = (id: string) => id.slice(0, 13);

export interface AddrRange {
  start: bigint;
  end: bigint;
  family: 4 | 6;
  /** Addresses host-local can hand out (the gateway is never handed out). */
  size: bigint;
}

/**
 * A host-local range as the plugin canonicalises it: rangeStart defaults to the network's first
 * host, rangeEnd to its last (for IPv4, not the broadcast address), the gateway to the first host.
 */
export function hostLocalRange(
  subnet: Prefix,
  o: { rangeStart?: Prefix | null; rangeEnd?: Prefix | null; gateway?: Prefix | null } = {},
): AddrRange {
  const bits = BigInt((subnet.family === 4 ? 32 : 128) - subnet.len);
  const net = (subnet.addr >> bits) << bits;
  const last = net + (1n << bits) - 1n;
  const start = o.rangeStart?.addr ?? net + 1n;
  const end = o.rangeEnd?.addr ?? (subnet.family === 4 ? last - 1n : last);
  const gw = o.gateway?.addr ?? net + 1n;
  const count = end >= start ? end - start + 1n : 0n;
  return { start, end, family: subnet.family, size: gw >= start && gw <= end ? count - 1n : count };
}

export const rangeText = (r: AddrRange) => `${formatAddr(r.family, r.start)}-${formatAddr(r.family, r.end)}`;
