// The silent large-packet drop: an overlay device whose MTU is above what the uplink can carry once
// the encapsulation is added, pod veths above the overlay's MTU, and FLANNEL_MTU (what new pods
// get) above it. Only devices of CNIs in use: a leftover device is reported as a leftover.
import type { Link } from '../../parse/iproute.js';
import type { Profile } from '../../profiles/schema.js';
import { addrsOf, isUp, kubectl, plural } from '../helpers.js';
import type { Check, Finding, NodeView } from '../types.js';

/** The overlay devices of the CNIs in use (profiles' `overlays`), with the CNI each belongs to. */
function overlayKinds(v: NodeView): Array<{ match: RegExp; profile: Profile; kind: string; overhead: number }> {
  return v.allProfiles
    .filter((p) => v.inUse.has(p.name))
    .flatMap((p) => p.overlays.map((o) => ({ match: new RegExp(o.pattern), profile: p, kind: o.kind, overhead: o.overhead })));
}

/** The device of the default route (IPv4 first): what encapsulated packets leave through. */
function uplink(v: NodeView): Link | undefined {
  for (const family of [4, 6] as const) {
    const d = v.routes
      .filter((r) => r.family === family && r.dst === 'default' && r.dev)
      .sort((a, b) => (a.metric ?? 0) - (b.metric ?? 0))[0];
    const link = d && v.links.find((l) => l.ifname === d.dev);
    if (link?.mtu) return link;
  }
  return undefined;
}

/** The overlays that set the pods' MTU: the IPv4 ones when there are any (see the pod veth check). */
function primaryOverlays<T extends { kind: string }>(overlays: T[]): T[] {
  const v4 = overlays.filter((o) => !o.kind.endsWith('over IPv6'));
  return v4.length ? v4 : overlays;
}

