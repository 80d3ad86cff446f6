// kube-proxy's or a CNI's chains in iptables-nft and iptables-legacy at once: two components run
// with different iptables modes (a host iptables on legacy, a kube-proxy or CNI image on nft), and
// every packet goes through both rule sets.
import { plural } from '../helpers.js';
import type { Check, Finding } from '../types.js';

export const iptablesSplit: Check = {
  name: 'iptables-split',
  run(v) {
    const out: Finding[] = [];
    const prefixes = ['KUBE-', 'CNI-', ...v.allProfiles.flatMap((p) => p.firewall.chainPrefixes)];
    for (const family of [4, 6] as const) {
      const sides = v.iptables
        .filter((x) => x.backend.family === family && /-(nft|legacy)$/.test(x.backend.id))
        .map(({ backend, dump }) => {
          const chains = dump.tables.flatMap((t) =>
            t.chains
              .filter((c) => c.policy === null && prefixes.some((p) => c.name.startsWith(p)))
              .map((c) => ({ table: t.name, name: c.name })),
          );
          const rules = dump.tables.flatMap((t) => {
            const here = new Set(chains.filter((c) => c.table === t.name).map((c) => c.name));
            return t.rules.filter((r) => here.has(r.chain) || (r.target !== undefined && here.has(r.target)));
          }).length;
          return { id: backend.id, chains, rules };
        })
        .filter((s) => s.chains.length);
      // kube-proxy's iptables-wrapper picks the mode with more rules: the other side is likely the stale one.
      const [more, fewer] = [...sides].sort((a, b) => b.rules - a.rules);
      if (!more || !fewer) continue;
      out.push({
        id: 'iptables-split-backends',
        severity: 'warning',
        title: `${family === 4 ? 'iptables' : 'ip6tables'} rules of kube-proxy or a CNI are split across ${sides.map((s) => s.id).join(' and ')}`,
        evidence: sides.map((s) => {
          const names = [...new Set(s.chains.map((c) => c.name))];
          return `${s.id}: ${plural(names.length, 'chain')} (${names.slice(0, 5).join(', ')}${names.length > 5 ? `, +${names.length - 5}` : ''}), ${plural(s.rules, 'rule')} in or to them`;
        }),
        why:
          'Packets go through both rule sets, so kube-proxy and the CNI each see only part of the rules: Services and pod traffic fail intermittently, and rules one component removes stay in the other backend. ' +
          `One component runs iptables in the other mode (host iptables vs. the kube-proxy or CNI image). ${fewer.id} holds fewer rules and is probably the stale side; ` +
          `make every component use ${more.id.replace(/^ip6?tables-/, '')}, then remove what is left in ${fewer.id}.`,
        fix: null,
      });
    }
    return out;
  },
};
