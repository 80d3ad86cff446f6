// host-local IPAM keeps one file per allocated address in /var/lib/cni/networks/<net>, and frees
// it only when the pod's CNI DEL succeeds. After a hard reboot, a runtime crash or a broken CNI the
// files stay, and the range runs out. Allocations are compared with the sandboxes crictl lists
// (none can be running when the runtime is stopped); the range comes from the network's config
// (ipam ranges/subnet), flannel's subnet.env for its network, or the Node's pod CIDR ("usePodCidr").
import path from 'node:path';
import { parsePrefix, type Prefix } from '../../util/cidr.js';
import { hostLocalRange, plural, rangeText, realPath, shortId, type AddrRange } from '../helpers.js';
import { removalFix } from '../owned.js';
import type { Check, Finding, IpamAllocation, IpamNetwork, NodeView } from '../types.js';

type Json = Record<string, unknown>;
const obj = (x: unknown): Json | null => (x && typeof x === 'object' && !Array.isArray(x) ? (x as Json) : null);
const prefix = (x: unknown): Prefix | null => (typeof x === 'string' ? parsePrefix(x) : null);

function fromRange(r: Json | null): AddrRange | null {
  const subnet = prefix(r?.subnet);
  if (!r || !subnet || !String(r.subnet).includes('/')) return null;
  return hostLocalRange(subnet, { rangeStart: prefix(r.rangeStart), rangeEnd: prefix(r.rangeEnd), gateway: prefix(r.gateway) });
}

/** The range sets host-local allocates this network from, and where that came from. */
export function rangeSets(v: NodeView, network: string): { sets: AddrRange[][]; source: string } | null {
  const env = v.subnetEnv.env;
  const fromEnv = () => {
    const sets = [env?.subnet, env?.ipv6Subnet]
      .map(prefix)
      .filter((p) => p !== null)
      .map((p) => [hostLocalRange(p)]);
    return sets.length ? { sets, source: `${v.subnetEnv.path} FLANNEL_SUBNET=${env!.subnet}` } : null;
  };
  const config = v.configs.find((c) => c.config?.name === network);
  const root = obj(config?.json);
  if (config && root) {
    const plugins = Array.isArray(root.plugins) ? root.plugins.map(obj) : [root];
    for (const p of plugins) {
      if (p?.type === 'flannel') return fromEnv();
      const ipam = obj(p?.ipam);
      if (ipam?.type !== 'host-local') continue;
      if (Array.isArray(ipam.ranges)) {
        const sets = ipam.ranges
          .map((set) => (Array.isArray(set) ? set.map((r) => fromRange(obj(r))).filter((r) => r !== null) : []))
          .filter((s) => s.length);
        if (sets.length) return { sets, source: `${config.file} ipam.ranges` };
      }
      if (ipam.subnet === 'usePodCidr') {
        const cidrs = v.kube.nodePodCidrs ?? [];
        return cidrs.length
          ? { sets: cidrs.map((c) => [hostLocalRange(c)]), source: `Node ${v.node} spec.podCIDRs (ipam.subnet usePodCidr)` }
          : null;
      }
      const single = fromRange(ipam);
      if (single) return { sets: [[single]], source: `${config.file} ipam.subnet` };
    }
    return null;
  }
  // Config gone: Flannel's network still has its subnet in subnet.env.
  if (v.allProfiles.some((p) => p.state.subnetEnv && p.defaultNetworks.includes(network))) return fromEnv();
  return null;
}

/** The known CNI this network's state belongs to: its config's, else the one whose default network it is. */
function ownerOf(v: NodeView, network: string): string | null {
  const config = v.configs.find((c) => c.config?.name === network);
  if (config) return config.owners[0] ?? null;
  return v.allProfiles.find((p) => p.defaultNetworks.includes(network))?.name ?? null;
}

const inRange = (a: IpamAllocation, r: AddrRange) => a.ip.family === r.family && a.ip.addr >= r.start && a.ip.addr <= r.end;

