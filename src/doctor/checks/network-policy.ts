// NetworkPolicy objects in a cluster whose pods get their network from Flannel alone: the API
// server stores them, nothing enforces them. Canal (Flannel plus Calico policy) does.
import { plural } from '../helpers.js';
import type { Check } from '../types.js';

/** CNIs that enforce NetworkPolicy; a composite counts when it includes one (Canal includes Calico). */
const ENFORCING = new Set(['calico']);

export const networkPolicy: Check = {
  name: 'network-policy',
  run(v) {
    const policies = v.kube.networkPolicies;
    if (!policies?.length || !v.inUse.has('flannel') || [...v.inUse].some((n) => ENFORCING.has(n))) return [];
    const used = v.configs.find((c) => c.config);
    return [
      {
        id: 'networkpolicy-unenforced',
        severity: 'warning',
        title: `${plural(policies.length, 'NetworkPolicy object')} ${policies.length === 1 ? 'exists' : 'exist'}, but this node's pods use Flannel, which does not enforce them`,
        evidence: [
          `kubectl get networkpolicies -A: ${policies
            .slice(0, 5)
            .map((p) => `${p.namespace}/${p.name}`)
            .join(', ')}${policies.length > 5 ? `, +${policies.length - 5}` : ''}`,
          `runtime uses: ${used?.file} (flannel)`,
        ],
        why:
          'The API server accepts NetworkPolicy objects whatever the CNI; with Flannel alone nothing on this node enforces them and traffic flows as if they did not exist. ' +
          'Install Canal (Flannel networking with Calico policy), or replace Flannel with Calico or Cilium.',
        fix: null,
      },
    ];
  },
};
