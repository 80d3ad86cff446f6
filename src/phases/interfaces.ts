// Deletes the CNI's links in one `ip -batch`. Deleting a veth's host end also destroys its peer in
// the pod namespace.
import { listLinks } from '../inspect.js';
import type { Link } from '../parse/iproute.js';
import { keptLinks, ownedLinks } from '../ownership.js';
import type { Phase } from './types.js';
import { nothing } from './types.js';

/**
 * Link kinds whose driver the kernel can delete by group. A group delete refuses as a whole
 * (EOPNOTSUPP) when one member has no rtnetlink delete, e.g. Open vSwitch's internal ports (Weave's
 * `datapath`): links of any other kind are deleted one by one.
 */
const GROUP_DELETABLE = new Set([
  'veth',
  'bridge',
  'vxlan',
  'geneve',
  'wireguard',
  'dummy',
  'macvlan',
  'ipvlan',
  'vlan',
  'ipip',
  'gre',
  'sit',
  'ip6tnl',
  'tun',
]);

/** The first link group from 4242424 up that no link is in; deterministic, so a plan and its run agree. */
export function unusedGroup(links: Link[]): number {
  const used = new Set(links.map((l) => l.group));
  let g = 4242424;
  while (used.has(String(g))) g++;
  return g;
}

export const interfaces: Phase = {
  name: 'interfaces',
  summary: "delete the CNI's interfaces (bridge, overlay devices, pod veths)",
  cleanup: true,
  async plan(ctx) {
    const links = await listLinks(ctx.host, ctx.gaps);
    const owned = ownedLinks(links, ctx.snapshot.facts);
    const deletable = owned.filter((l) => !l.kernelOwned);
    const ordered = [...deletable.filter((l) => l.isPort), ...deletable.filter((l) => !l.isPort)];
    const lines: string[] = [];
    // The kernel tears a link down with a grace period per deletion (~20 ms each): one `link delete`
    // per pod veth takes seconds on a full node. Put every link in a link group nobody uses and
    // delete the group: one teardown for all of them, bridge and overlay devices included.
    const groupable = (l: (typeof ordered)[number]) => GROUP_DELETABLE.has(l.kind ?? '');
    const grouped = ordered.filter(groupable);
    let byName = ordered;
    if (grouped.length > 1) {
      const group = unusedGroup(links);
      for (const l of grouped) lines.push(`link set dev ${l.name} group ${group}`);
      lines.push(`link delete group ${group}`);
      byName = ordered.filter((l) => !groupable(l));
    }
    for (const l of byName) lines.push(`link delete ${l.name}`);
    const items = ordered.map((l) => l.name);
    // The uplink, lo, a bridge that carries more than pods: whatever a config says, they stay.
    const notes = keptLinks(links, ctx.snapshot.facts).map((k) => `kept ${k.name}: ${k.why}`);
    for (const k of owned.filter((l) => l.kernelOwned)) {
      const addrs = await ctx.host.query(['ip', '-j', 'addr', 'show', 'dev', k.name]);
      const has = addrs?.code === 0 && /"local"/.test(addrs.stdout);
      if (!has && !k.up) continue;
      // `ip link delete tunl0` cannot remove it: the ipip module owns it. Take it out of service instead.
      if (has) lines.push(`address flush dev ${k.name}`);
      if (k.up) lines.push(`link set ${k.name} down`);
      items.push(`${k.name} (addresses flushed, set down; its module goes only in the opt-in modules phase)`);
    }
    if (!lines.length) return nothing(...notes);
    return {
      steps: [{ argv: ['ip', '-batch', '-'], stdin: lines.join('\n') + '\n', touches: ['links'], removes: { kind: 'interface', items } }],
      notes,
    };
  },
};
