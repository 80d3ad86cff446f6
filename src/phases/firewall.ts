// Removes only what the CNI owns, rule by rule: one `iptables-restore --noflush -w` per backend and
// family with -D/-F/-X lines, and `nft delete table` for its native tables. Never a flush of a
// chain or table it does not own, never a save-filter-restore of a whole dump.
import { BACKENDS, iptablesBackends, listIpsets, nftTablesPresent, ownedNftTables, saveAllIptables } from '../inspect.js';
import { firewallDeletions, restoreScript, undoScript } from '../ownership.js';
import { protectedName } from '../profiles/protected.js';
import type { PlannedStep, Phase } from './types.js';
import { plural } from '../util/plural.js';

export const firewall: Phase = {
  name: 'firewall',
  summary: "delete the CNI's iptables/ip6tables rules and chains on every backend, and its nftables tables",
  cleanup: true,
  // Netfilter's tables only: no link, route, file or namespace of the phases between depends on
  // them, so it runs beside those phases (link deletion is mostly the kernel waiting out RCU grace
  // periods), once no new pod can take the CNI's config.
  after: ['cni-config'],
  async plan(ctx) {
    const steps: PlannedStep[] = [];
    const notes: string[] = [];
    const backends = await iptablesBackends(ctx.host);
    if (!backends.length) notes.push('no iptables binaries installed: iptables rules not checked');
    else {
      for (const b of BACKENDS) {
        if (!backends.some((x) => x.id === b.id || (x.family === b.family && !x.id.includes('-'))))
          notes.push(`${b.save} is not installed: ${b.id} rules not checked`);
      }
    }
    const owned = ownedNftTables(ctx.snapshot.facts.map((f) => f.profile));
    // Independent listings: read them at the same time.
    const [dumps, present] = await Promise.all([
      saveAllIptables(ctx.host, ctx.gaps),
      owned.length ? nftTablesPresent(ctx.host, owned, ctx.gaps) : [],
    ]);
    for (const { backend: b, dump } of dumps) {
      if (!dump) continue;
      const tables = firewallDeletions(dump, {
        facts: ctx.snapshot.facts,
        remainingConfigs: ctx.snapshot.remainingConfigs,
        family: b.family,
      });
      if (!tables.length) continue;
      const chains = tables.flatMap((t) => t.chains);
      const shown = chains.length ? ` (${chains.slice(0, 4).join(', ')}${chains.length > 4 ? ', ...' : ''})` : '';
      const rules = tables.reduce((n, t) => n + t.deletes.length, 0);
      let undo: string | undefined;
      steps.push({
        argv: [b.restore, '--noflush', '-w'],
        touches: ['firewall'],
        stdin: restoreScript(tables),
        backup: {
          firewall: {
            backend: b.id,
            family: b.family,
            save: b.save,
            restore: b.restore,
            // Only a backup reads it, once: at 5000 rules it costs ~10 ms of CPU a plan without one need not pay.
            get undo() {
              return (undo ??= undoScript(dump, tables));
            },
          },
        },
        removes: {
          kind: `${b.id} rule or chain`,
          items: [...tables.flatMap((t) => t.deletes.map((r) => `${t.table} ${r.chain} rule`)), ...chains.map((c) => `chain ${c}`)],
          summary: `${plural(chains.length, 'chain')}${shown} and ${plural(rules, 'rule')} in built-in or other chains`,
        },
      });
    }
    if (owned.length) {
      if (!present) notes.push('nft is not installed: nftables tables not checked');
      if (present?.length) {
        steps.push({
          argv: ['nft', '-f', '-'],
          touches: ['nft'],
          stdin: present.map((t) => `delete table ${t.family} ${t.name}`).join('\n') + '\n',
          removes: { kind: 'nftables table', items: present.map((t) => `${t.family} ${t.name}`) },
          backup: { nftTables: present },
        });
      }
    }
    // The batches touch disjoint tables (one family or backend each), so they run side by side: each
    // is still one atomic transaction, and the kernel serialises their commits (150 racing rounds
    // against a 5000-rule table here: no failure, nothing left). A failure in one no longer stops
    // the others; the phase fails all the same, naming the batch that failed.
    if (steps.length > 1) for (const s of steps) s.concurrent = true;
    // ipsets last, after every batch: one cannot be destroyed while a rule still references it.
    const prefixes = ctx.snapshot.facts.flatMap((f) => f.profile.firewall.ipsetPrefixes);
    if (prefixes.length) {
      const all = await listIpsets(ctx.host, ctx.gaps);
      if (!all) notes.push('ipset is not installed: ipsets not checked');
      else {
        const sets = all.filter((x) => prefixes.some((p) => x.startsWith(p)) && !protectedName(x.replace(/^inet6:/, '')));
        if (sets.length)
          steps.push({
            argv: ['ipset', 'restore'],
            stdin: sets.map((x) => `destroy ${x}`).join('\n') + '\n',
            removes: { kind: 'ipset', items: sets },
            backup: { ipsets: sets },
          });
      }
    }
    return { steps, notes };
  },
};
