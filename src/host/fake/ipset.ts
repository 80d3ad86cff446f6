// The fake node's IP sets as ipset (v7.17) lists and changes them. The fake keeps set names only.
// Read: `list -n`; what the backup saves: `save NAME` (an empty set of the type Calico and
// kube-router use most); writes: `restore` with `destroy NAME` lines (line by line, stopping at the
// first error, as ipset does; a set an iptables rule matches on is in use and cannot go) and
// `restore -file FILE` loading a saved set back. Any other form or line throws (fails closed).
import type { IptDump } from '../../parse/iptables.js';
import type { ExecResult } from '../host.js';
import { fileContent } from './fs.js';
import { fail, OK, printed, type FsNode, type Outcome } from './model.js';

export interface IpsetState {
  ipsets: string[];
  /** The firewall rules, which may reference a set (`--match-set NAME`). */
  iptables: Map<string, IptDump>;
  fs: Map<string, FsNode>;
}

export function ipsetQuery(node: IpsetState, argv: string[]): ExecResult | undefined {
  return argv.join(' ') === 'ipset list -n' ? printed(node.ipsets.map((x) => `${x}\n`).join('')) : undefined;
}

/** `ipset save NAME`, whose output the backup saves to a file; undefined for any other form. */
export function ipsetSaved(node: IpsetState, argv: string[]): (() => Outcome) | undefined {
  if (argv[0] !== 'ipset' || argv[1] !== 'save' || argv.length !== 3) return undefined;
  // The fake keeps set names only: a set comes back empty, of the type Calico and kube-router use most.
  return () =>
    node.ipsets.includes(argv[2]!)
      ? {
          code: 0,
          stdout: `create ${argv[2]!} hash:net family ${argv[2]!.startsWith('inet6:') ? 'inet6' : 'inet'} hashsize 1024 maxelem 65536\n`,
        }
      : fail(1, 'ipset v7.17: The set with the given name does not exist\n');
}

/** An ipset change, as what running it does; `lines` reads its stdin. Undefined for any other form. */
export function ipsetCommand(
  node: IpsetState,
  argv: string[],
  lines: () => string[],
  unknown: (why: string) => Error,
): (() => Outcome) | undefined {
  if (argv[0] === 'ipset' && argv[1] === 'restore' && argv[2] === '-file' && argv.length === 4) {
    // A set saved by `ipset save <name>` (restore): its create line and members.
    return () => {
      const text = fileContent(node.fs, argv[3]!);
      if (text === undefined) return fail(1, `ipset v7.17: Cannot open ${argv[3]!} for reading: No such file or directory\n`);
      const input = text.split('\n').filter(Boolean);
      for (let i = 0; i < input.length; i++) {
        const m = /^(create|add) (\S+)( |$)/.exec(input[i]!);
        if (!m) throw unknown(`unsupported ipset line "${input[i]!}"`);
        const exists = node.ipsets.includes(m[2]!);
        if (m[1] === 'create' && exists)
          return fail(1, `ipset v7.17: Error in line ${i + 1}: Set cannot be created: set with the same name already exists\n`);
        if (m[1] === 'add' && !exists) return fail(1, `ipset v7.17: Error in line ${i + 1}: The set with the given name does not exist\n`);
        if (m[1] === 'create') node.ipsets.push(m[2]!);
      }
      return OK;
    };
  }
  if (argv.join(' ') === 'ipset restore') {
    const names = lines().map((line) => {
      const m = /^destroy (\S+)$/.exec(line);
      if (!m) throw unknown(`unsupported ipset line "${line}"`);
      return m[1];
    });
    return () => {
      // ipset restore goes line by line and stops at the first error.
      for (let i = 0; i < names.length; i++) {
        const err = !node.ipsets.includes(names[i]!)
          ? 'The set with the given name does not exist'
          : inUse(node, names[i]!)
            ? 'Set cannot be destroyed: it is in use by a kernel component'
            : null;
        if (err) return fail(1, `ipset v7.17: Error in line ${i + 1}: ${err}\n`);
        node.ipsets = node.ipsets.filter((x) => x !== names[i]);
      }
      return OK;
    };
  }
  return undefined;
}

function inUse(node: IpsetState, name: string): boolean {
  for (const d of node.iptables.values()) {
    for (const t of d.tables)
      for (const r of t.rules) {
        const tokens = r.tokens; // made on each read
        if (tokens.some((tok, i) => tok === name && tokens[i - 1] === '--match-set')) return true;
      }
  }
  return false;
}
