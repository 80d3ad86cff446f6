// What a run would remove of a CNI's policy routing (ip rules, its routing tables, its rt_tables
// lines) and of its BPF state (tc filters and clsact qdiscs, XDP, bpffs pins), asked from the
// routes and bpf phases themselves: the doctor reports exactly what `cni-sweep run` would remove,
// by the same reads and ownership rules. Planning only reads the node.
import type { Host } from '../host/host.js';
import type { Gaps, ProfileFacts } from '../inspect.js';
import type { CniConfig } from '../parse/conflist.js';
import { bpf } from '../phases/bpf.js';
import { planPolicyRouting } from '../phases/policy-routing.js';
import type { Ctx, PhasePlan } from '../phases/types.js';
import { pidfileLive, agentsOf } from '../profiles/targets.js';
import type { Profile } from '../profiles/schema.js';
import type { Prefix } from '../util/cidr.js';

/** One evidence line per thing a run would remove, and the notes that say what could not be looked at. */
export interface PlannedLeftovers {
  policyRouting: string[];
  bpf: string[];
  notChecked: string[];
}

const hasPolicyRouting = (p: Profile) => p.routes.rules.length + p.routes.tables.length + p.routes.rtTables.length > 0;
const hasBpf = (p: Profile) =>
  p.bpf.programNames.length + p.bpf.programPatterns.length + p.bpf.filterNamePatterns.length + p.bpf.pins.length > 0;

/**
 * The context a dry run of one CNI's removal plans with: a whole run (the interfaces phase takes
 * what sits on the CNI's own devices with them, as the leftover-interfaces finding says).
 */
function dryRunCtx(host: Host, gaps: Gaps, facts: ProfileFacts, configs: CniConfig[], o: { node: string; podCidrs: Prefix[] }): Ctx {
  return {
    host,
    gaps,
    opts: {
      node: o.node,
      podCidrs: o.podCidrs,
      uncordon: false,
      dryRun: true,
      drainTimeoutSec: 0,
      backupDir: '',
      now: new Date(0),
      version: '',
    },
    profiles: [facts.profile],
    snapshot: { configs, facts: [facts], remainingConfigs: configs.filter((c) => !facts.configs.includes(c)) },
    selected: new Set(['interfaces', 'routes', 'bpf']),
    hasWork: false,
    stopped: { kubelet: [], runtime: [] },
    drained: false,
    planCleanup: () => Promise.resolve(new Map<string, PhasePlan>()),
  };
}

/** "ip -4 rule: priority 9 fwmark 0x200/0xf00 table 2004", "rt_tables entry: /etc/iproute2/rt_tables: 77 kube-router". */
function lines(plan: PhasePlan, cni: string): string[] {
  const out: string[] = [];
  for (const s of plan.steps) {
    if (!s.removes) continue;
    const family = /^-[46]$/.test(s.argv[1] ?? '') ? s.argv[1] : '';
    const kind = s.removes.kind === 'ip rule' ? `ip ${family} rule` : s.removes.kind === 'route' ? `ip ${family} route` : s.removes.kind;
    for (const item of s.removes.items) out.push(`${kind.replace(/ +/g, ' ')}: ${item.replace(` (${cni})`, '')}`);
  }
  return out;
}

/**
 * For each diagnosed CNI that is neither in use nor live (its agent runs, or its pidfile names a
 * running process: a run would refuse it) and has policy routing or BPF state in its profile: what
 * the phases would remove of it.
 */
export async function plannedLeftovers(
  host: Host,
  gaps: Gaps,
  o: { profiles: Profile[]; inUse: Set<string>; facts: Map<string, ProfileFacts>; configs: CniConfig[]; node: string; podCidrs: Prefix[] },
): Promise<Map<string, PlannedLeftovers>> {
  const out = new Map<string, PlannedLeftovers>();
  const candidates = o.profiles.filter((p) => !o.inUse.has(p.name) && (hasPolicyRouting(p) || hasBpf(p)));
  if (!candidates.length) return out;
  const procs = await host.processes().catch(() => []);
  const live = await pidfileLive(host, candidates, procs);
  for (const p of candidates) {
    const facts = o.facts.get(p.name);
    if (!facts || agentsOf(p, procs).length || live.has(p.name)) continue;
    const ctx = dryRunCtx(host, gaps, facts, o.configs, o);
    const found: PlannedLeftovers = { policyRouting: [], bpf: [], notChecked: [] };
    if (hasPolicyRouting(p)) found.policyRouting = lines(await planPolicyRouting(ctx), p.name);
    if (hasBpf(p)) {
      const plan = await bpf.plan(ctx);
      found.bpf = lines(plan, p.name);
      // "tc is not installed: tc filters not checked", the same for findmnt and the pins.
      found.notChecked = plan.notes.filter((n) => n.endsWith('not checked')).map((n) => `${p.name}'s BPF state: ${n}`);
    }
    out.set(p.name, found);
  }
  return out;
}
