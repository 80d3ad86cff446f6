// A CNI bridge (cni0) holding an address outside the node's pod CIDR: left over from another
// cluster or an earlier pod CIDR. The node's own CIDR comes from its Node object when a kubeconfig
// was given, else --pod-cidr stands in for it.
import { contains, parsePrefix } from '../../util/cidr.js';
import { addrsOf, sweepFix } from '../helpers.js';
import { ownedLinks } from '../../ownership.js';
import type { Check, Finding, NodeView } from '../types.js';

/**
 * The CNIs whose interfaces phase removes this bridge: those of the configs that name it, else (no
 * config names it) those whose profile names the device (cni0: Flannel's). Only CNIs that own it
 * by the phases' rules, and no composite whose parts say it (Canal is Flannel's bridge plus Calico).
 */
function bridgeOwners(v: NodeView, bridge: string): string[] {
  const link = v.links.filter((l) => l.ifname === bridge);
  const owns = (name: string) => {
    const facts = v.facts.get(name);
    return facts !== undefined && !facts.profile.includes.length && ownedLinks(link, [facts]).length > 0;
  };
  const naming = v.configs.filter((c) => c.config?.bridges.includes(bridge));
  const candidates = naming.length ? naming.flatMap((c) => c.owners) : v.allProfiles.map((p) => p.name);
  return [...new Set(candidates)].filter(owns);
}

export const bridgePodCidr: Check = {
  name: 'bridge-pod-cidr',
  run(v) {
    const fromNode = v.kube.nodePodCidrs?.length ? v.kube.nodePodCidrs : null;
    const cidrs = fromNode ?? v.podCidrs;
    if (!cidrs.length) return [];
    const source = fromNode ? `pod CIDR of Node ${v.node} (spec.podCIDRs)` : 'pod CIDR (--pod-cidr)';
    const out: Finding[] = [];
    const valid = v.configs.filter((c) => c.config);
    // cni0 by name, and every bridge a config names (flannel's delegate, the bridge plugin).
    const bridges = [...new Set(['cni0', ...valid.flatMap((c) => c.config!.bridges)])];
    for (const bridge of bridges) {
      if (!v.links.some((l) => l.ifname === bridge)) continue;
      const outside = addrsOf(v, bridge).filter((a) => {
        const p = parsePrefix(a)!;
        const mine = cidrs.filter((c) => c.family === p.family);
        return mine.length > 0 && !mine.some((c) => contains(c, { ...p, len: p.family === 4 ? 32 : 128 }));
      });
      if (!outside.length) continue;
      // A known CNI's bridge goes with `run --cni <it> --only interfaces`; anyone else's by hand.
      const owners = bridgeOwners(v, bridge);
      out.push({
        id: 'bridge-outside-pod-cidr',
        severity: 'error',
        title: `${bridge} holds ${outside.join(', ')}, outside the node's pod CIDR ${cidrs.map((c) => c.text).join(', ')}`,
        evidence: [`${bridge}: ${outside.join(', ')}`, `${source}: ${cidrs.map((c) => c.text).join(', ')}`],
        why:
          `New pods fail with \`failed to set bridge addr: "${bridge}" already has an IP address different from <gateway>\`: the bridge kept the address of another cluster or an earlier pod CIDR, ` +
          'and pods that do come up get addresses nothing routes to. Deleting the bridge lets the CNI create it again with the right gateway at the next pod.',
        fix: owners.length ? sweepFix(v, owners, ['interfaces']) : ['ip', 'link', 'delete', bridge],
      });
    }
    return out;
  },
};
