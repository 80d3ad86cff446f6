// Part of the routes phase: policy routing a CNI adds beside its routes (profile `routes.rules`, `routes.tables`,
// `routes.rtTables`): its ip rules, deleted one by one by their exact selector; the routing tables
// that are wholly its own, flushed (their routes are in the backup's route listings); and the lines
// it appended to iproute2's rt_tables, removed with the rest of the file left byte for byte.
import { underRoot } from '../host/host.js';
import type { Gaps } from '../inspect.js';
import { containment, listLinks } from '../inspect.js';
import { dyingDevices, ownedLinks, routeLabel, type FamilyRoute } from '../ownership.js';
import { parseRoutes } from '../parse/iproute.js';
import type { Profile } from '../profiles/schema.js';
import { batchSafeDevice } from '../util/names.js';
import type { Ctx, PhasePlan, PlannedStep } from './types.js';
import { nothing } from './types.js';
import type { Host } from '../host/host.js';

/** Where iproute2 reads table names, and where kube-router appends them (pkg/utils/linux_routing.go): the first that exists. */
export const RT_TABLES_FILES = ['/etc/iproute2/rt_tables', '/usr/lib/iproute2/rt_tables', '/usr/share/iproute2/rt_tables'];

/** One rule as `ip -N -j rule show` prints it (-N: tables by number, whatever rt_tables names them). */
export interface IpRule {
  priority?: number;
  src?: string;
  srclen?: number;
  dst?: string;
  dstlen?: number;
  not?: null | boolean;
  tos?: string;
  fwmark?: string;
  fwmask?: string;
  iif?: string;
  oif?: string;
  l3mdev?: null | boolean;
  uidrange?: string;
  ipproto?: string;
  sport?: string | number;
  dport?: string | number;
  tun_id?: string | number;
  suppress_prefixlength?: number;
  suppress_ifgroup?: string;
  table?: string;
  [k: string]: unknown;
}

/** Selectors besides the firewall mark: a rule with any of them selects more than a mark. */
const OTHER_SELECTORS = ['tos', 'iif', 'oif', 'l3mdev', 'uidrange', 'ipproto', 'sport', 'dport', 'tun_id', 'not'];

/** Whether a rule selects by its firewall mark alone (from all, to all, no other match). */
const markOnly = (r: IpRule) =>
  r.fwmark !== undefined &&
  (r.src === undefined || r.src === 'all') &&
  (r.dst === undefined || r.dst === 'all') &&
  OTHER_SELECTORS.every((k) => r[k] === undefined || r[k] === false);

/** Whether a rule is one a profile adds: it looks a table up and every field the profile gives matches. */
export function ruleOwner(r: IpRule, profiles: Profile[]): Profile | undefined {
  if (r.table === undefined || !/^\d+$/.test(r.table)) return undefined;
  const table = Number(r.table);
  return profiles.find((p) =>
    p.routes.rules.some(
      (s) =>
        (s.priority === undefined || s.priority === r.priority) &&
        (s.table === undefined || s.table === table) &&
        (!s.fwmark || markOnly(r)),
    ),
  );
}

/**
 * The `ip rule del` selector for exactly this rule: its priority, table and every match it has. The
 * kernel deletes the first rule with all of these; any such rule has the same priority and table,
 * so it is owned by the same spec. Null when a field could not be given back safely (a device
 * name `ip -batch` cannot take as one word, a field this code does not know).
 */
