// The fake node's nftables tables as nft (v1.0.6) lists and changes them. The fake keeps a table's
// family and name only, so a listed table is empty. Reads: `-j list tables`, `list table FAMILY
// NAME`, `list flowtables` (every table, the iptables-nft backends' ones too, none with a
// flowtable); what the backup saves: `list ruleset`, `list table FAMILY NAME`; writes: `-f -` with
// `delete table FAMILY NAME` lines (one transaction, all or nothing, as nft applies a file) and
// `-f FILE` loading saved tables back. Any other form or line throws (fails closed).
import type { ExecResult } from '../host.js';
import type { IptDump } from '../../parse/iptables.js';
import { fileContent } from './fs.js';
import { fail, OK, printed, refused, type FsNode, type Outcome } from './model.js';

export interface NftState {
  nftTables: Array<{ family: string; name: string }>;
  fs: Map<string, FsNode>;
  /** The iptables state per backend: an iptables-nft backend's tables are nftables tables of the ip or ip6 family. */
  iptables?: Map<string, IptDump>;
}

const tableText = (family: string, name: string) => `table ${family} ${name} {\n}\n`;

export function nftQuery(node: NftState, argv: string[]): ExecResult | undefined {
  const a = argv.join(' ');
  if (a === 'nft -j list tables') {
    const items = node.nftTables.map((t, i) => ({ table: { family: t.family, name: t.name, handle: i + 1 } }));
    return printed(
      JSON.stringify({
        nftables: [{ metainfo: { version: '1.0.6', release_name: 'Lester Gooch #5', json_schema_version: 1 } }, ...items],
      }) + '\n',
    );
  }
  if (a === 'nft list flowtables') {
    // nft 1.0.6's do_list_flowtables: every table, in the order they were made (here: iptables-nft's first).
    const xtables = (
      [
        ['iptables-nft', 'ip'],
        ['ip6tables-nft', 'ip6'],
      ] as const
    ).flatMap(([backend, family]) => (node.iptables?.get(backend)?.tables ?? []).map((t) => ({ family, name: t.name })));
    return printed([...xtables, ...node.nftTables].map((t) => tableText(t.family, t.name)).join(''));
  }
  const table = /^nft list table (\S+) (\S+)$/.exec(a);
  if (table) {
    const present = node.nftTables.some((t) => t.family === table[1] && t.name === table[2]);
    return present
      ? printed(tableText(table[1]!, table[2]!))
      : refused(
          1,
          `Error: No such file or directory; did you mean table ‘${table[2]!}’ in family ${table[1]!}?\nlist table ${table[1]!} ${table[2]!}\n`,
        );
  }
  return undefined;
}

/** The output of an nft listing the backup saves to a file; undefined for any other form. */
export function nftSaved(node: NftState, argv: string[]): (() => Outcome) | undefined {
  if (argv.join(' ') === 'nft list ruleset')
    return () => ({ code: 0, stdout: node.nftTables.map((t) => tableText(t.family, t.name)).join('') });
  if (argv[0] === 'nft' && argv[1] === 'list' && argv[2] === 'table' && argv.length === 5) {
    return () =>
      node.nftTables.some((t) => t.family === argv[3] && t.name === argv[4])
        ? { code: 0, stdout: tableText(argv[3]!, argv[4]!) }
        : fail(1, 'Error: No such file or directory\n');
  }
  return undefined;
}

/** An nft change, as what running it does; `lines` reads its stdin. Undefined for any other form. */
export function nftCommand(
  node: NftState,
  argv: string[],
  lines: () => string[],
  unknown: (why: string) => Error,
): (() => Outcome) | undefined {
  if (argv.join(' ') === 'nft -f -') {
    const dels = lines().map((line) => {
      const m = /^delete table (\S+) (\S+)$/.exec(line);
      if (!m) throw unknown(`unsupported nft line "${line}"`);
      return { family: m[1], name: m[2], line };
    });
    return () => {
      // One nft -f is one transaction: all or nothing.
      const missing = dels.find((d) => !node.nftTables.some((t) => t.family === d.family && t.name === d.name));
      if (missing) return fail(1, `Error: Could not process rule: No such file or directory\n${missing.line}\n`);
      node.nftTables = node.nftTables.filter((t) => !dels.some((d) => d.family === t.family && d.name === t.name));
      return OK;
    };
  }
  if (argv[0] === 'nft' && argv[1] === '-f' && argv.length === 3) {
    // Loading a saved table back (restore).
    return () => {
      const text = fileContent(node.fs, argv[2]!);
      if (text === undefined) return fail(1, `Error: Could not open file "${argv[2]!}": No such file or directory\n`);
      for (const m of text.matchAll(/^table (\S+) (\S+) \{$/gm)) {
        if (!node.nftTables.some((t) => t.family === m[1] && t.name === m[2])) node.nftTables.push({ family: m[1]!, name: m[2]! });
      }
      return OK;
    };
  }
  return undefined;
}
