// NetworkPolicy objects in a cluster whose pods get their network from a CNI that does not enforce
// them (profiles' networkPolicy: Flannel): the API server stores them, nothing enforces them. A
// composite that includes an enforcing CNI does (Canal: Flannel plus Calico policy).
import { plural } from '../helpers.js';
import type { Check } from '../types.js';

export const networkPolicy: Check = {
  name: 'network-policy',
  run(v) {
    const policies = v.kube.networkPolicies;
    const using = v.allProfiles.filter((p) => v.inUse.has(p.name));
    const lax = using.find((p) => p.networkPolicy.enforces === 'no');
    if (!policies?.length || !lax || using.some((p) => p.networkPolicy.enforces === 'yes')) return [];
    const label = lax.name.charAt(0).toUpperCase() + lax.name.slice(1);
    const used = v.configs.find((c) => c.config);
    return [
      {
        id: 'networkpolicy-unenforced',
        severity: 'warning',
        title: `${plural(policies.length, 'NetworkPolicy object')} ${policies.length === 1 ? 'exists' : 'exist'}, but this node's pods use ${label}, which does not enforce them`,
        evidence: [
          `kubectl get networkpolicies -A: ${policies
            .slice(0, 5)
            .map((p) => `${p.namespace}/${p.name}`)
            .join(', ')}${policies.length > 5 ? `, +${policies.length - 5}` : ''}`,
          `runtime uses: ${used?.file} (${lax.name})`,
        ],
        why:
          `The API server accepts NetworkPolicy objects whatever the CNI; with ${label} alone nothing on this node enforces them and traffic flows as if they did not exist.` +
          (lax.networkPolicy.advice ? ` ${lax.networkPolicy.advice}` : ''),
        fix: null,
      },
    ];
  },
};