export function ruleDeleteLine(r: IpRule): string | null {
  const parts = ['rule', 'del'];
  if (r.priority === undefined || r.table === undefined) return null;
  parts.push('priority', String(r.priority));
  const known = new Set(['priority', 'src', 'srclen', 'dst', 'dstlen', 'table', 'protocol', 'flags']);
  if (r.not !== undefined) {
    parts.push('not');
    known.add('not');
  }
  if (r.src && r.src !== 'all') parts.push('from', r.srclen !== undefined ? `${r.src}/${r.srclen}` : r.src);
  if (r.dst && r.dst !== 'all') parts.push('to', r.dstlen !== undefined ? `${r.dst}/${r.dstlen}` : r.dst);
  const simple: Array<[string, string]> = [
    ['tos', 'tos'],
    ['iif', 'iif'],
    ['oif', 'oif'],
    ['uidrange', 'uidrange'],
    ['ipproto', 'ipproto'],
    ['sport', 'sport'],
    ['dport', 'dport'],
    ['tun_id', 'tun_id'],
    ['suppress_prefixlength', 'suppress_prefixlength'],
    ['suppress_ifgroup', 'suppress_ifgroup'],
  ];
  if (r.fwmark !== undefined) {
    parts.push('fwmark', r.fwmask !== undefined ? `${r.fwmark}/${r.fwmask}` : r.fwmark);
    known.add('fwmark').add('fwmask');
  }
  if (r.l3mdev !== undefined) {
    parts.push('l3mdev');
    known.add('l3mdev');
  }
  for (const [k, word] of simple) {
    const v = r[k];
    if (v === undefined) continue;
    known.add(k);
    if (typeof v !== 'string' && typeof v !== 'number') return null;
    const text = String(v);
    if (!/^[A-Za-z0-9_.:/@-]+$/.test(text) || ((k === 'iif' || k === 'oif') && !batchSafeDevice(text))) return null;
    parts.push(word, text);
  }
  // iif/oif carry "[detached]" flags as separate keys in some versions: anything unknown keeps the rule.
  if (Object.keys(r).some((k) => !known.has(k) && !['iif_detached', 'oif_detached'].includes(k))) return null;
  parts.push('table', r.table);
  return parts.join(' ');
}

/** A rule for a note, as `ip rule` shows it. */
const ruleLabel = (line: string) => line.replace(/^rule del /, '');
/** A rule as a note names it: its selector, or ip's JSON when it has a match that cannot be given back. */
const ruleText = (r: IpRule) => {
  const line = ruleDeleteLine(r);
  return line ? ruleLabel(line) : JSON.stringify(r);
};

/**
 * Lines of an rt_tables file that a profile appended: `<number> <name>` with both matching one of
 * its entries (decimal, as kube-router writes them). Returns the 0-based line numbers.
 */
export function rtTablesLines(text: string, entries: Profile['routes']['rtTables']): number[] {
  const out: number[] = [];
  text.split('\n').forEach((line, i) => {
    const m = /^[ \t]*(\d+)[ \t]+(\S+)[ \t]*$/.exec(line);
    if (m && entries.some((e) => e.table === Number(m[1]) && e.name === m[2])) out.push(i);
  });
  return out;
}

/** The sed expression that deletes exactly those lines, whatever else the file holds. */
export function rtTablesSed(entry: { table: number; name: string }): string {
  return `/^[[:space:]]*${entry.table}[[:space:]]+${entry.name.replace(/\./g, '\\.')}[[:space:]]*$/d`;
}

async function readJson<T>(host: Host, argv: string[], gaps: Gaps, missingOk?: RegExp): Promise<T | null> {
  const r = await host.query(argv);
  if (!r) {
    gaps.add('ip', 'not installed');
    return null;
  }
  if (r.code !== 0) {
    if (missingOk?.test(r.stderr)) return [] as T;
    gaps.add(argv.join(' '), r.stderr.trim() || `exit ${r.code}`);
    return null;
  }
  try {
    return JSON.parse(r.stdout || '[]') as T;
  } catch (err) {
    gaps.add(argv.join(' '), err);
    return null;
  }
}

