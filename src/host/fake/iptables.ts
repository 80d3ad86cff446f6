// iptables-restore as the fake node applies it: per table, all or nothing at COMMIT, with
// --noflush semantics (a declared chain that exists is flushed), and the kernel's refusals.
import { parseIptablesSave, tokenize, type IptDump, type IptRule, type IptTable } from '../../parse/iptables.js';
import { fail, OK, type Outcome } from './model.js';

/** Targets an iptables rule may jump to without a chain of that name. */
const BUILTIN_TARGETS = new Set([
  'ACCEPT',
  'DROP',
  'RETURN',
  'REJECT',
  'QUEUE',
  'LOG',
  'MASQUERADE',
  'SNAT',
  'DNAT',
  'REDIRECT',
  'MARK',
  'CONNMARK',
  'CT',
  'NOTRACK',
  'TCPMSS',
]);

/**
 * Applies an iptables-restore input to a backend's tables; `unknown` makes the error for a line
 * the fake does not model (it fails closed).
 */
export function iptablesRestore(
  iptables: Map<string, IptDump>,
  backend: string,
  bin: string,
  lines: string[],
  unknown: (why: string) => Error,
): Outcome {
  const dump = iptables.get(backend) ?? { header: null, tables: [] };
  let work: IptTable | null = null;
  let failed: string | null = null;
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    if (line.startsWith('*')) {
      const cur = dump.tables.find((t) => t.name === line.slice(1));
      work = cur ? structuredClone(cur) : { name: line.slice(1), chains: [], rules: [] };
      failed = null;
      continue;
    }
    if (!work) throw unknown(`restore line outside a table "${line}"`);
    const t: IptTable = work;
    if (line === 'COMMIT') {
      if (failed) return fail(1, `${bin}: line ${failed}\n`);
      const at = dump.tables.findIndex((x) => x.name === t.name);
      if (at >= 0) dump.tables[at] = t;
      else dump.tables.push(t);
      iptables.set(backend, dump);
      work = null;
      continue;
    }
    if (failed) continue;
    const why = restoreLine(t, line, unknown);
    if (why) failed = `${n + 1} failed: ${line}: ${why}`;
  }
  if (work) return fail(1, `${bin}: COMMIT expected at line ${lines.length + 1}\n`);
  return OK;
}

/** Applies one line inside a table section; returns why it failed, or null. */
function restoreLine(t: IptTable, line: string, unknown: (why: string) => Error): string | null {
  const decl = /^:(\S+) (\S+)(?: \[\d+:\d+\])?$/.exec(line);
  if (decl) {
    // With --noflush, declaring a chain that exists flushes it, as iptables-restore does.
    if (t.chains.some((c) => c.name === decl[1])) t.rules = t.rules.filter((r) => r.chain !== decl[1]);
    else t.chains.push({ name: decl[1]!, policy: decl[2] === '-' ? null : decl[2]! });
    return null;
  }
  const m = /^-([DFXAI]) (\S+)(?: (.*))?$/.exec(line);
  if (!m || ('FX'.includes(m[1]!) && m[3] !== undefined)) throw unknown(`unsupported restore line "${line}"`);
  const [, op, chain, rest = ''] = m;
  const c = t.chains.find((x) => x.name === chain);
  if (!c) return 'No chain/target/match by that name';
  if (op === 'D') {
    const want = tokenize(rest).join('\0');
    const at = t.rules.findIndex((r) => r.chain === chain && r.tokens.join('\0') === want);
    if (at < 0) return 'Bad rule (does a matching rule exist in that chain?)';
    t.rules.splice(at, 1);
    return null;
  }
  if (op === 'F') {
    t.rules = t.rules.filter((r) => r.chain !== chain);
    return null;
  }
  if (op === 'X') {
    if (c.policy !== null) return 'Invalid argument (a built-in chain)';
    if (t.rules.some((r) => r.chain === chain)) return 'Directory not empty';
    if (t.rules.some((r) => r.target === chain)) return 'Too many links';
    t.chains = t.chains.filter((x) => x !== c);
    return null;
  }
  // -A CHAIN spec, -I CHAIN n spec
  const ins = op === 'I' ? /^(\d+) (.*)$/.exec(rest) : null;
  if (op === 'I' && !ins) throw unknown(`unsupported restore line "${line}"`);
  const spec = ins ? ins[2]! : rest;
  const rule: IptRule = parseIptablesSave(`*${t.name}\n-A ${chain!} ${spec}\nCOMMIT\n`).tables[0]!.rules[0]!;
  if (rule.target && !BUILTIN_TARGETS.has(rule.target) && !t.chains.some((x) => x.name === rule.target))
    return `Couldn't load target \`${rule.target}'`;
  const inChain = t.rules.filter((r) => r.chain === chain);
  const pos = ins ? Number(ins[1]) : inChain.length + 1;
  if (pos < 1 || pos > inChain.length + 1) return 'Index of insertion too big';
  const before = inChain[pos - 1];
  if (before) t.rules.splice(t.rules.indexOf(before), 0, rule);
  else {
    const last = inChain[inChain.length - 1];
    t.rules.splice(last ? t.rules.indexOf(last) + 1 : t.rules.length, 0, rule);
  }
  return null;
}