export const ipam: Check = {
  name: 'ipam',
  run(v) {
    const out: Finding[] = [];
    const { sandboxes, down } = v.runtime;
    // A full id is the common case: looked up at once; a prefix either way (crictl's short ids) is scanned for.
    const running = new Set(sandboxes ?? []);
    const isStale = (a: IpamAllocation) =>
      down !== undefined ||
      (sandboxes !== null &&
        !(a.containerId && running.has(a.containerId)) &&
        !sandboxes.some((id) => a.containerId && (a.containerId.startsWith(id) || id.startsWith(a.containerId))));
    const known = down !== undefined || sandboxes !== null;
    const runtimeNetwork = v.configs.find((c) => c.config)?.config!.name;
    // --cni: only the state of the CNIs named (a network no profile claims only without --cni).
    const diagnosed = new Set(v.profiles.map((p) => p.name));
    const everyCni = v.allProfiles.every((p) => diagnosed.has(p.name));
    for (const net of v.ipam) {
      const owner = ownerOf(v, net.network);
      // Only pod networks: another tool's network (podman's) holds containers crictl never lists.
      if (!net.allocations.length || (!owner && net.network !== runtimeNetwork)) continue;
      if (owner ? !diagnosed.has(owner) : !everyCni) continue;
      const stale = known ? net.allocations.filter(isStale) : [];
      // A CNI not in use goes whole (its IPAM state with it); a live one loses only the stale files,
      // into an archive beside the IPAM dirs (-r appends: a second fix adds, never overwrites).
      const archive = realPath(v, `${path.posix.dirname(path.posix.dirname(net.dir))}/stale-ipam-${net.network}.tar`);
      const fix =
        owner && !v.inUse.has(owner)
          ? removalFix(v, [owner])
          : ['tar', '-C', realPath(v, net.dir), '--remove-files', '-rf', archive, '--', ...stale.map((a) => path.posix.basename(a.file))];
      const removedWith = owner ? [owner] : undefined;
      const context = down
        ? `${down}: no allocation can belong to a running pod`
        : `running pod sandboxes (crictl pods -q): ${sandboxes?.length ?? 0}`;
      if (stale.length) {
        out.push({
          id: 'ipam-stale',
          severity: 'warning',
          title: `${plural(stale.length, 'IP allocation')} in ${net.dir} ${stale.length === 1 ? 'belongs' : 'belong'} to no running pod`,
          evidence: [
            context,
            ...stale.map((a) => `${a.file}: container ${shortId(a.containerId) || '(none)'}${a.ifname ? ` (${a.ifname})` : ''}`),
          ],
          why:
            "host-local frees an address only when the pod's CNI DEL succeeds; after a hard reboot, a runtime crash or a broken CNI the files stay, " +
            'and once the range is used up every new pod fails with `failed to allocate for range 0: no IP addresses available in range set`.',
          fix,
          removedWith,
        });
      }
      out.push(...exhaustion(v, net, stale, known, fix).map((f) => (f.fix && removedWith ? { ...f, removedWith } : f)));
    }
    return out;
  },
};

function exhaustion(v: NodeView, net: IpamNetwork, stale: IpamAllocation[], known: boolean, fix: string[]): Finding[] {
  const ranges = rangeSets(v, net.network);
  if (!ranges) return [];
  const out: Finding[] = [];
  ranges.sets.forEach((set, i) => {
    const size = set.reduce((n, r) => n + r.size, 0n);
    const used = net.allocations.filter((a) => set.some((r) => inRange(a, r)));
    // At 90% a burst of pods (a rollout, a drain elsewhere) is enough to run out.
    if (size === 0n || BigInt(used.length) * 10n < size * 9n) return;
    const usedHere = new Set(used);
    const staleHere = stale.filter((a) => usedHere.has(a)).length;
    const pct = Number((BigInt(used.length) * 1000n) / size) / 10;
    const text = set.map(rangeText).join(',');
    out.push({
      id: 'ipam-exhaustion',
      severity: BigInt(used.length) >= size ? 'error' : 'warning',
      title: `${net.dir} is ${pct}% full: ${used.length} of ${size} addresses in ${text}`,
      evidence: [
        `${net.dir}: ${used.length} of ${size} addresses allocated in ${text} (${ranges.source})`,
        ...(known ? [`${staleHere} of them belong to no running pod`] : []),
      ],
      why:
        `When the range is used up every new pod fails with \`failed to allocate for range ${i}: no IP addresses available in range set: ${text}\`.` +
        (staleHere
          ? ' Allocations of pods that are gone hold part of it.'
          : known
            ? " Every allocation belongs to a running pod: the node's pod subnet is too small for its pods (a larger node CIDR, or a lower kubelet maxPods)."
            : ''),
      fix: staleHere ? fix : null,
    });
  });
  return out;
}
