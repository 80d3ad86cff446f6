// The fake node's policy routing, read side: ip rules and the routes of numbered tables other than
// main, as `ip -N -j -<family> rule show` and `ip -j -<family> route show table <n>` print them
// (iproute2 6.1). Writes are not modelled: a batch that deletes rules fails closed in FakeHost.
import type { ExecResult } from '../host.js';
import type { FakeHost } from '../fake.js';

/** A rule as `ip -N -j rule show` prints it: priority, matches, table by number. */
export type FakeRule = { priority: number; table: string } & Record<string, unknown>;

interface RulesState {
  rules: { 4: FakeRule[]; 6: FakeRule[] };
  /** Routes of numbered tables (not main), as `ip -j route show table <n>` prints them. */
  tables: { 4: Map<number, unknown[]>; 6: Map<number, unknown[]> };
}

const states = new WeakMap<FakeHost, RulesState>();

// The kernel's own rules: local, main and (IPv4) default.
const DEFAULTS = {
  4: [
    { priority: 0, src: 'all', table: '255' },
    { priority: 32766, src: 'all', table: '254' },
    { priority: 32767, src: 'all', table: '253' },
  ],
  6: [
    { priority: 0, src: 'all', table: '255' },
    { priority: 32766, src: 'all', table: '254' },
  ],
};

function state(host: FakeHost): RulesState {
  let s = states.get(host);
  if (!s)
    states.set(
      host,
      (s = { rules: { 4: structuredClone(DEFAULTS[4]), 6: structuredClone(DEFAULTS[6]) }, tables: { 4: new Map(), 6: new Map() } }),
    );
  return s;
}

/** An ip rule, kept in priority order as the kernel lists them. */
export function addRule(host: FakeHost, family: 4 | 6, rule: FakeRule): void {
  const rules = state(host).rules[family];
  rules.push(rule);
  rules.sort((a, b) => a.priority - b.priority);
}

/** A route in a numbered table, in `ip -j route show table <n>`'s shape ({ type, dst, dev, scope ... }). */
export function addTableRoute(host: FakeHost, family: 4 | 6, table: number, route: Record<string, unknown>): void {
  const tables = state(host).tables[family];
  tables.set(table, [...(tables.get(table) ?? []), route]);
}

export function rulesQuery(host: FakeHost, argv: string[]): ExecResult | undefined {
  const a = argv.join(' ');
  const rules = /^ip -N -j -([46]) rule show$/.exec(a);
  if (rules) return { code: 0, stdout: JSON.stringify(state(host).rules[Number(rules[1]) as 4 | 6]) + '\n', stderr: '' };
  const table = /^ip -j -([46]) route show table (\d+)$/.exec(a);
  if (table && table[2] !== '254') {
    const family = Number(table[1]) as 4 | 6;
    const routes = state(host).tables[family].get(Number(table[2]));
    // A table nothing was ever added to does not exist.
    if (!routes?.length) return { code: 2, stdout: '', stderr: `Error: ipv${family}: FIB table does not exist.\nDump terminated\n` };
    return { code: 0, stdout: JSON.stringify(routes) + '\n', stderr: '' };
  }
  return undefined;
}
