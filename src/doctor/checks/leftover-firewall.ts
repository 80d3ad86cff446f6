// Firewall state of a CNI not in use, on every backend (iptables-nft, iptables-legacy, ip6tables-*)
// its native nftables tables and its ipsets, counted with the same ownership rules the firewall phase uses.
import { notInUse, plural } from '../helpers.js';
import { cniFirewall, removalFix } from '../owned.js';
import type { Check, Finding } from '../types.js';
import { protectedName } from '../../profiles/protected.js';

/** For a profile without its own sentence (leftoverWhy.firewall). */
const GENERIC = 'Its rules keep filtering and rewriting traffic for a network that no longer exists on this node.';

export const leftoverFirewall: Check = {
  name: 'leftover-firewall',
  run(v) {
    const out: Finding[] = [];
    // portmap's shared chains can be two CNIs' at once: list each chain and rule under the first.
    const reported = new Set<string>();
    const fresh = (key: string) => !reported.has(key) && Boolean(reported.add(key));
    for (const { profile, facts } of notInUse(v)) {
      const evidence: string[] = [];
      const fw = cniFirewall(v, facts);
      for (const { backend, dump, tables } of fw.iptables) {
        for (const all of tables) {
          const t = {
            table: all.table,
            chains: all.chains.filter((c) => fresh(`${backend.id} ${all.table} ${c}`)),
            // Rules inside a chain already reported were counted with it.
            deletes: all.deletes.filter(
              (r) => !reported.has(`${backend.id} ${all.table} ${r.chain}`) && fresh(`${backend.id} ${all.table} -A ${r.chain} ${r.spec}`),
            ),
          };
          if (!t.chains.length && !t.deletes.length) continue;
          const table = dump.tables.find((x) => x.name === t.table)!;
          const chains = new Set(t.chains);
          const inChains = table.rules.filter((r) => chains.has(r.chain)).length;
          const shown = t.chains.slice(0, 4).join(', ') + (t.chains.length > 4 ? `, +${t.chains.length - 4}` : '');
          const parts = [
            ...(t.chains.length ? [`${plural(t.chains.length, 'chain')} (${shown}) holding ${plural(inChains, 'rule')}`] : []),
            ...(t.deletes.length
              ? [`${plural(t.deletes.length, 'rule')} in ${[...new Set(t.deletes.map((r) => r.chain))].join(', ')}`]
              : []),
          ];
          evidence.push(`${backend.id} ${t.table}: ${parts.join('; ')}`);
        }
      }
      for (const t of fw.nft) evidence.push(`nftables: table ${t.family} ${t.name}`);
      const sets = (v.ipsets ?? []).filter(
        (x) =>
          profile.firewall.ipsetPrefixes.some((p) => x.startsWith(p)) && !protectedName(x.replace(/^inet6:/, '')) && fresh(`ipset ${x}`),
      );
      if (sets.length) evidence.push(`${plural(sets.length, 'ipset')}: ${sets.join(', ')}`);
      if (!evidence.length) continue;
      out.push({
        id: 'leftover-firewall',
        severity: 'warning',
        title: `${profile.name}'s firewall rules remain while ${profile.name} is not in use`,
        evidence,
        why: `${profile.leftoverWhy.firewall || GENERIC} cni-sweep removes only these, rule by rule, on every backend: never \`iptables -F\`.`,
        fix: removalFix(v, [profile.name]),
      });
    }
    return out;
  },
};