/** The routes phase's second half: the CNI's ip rules, its own tables and its rt_tables lines. */
export async function planPolicyRouting(ctx: Ctx): Promise<PhasePlan> {
  const profiles = ctx.snapshot.facts.map((f) => f.profile);
  const ruleProfiles = profiles.filter((p) => p.routes.rules.length);
  const tables = [...new Set(profiles.flatMap((p) => p.routes.tables))].sort((a, b) => a - b);
  const entries = profiles.flatMap((p) => p.routes.rtTables);
  if (!ruleProfiles.length && !tables.length && !entries.length) return nothing();
  const steps: PlannedStep[] = [];
  const notes: string[] = [];
  // Routes through devices the interfaces phase deletes go with them.
  const dying =
    tables.length && ctx.selected.has('interfaces')
      ? dyingDevices(ownedLinks(await listLinks(ctx.host, ctx.gaps), ctx.snapshot.facts))
      : new Set<string>();
  for (const family of [4, 6] as const) {
    const lines: string[] = [];
    const items: string[] = [];
    /** Rules that stay, by the table they look up: such a table is not flushed. */
    const staying = new Map<string, IpRule>();
    if (ruleProfiles.length || tables.length) {
      ctx.gaps.saw('ip rule');
      const all = await readJson<IpRule[]>(ctx.host, ['ip', '-N', '-j', `-${family}`, 'rule', 'show'], ctx.gaps);
      for (const r of all ?? []) {
        const owner = ruleOwner(r, ruleProfiles);
        const line = owner ? ruleDeleteLine(r) : null;
        if (!owner || !line) {
          if (r.table !== undefined && !staying.has(r.table)) staying.set(r.table, r);
          if (owner)
            notes.push(`kept ip -${family} rule ${JSON.stringify(r)}: it has a match cni-sweep cannot give back to ip rule del exactly`);
          continue;
        }
        lines.push(line);
        items.push(`${ruleLabel(line)} (${owner.name})`);
      }
    }
    if (lines.length)
      steps.push({ argv: ['ip', `-${family}`, '-batch', '-'], stdin: lines.join('\n') + '\n', removes: { kind: 'ip rule', items } });
    const flushes: string[] = [];
    const routeItems: string[] = [];
    for (const t of tables) {
      // A table another rule looks up (a site's source routing to table 102) is that rule's too.
      const user = staying.get(String(t));
      if (user) {
        notes.push(`kept table ${t} (IPv${family}): ip -${family} rule ${ruleText(user)}, which is not the CNI's, looks it up`);
        continue;
      }
      const argv = ['ip', '-j', `-${family}`, 'route', 'show', 'table', String(t)];
      // A table nothing was ever added to does not exist: nothing to flush.
      const routes = await readJson<unknown[]>(ctx.host, argv, ctx.gaps, /FIB table does not exist/);
      if (!routes) continue;
      const parsed = parseRoutes(JSON.stringify(routes)).map((r): FamilyRoute => ({ ...r, table: String(t), family }));
      const left = parsed.filter((r) => !(r.dev && dying.has(r.dev)));
      if (!left.length) continue;
      flushes.push(`route flush table ${t}`);
      for (const r of left) routeItems.push(routeLabel(r));
    }
    if (flushes.length)
      steps.push({
        argv: ['ip', `-${family}`, '-batch', '-'],
        stdin: flushes.join('\n') + '\n',
        removes: { kind: 'route', items: routeItems },
      });
  }
  if (entries.length) {
    const contained = containment(ctx.host);
    for (const file of RT_TABLES_FILES) {
      const type = await ctx.host.entryType(file);
      if (type === null) continue;
      ctx.gaps.saw(file);
      const text = await ctx.host.readFile(file).catch((err: unknown) => {
        ctx.gaps.add(file, err);
        return null;
      });
      if (text === null) continue;
      const found = rtTablesLines(text, entries);
      if (!found.length) continue;
      // A symlink above it could lead sed out of --root: the file stays.
      if (!(await contained(file))) {
        notes.push(`kept ${file}: a directory above it is a symlink`);
        continue;
      }
      if (type !== 'file') {
        notes.push(`kept ${file}: it is a ${type}, not a file: its entries ${found.map((i) => text.split('\n')[i]).join(', ')} stay`);
        continue;
      }
      const lines = found.map((i) => text.split('\n')[i]!.trim());
      const used = entries.filter((e) => lines.some((l) => rtTablesLines(l, [e]).length));
      steps.push({
        argv: ['sed', '-i', '-E', ...used.flatMap((e) => ['-e', rtTablesSed(e)]), '--', underRoot(ctx.host.root, file)],
        removes: { kind: 'rt_tables entry', items: lines.map((l) => `${file}: ${l.replace(/[ \t]+/g, ' ')}`) },
        backup: { files: [file] },
      });
    }
  }
  if (!steps.length) return nothing(...notes);
  return { steps, notes };
}
