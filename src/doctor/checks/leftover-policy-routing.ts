// ip rules, routing tables and rt_tables lines of a CNI not in use (profiles' routes.rules, .tables,
// .rtTables: Cilium's proxy rules at priorities 9 and 10 to tables 2004 and 2005, kube-router's
// tables 77-79): what the routes phase of a run removes, as it would plan it (planned.ts).
import { notInUse, plural } from '../helpers.js';
import { removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';

/** For a profile without its own sentence (leftoverWhy.policyRouting). */
const GENERIC =
  'They are looked up before the main table and send matching traffic to routing tables of a network that no longer exists on this node.';

export const leftoverPolicyRouting: Check = {
  name: 'leftover-policy-routing',
  run(v) {
    const out: Finding[] = [];
    const reported = new Set<string>();
    for (const { profile } of notInUse(v)) {
      const evidence = (v.planned?.get(profile.name)?.policyRouting ?? []).filter((e) => !reported.has(e));
      if (!evidence.length) continue;
      for (const e of evidence) reported.add(e);
      const count = (re: RegExp) => evidence.filter((e) => re.test(e)).length;
      const parts = [
        plural(count(/^ip -[46] rule:/), 'ip rule'),
        plural(count(/^ip -[46] route:/), 'route in its tables', 'routes in its tables'),
        plural(count(/^rt_tables entry:/), 'rt_tables entry', 'rt_tables entries'),
      ].filter((t) => !t.startsWith('0 '));
      out.push({
        id: 'leftover-policy-routing',
        severity: 'warning',
        title: `${profile.name}'s policy routing remains while ${profile.name} is not in use: ${parts.join(', ')}`,
        evidence,
        why: `${profile.leftoverWhy.policyRouting || GENERIC} cni-sweep removes each rule by its exact selector and flushes only the tables wholly ${profile.name}'s.`,
        fix: removalFix(v, [profile.name]),
      });
    }
    return out;
  },
};
