// A pod sandbox the runtime still calls READY but whose network is gone: its namespace holds
// nothing but `lo` (the CNI's veths were deleted under it, e.g. by a cleanup while the runtime's
// shims and pause processes kept running), or its address belongs to the network of a CNI no longer
// in use. kubelet sees a READY sandbox and never recreates it: the pod stays up without a network.
import { contains, parsePrefix } from '../../util/cidr.js';
import { notInUse, plural } from '../helpers.js';
import { cniLinks } from '../owned.js';
import type { Check, Finding, PodView } from '../types.js';

const label = (p: PodView) =>
  `${p.namespace && p.name ? `${p.namespace}/${p.name}` : p.id.slice(0, 13)} (sandbox ${p.id.slice(0, 13)}${p.ips.length ? `, ${p.ips.join(', ')}` : ''})`;

const WHY =
  'kubelet sees a READY sandbox and never recreates it, so the pod keeps running without a network. ' +
  'Stopping the sandbox makes kubelet create it again on the network configured now; then `crictl rmp <ids>` removes the old one.';

export const podNetwork: Check = {
  name: 'pod-network',
  run(v) {
    const pods = v.runtime.pods ?? [];
    const out: Finding[] = [];
    const onlyLo = pods.filter((p) => p.interfaces !== null && p.interfaces.every((i) => i === 'lo'));
    if (onlyLo.length)
      out.push({
        id: 'pod-without-network',
        severity: 'error',
        title: `${plural(onlyLo.length, 'READY pod')} ${onlyLo.length === 1 ? 'has' : 'have'} no network interface but lo`,
        evidence: onlyLo.map((p) => `pod ${label(p)}: ${p.netns} holds only lo`),
        why: WHY,
        fix: ['crictl', 'stopp', ...onlyLo.map((p) => p.id)],
      });
    // Addresses of a CNI that is not in use (its config gone): the network behind them is gone too. The
    // node's own subnet when known: another CNI's pool may lie inside the old pod network (a migration).
    // Gone means its config and its interfaces are gone: a CNI whose bridge is still there (a migration
    // in progress) still serves the pods it wired.
    const gone = notInUse(v)
      .filter(({ facts }) => !cniLinks(v, facts).length)
      .flatMap(({ profile, facts }) =>
        (facts.nodeSubnets.length ? facts.nodeSubnets : facts.podNetworks).map((net) => ({ cni: profile.name, net })),
      );
    const stale: Array<{ pod: PodView; cni: string; net: string }> = [];
    for (const p of pods) {
      if (onlyLo.includes(p)) continue;
      for (const ip of p.ips) {
        const a = parsePrefix(ip);
        const hit = a && gone.find((g) => contains(g.net, a));
        if (hit) {
          stale.push({ pod: p, cni: hit.cni, net: hit.net.text });
          break;
        }
      }
    }
    if (stale.length)
      out.push({
        id: 'pod-on-removed-network',
        severity: 'error',
        title: `${plural(stale.length, 'READY pod')} ${stale.length === 1 ? 'is' : 'are'} on the network of a CNI that is not in use`,
        evidence: stale.map((s) => `pod ${label(s.pod)}: in ${s.cni}'s network ${s.net}, and no config of ${s.cni} is in use`),
        why: WHY,
        fix: ['crictl', 'stopp', ...stale.map((s) => s.pod.id)],
      });
    return out;
  },
};
