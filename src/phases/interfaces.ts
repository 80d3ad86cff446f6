// Deletes the CNI's links in one `ip -batch`, then its Open vSwitch datapaths with ovs-dpctl. Deleting
// a veth's host end also destroys its peer in the pod namespace.
import { listLinks } from '../inspect.js';
import type { Link } from '../parse/iproute.js';
import { parseDpctlShow } from '../parse/ovs.js';
import { keptLinks, ownedLinks, type OwnedLink } from '../ownership.js';
import type { Ctx, PlannedStep, Phase } from './types.js';
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

const OVS = 'openvswitch';

/**
 * The CNI's Open vSwitch devices. `ip link delete` cannot remove them ("Operation not supported"):
 * a datapath the profile names goes with `ovs-dpctl del-dp`, which talks to the kernel module (no
 * daemon needed) and takes the datapath's internal and tunnel ports along. It stays, with why, while
 * ovs-vswitchd runs (the daemon manages the kernel's datapaths), or while a port of it is not the
 * CNI's; without ovs-dpctl the plan says how to remove it.
 */
async function planOvs(ctx: Ctx, owned: readonly OwnedLink[]) {
  const steps: PlannedStep[] = [];
  const notes: string[] = [];
  const warnings: string[] = [];
  const devices = owned.filter((l) => l.kind === OVS);
  if (!devices.length) return { steps, notes, warnings };
  const named = new Set(ctx.snapshot.facts.flatMap((f) => f.profile.interfaces.ovsDatapaths));
  const datapaths = devices.filter((l) => named.has(l.name));
  const gone = new Set<string>();
  // Deleted by the `ip -batch` before: not listed again as going with a datapath.
  const batch = new Set(owned.filter((l) => !l.kernelOwned && l.kind !== OVS).map((l) => l.name));
  const keep = (dp: string, why: string) => notes.push(`kept Open vSwitch datapath ${dp}: ${why}`);
  if (datapaths.length && !(await ctx.host.has('ovs-dpctl'))) {
    warnings.push(
      `cannot remove the Open vSwitch datapath ${datapaths.map((d) => d.name).join(', ')}: \`ip link delete\` cannot (Operation not supported) and ovs-dpctl is not installed; install it (Debian/Ubuntu: apt-get install openvswitch-switch; it needs the openvswitch module, not the daemon) and run again, or run \`ovs-dpctl del-dp <name>\` yourself`,
    );
  } else if (datapaths.length) {
    const daemons = (await ctx.host.processes()).filter(
      (p) => p.comm === 'ovs-vswitchd' || (p.argv[0] ?? '').split('/').pop() === 'ovs-vswitchd',
    );
    const ownedNames = new Set(owned.map((l) => l.name));
    for (const dp of datapaths) {
      if (daemons.length) {
        keep(
          dp.name,
          `ovs-vswitchd (pid ${daemons[0]!.pid}) runs and manages the kernel's datapaths; stop the Open vSwitch that uses it first`,
        );
        continue;
      }
      const shown = await ctx.host.query(['ovs-dpctl', 'show', dp.name]);
      if (!shown || shown.code !== 0) {
        keep(dp.name, `ovs-dpctl show ${dp.name} failed: ${(shown?.stderr ?? '').trim().split('\n').pop() || 'no output'}`);
        continue;
      }
      const ports = parseDpctlShow(shown.stdout);
      // Tunnel ports (vxlan, geneve ...) are devices OVS made for the datapath: they go with it.
      const foreign = ports.filter((p) => p.name !== dp.name && (p.type === 'system' || p.type === 'internal') && !ownedNames.has(p.name));
      if (foreign.length) {
        keep(
          dp.name,
          `its port${foreign.length > 1 ? 's' : ''} ${foreign.map((p) => p.name).join(', ')} ${foreign.length > 1 ? 'are' : 'is'} not the CNI's`,
        );
        continue;
      }
      const along = ports.filter((p) => p.name !== dp.name && p.type !== 'system' && !batch.has(p.name)).map((p) => p.name);
      for (const p of [dp.name, ...along]) gone.add(p);
      steps.push({
        argv: ['ovs-dpctl', 'del-dp', dp.name],
        touches: ['links'],
        removes: {
          kind: 'interface',
          items: [`${dp.name} (Open vSwitch datapath${along.length ? `, with its ports ${along.join(', ')}` : ''})`],
        },
      });
    }
  }
  for (const l of devices)
    if (!gone.has(l.name) && !named.has(l.name))
      notes.push(`kept ${l.name}: an Open vSwitch device, which \`ip link delete\` cannot remove; it goes with its datapath`);
  return { steps, notes, warnings };
}

export const interfaces: Phase = {
  name: 'interfaces',
  summary: "delete the CNI's interfaces (bridge, overlay devices, pod veths)",
  cleanup: true,
  // The link batch is the longest step (the kernel waits out RCU grace periods) and removes no file:
  // it starts once no new pod can take the CNI's config and the BPF programs are off the devices it
  // deletes, beside cni-state's file removal.
  after: ['cni-config', 'bpf'],
  async plan(ctx) {
    const links = await listLinks(ctx.host, ctx.gaps);
    const owned = ownedLinks(links, ctx.snapshot.facts);
    const deletable = owned.filter((l) => !l.kernelOwned && l.kind !== OVS);
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
    // After the links: a datapath's veth ports are gone by then, and its own devices go with it.
    const ovs = await planOvs(ctx, owned);
    notes.push(...ovs.notes);
    const steps: PlannedStep[] = lines.length
      ? [{ argv: ['ip', '-batch', '-'], stdin: lines.join('\n') + '\n', touches: ['links'], removes: { kind: 'interface', items } }]
      : [];
    steps.push(...ovs.steps);
    if (!steps.length) return ovs.warnings.length ? { ...nothing(...notes), warnings: ovs.warnings } : nothing(...notes);
    return ovs.warnings.length ? { steps, notes, warnings: ovs.warnings } : { steps, notes };
  },
};