export const mtu: Check = {
  name: 'mtu',
  run(v) {
    const out: Finding[] = [];
    const up = uplink(v);
    if (!up?.mtu) return out;
    const kinds = overlayKinds(v);
    const overlays = v.links.flatMap((l) => {
      const o = kinds.find((x) => x.match.test(l.ifname));
      if (!o || !l.mtu) return [];
      // A kernel-owned device (tunl0) exists wherever its module is loaded; only an addressed, up one carries traffic.
      if (o.profile.interfaces.kernelOwned.includes(l.ifname) && !(isUp(l.flags) && addrsOf(v, l.ifname).length)) return [];
      return [{ link: l, ...o, cni: o.profile.name, limit: up.mtu! - o.overhead }];
    });
    for (const o of overlays.filter((x) => x.link.mtu! > x.limit)) {
      out.push({
        id: 'mtu-overlay',
        severity: 'error',
        title: `${o.link.ifname}'s MTU ${o.link.mtu} is above what ${up.ifname} can carry after ${o.kind} (${o.limit})`,
        evidence: [
          `${o.link.ifname}: mtu ${o.link.mtu} (${o.kind} adds ${o.overhead} bytes)`,
          `${up.ifname}: mtu ${up.mtu} (uplink: the default route's device)`,
        ],
        why:
          `Packets above ${o.limit} bytes leave the pod, grow past ${up.mtu} bytes when encapsulated, and are dropped on ${up.ifname} without an error or ICMP: ` +
          'small requests and health checks work, large transfers stall. Set the device right now with the command below, and fix the source so it stays right ' +
          `(${o.profile.mtuSource || `${o.cni}'s MTU setting`}); pods created meanwhile keep their MTU.`,
        fix: ['ip', 'link', 'set', 'dev', o.link.ifname, 'mtu', String(o.limit)],
      });
    }

    // What pods' traffic must fit: the smallest overlay device in use, or the uplink itself (host-gw, BGP).
    // On a dual-stack overlay the IPv4 device sets the pods' MTU (flanneld derives FLANNEL_MTU from it);
    // IPv6 pods learn the IPv6 overlay's smaller MTU from the node's Packet Too Big, which IPv6 never filters.
    const carriers = primaryOverlays(overlays);
    const target = carriers.length ? carriers.reduce((a, b) => (a.link.mtu! <= b.link.mtu! ? a : b)).link : up;
    const targetMtu = target.mtu!;
    const targetText = `${target.ifname}: mtu ${targetMtu} (${overlays.length ? 'the overlay pod traffic leaves through' : 'uplink; no overlay device'})`;
    // Pod veths: ports of the bridges of a CNI in use that bridges its pods (its configs' bridges and
    // its own device names, cni0), or named like the veths of one that routes them (cali*).
    const using = v.allProfiles.filter((p) => v.inUse.has(p.name));
    const bridges = new Set(
      using.filter((p) => p.interfaces.bridgePorts).flatMap((p) => [...(v.facts.get(p.name)?.bridges ?? []), ...p.interfaces.names]),
    );
    const vethNames = using.filter((p) => !p.interfaces.bridgePorts).flatMap((p) => p.interfaces.patterns.map((r) => new RegExp(r)));
    const veths = v.links.filter(
      (l) =>
        l.linkinfo?.info_kind === 'veth' &&
        ((l.master && bridges.has(l.master)) || vethNames.some((r) => r.test(l.ifname))) &&
        (l.mtu ?? 0) > targetMtu,
    );
    if (veths.length) {
      out.push({
        id: 'mtu-pod-veth',
        severity: 'warning',
        title: `${plural(veths.length, 'pod veth')} ${veths.length === 1 ? 'has' : 'have'} an MTU above ${target.ifname}'s (${targetMtu})`,
        evidence: [...veths.map((l) => `${l.ifname}${l.master ? ` on ${l.master}` : ''}: mtu ${l.mtu}`), targetText],
        why:
          `These pods send packets up to their own MTU; whatever is above ${targetMtu} bytes must be fragmented or is dropped at ${target.ifname}, and where ICMP is filtered large transfers stall. ` +
          'A pod keeps the MTU it was created with: once new pods get the right MTU, drain the node (evictions respect PodDisruptionBudgets; DaemonSet pods stay and keep their MTU until they are restarted) and uncordon it.',
        // Not a mass delete: a drain evicts through the API, so PodDisruptionBudgets hold, and the pods come back with the new MTU.
        fix: kubectl(v, 'drain', v.node, '--ignore-daemonsets', '--delete-emptydir-data'),
        then: kubectl(v, 'uncordon', v.node),
        removedWith: using.map((p) => p.name),
      });
    }

    // FLANNEL_MTU, which the flannel plugin gives every new pod: subnet.env's CNI in use (not a composite of it).
    const envMtu = v.subnetEnv.env?.mtu;
    const envCni = using.find((p) => p.state.subnetEnv === v.subnetEnv.path && !p.includes.length);
    if (envCni && envMtu !== undefined) {
      const flannelOverlays = primaryOverlays(overlays.filter((o) => o.cni === envCni.name));
      const limit = flannelOverlays.length ? Math.min(...flannelOverlays.map((o) => o.link.mtu!)) : up.mtu;
      const dev = flannelOverlays.find((o) => o.link.mtu === limit)?.link ?? up;
      if (envMtu > limit) {
        out.push({
          id: 'mtu-flannel-env',
          severity: 'warning',
          title: `FLANNEL_MTU=${envMtu} in ${v.subnetEnv.path} is above ${dev.ifname}'s MTU ${limit}`,
          evidence: [`${v.subnetEnv.path}: FLANNEL_MTU=${envMtu}`, `${dev.ifname}: mtu ${limit}`],
          why:
            'The flannel CNI plugin gives every new pod FLANNEL_MTU, so new pods get an MTU the network cannot carry. ' +
            'flanneld writes subnet.env from its device when it starts: restart the kube-flannel pod on this node.',
          fix: kubectl(v, '-n', 'kube-flannel', 'delete', 'pod', '-l', 'app=flannel', '--field-selector', `spec.nodeName=${v.node}`),
        });
      }
    }
    return out;
  },
};
