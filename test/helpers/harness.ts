// Integration harness: runs the built CLI inside a test's network namespace with recording shims
// on PATH, and snapshots everything a run may change so tests can compare before and after.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { createFlannelNode, destroyFlannelNode, inNs, shimDir, type FlannelNode, type FlannelNodeOptions } from './flannel-node.js';
import { decodeName, fsPath } from '../../src/util/names.js';

/**
 * cni-sweep's own files in a node's snapshot (NodeState.files): its backups, its journal and its run
 * log. Not node state a run may change: tests leave them out when they compare before and after.
 */
export const OWN = /^var\/(backups|lib\/cni-sweep)(\/|$| )|^var\/log\/( |cni-sweep\.log )/;

export const REPO = path.resolve(__dirname, '../..');
export const CLI = path.join(REPO, 'dist/cni-sweep.cjs');
/** The whole CLI in one file, runnable alone: what the Ansible role copies to a node. */
export const BUNDLE = path.join(REPO, 'dist/cni-sweep.bundle.cjs');
export const SHIMS = path.join(REPO, 'test/helpers/shims');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Calls the shims recorded, in order. */
  calls: string[];
}

export interface CliOptions {
  env?: Record<string, string>;
  input?: string;
  /** Directories put on PATH before the shims (fault wrappers). */
  pathBefore?: string[];
  /** Replace the system PATH entirely (after the shims): a node without some binaries. */
  systemPath?: string;
}

export function cliEnv(node: { root: string }, opts: CliOptions = {}): Record<string, string> {
  return {
    PATH: [...(opts.pathBefore ?? []), SHIMS, opts.systemPath ?? process.env.PATH].join(':'),
    SHIM_LOG: path.join(shimDir(node.root), 'calls.log'),
    SHIM_STATE: shimDir(node.root),
    NO_COLOR: '1',
    ...opts.env,
  };
}

export function cliArgv(node: { ns: string }, args: string[]): string[] {
  return [`--net=/run/netns/${node.ns}`, process.execPath, CLI, ...args];
}

export function runCli(node: { ns: string; root: string }, args: string[], opts: CliOptions = {}): CliResult {
  resetCalls(node);
  const r = spawnSync('/usr/bin/nsenter', cliArgv(node, args), {
    encoding: 'utf8',
    input: opts.input ?? '',
    env: cliEnv(node, opts),
    maxBuffer: 256 * 1024 * 1024,
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, calls: readCalls(node) };
}

export function readCalls(node: { root: string }): string[] {
  return fs
    .readFileSync(path.join(shimDir(node.root), 'calls.log'), 'utf8')
    .split('\n')
    .filter(Boolean);
}

export function resetCalls(node: { root: string }): void {
  fs.mkdirSync(shimDir(node.root), { recursive: true });
  fs.writeFileSync(path.join(shimDir(node.root), 'calls.log'), '');
}

/** The standard arguments pointing cni-sweep at a test node. */
export const nodeArgs = (node: { root: string }) => [
  '--root',
  node.root,
  '--node',
  'node-1',
  '--kubeconfig',
  path.join(shimDir(node.root), 'kubeconfig'),
];

function tryNs(ns: string, cmd: string, args: string[]): string {
  try {
    return inNs(ns, cmd, args);
  } catch (e) {
    return `ERROR ${(e as Error).message.split('\n')[0]}`;
  }
}

/** iptables-save output without the timestamps and counters that change on their own. */
export function iptablesState(ns: string, save: string): string {
  return tryNs(ns, save, [])
    .split('\n')
    .filter((l) => !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''))
    .join('\n');
}

/** File content for comparison; a bind-mounted netns file cannot be read (EINVAL). */
function readable(full: string): string {
  try {
    return JSON.stringify(fs.readFileSync(fsPath(full), 'utf8'));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EINVAL') return '<netns mount>';
    throw e;
  }
}

function walk(root: string, rel = ''): string[] {
  const dir = path.join(root, rel);
  const out: string[] = [];
  // Names as bytes: one that is not UTF-8 is shown with U+DCxx for its bytes (src/util/names), and still found.
  for (const name of fs
    .readdirSync(fsPath(dir), { encoding: 'buffer' })
    .map((b) => decodeName(b))
    .sort()) {
    const r = path.join(rel, name);
    const full = path.join(root, r);
    const st = fs.lstatSync(fsPath(full));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(fsPath(full))}`);
    else if (st.isDirectory()) out.push(`${r}/ ${mode}`, ...walk(root, r));
    else out.push(`${r} ${mode} ${readable(full)}`);
  }
  return out;
}

export interface NodeState {
  links: string[];
  addrs: string;
  routes4: string;
  routes6: string;
  ipt4nft: string;
  ipt4legacy: string;
  ipt6nft: string;
  ipt6legacy: string;
  nft: string;
  files: string[];
}

export function snapshot(node: { ns: string; root: string }): NodeState {
  const links = JSON.parse(inNs(node.ns, 'ip', ['-j', '-d', 'link', 'show'])) as Array<{
    ifname: string;
    linkinfo?: { info_kind?: string };
    master?: string;
    mtu: number;
  }>;
  return {
    links: links.map((l) => `${l.ifname} ${l.linkinfo?.info_kind ?? ''} master=${l.master ?? ''} mtu=${l.mtu}`).sort(),
    addrs: addrState(node.ns),
    // "linkdown" follows a bridge's carrier, which settles on its own after ports go.
    // Sorted: the kernel adds link-local routes in whatever order the links came up.
    routes4: inNs(node.ns, 'ip', ['-4', 'route', 'show', 'table', 'all'])
      .replace(/ linkdown/g, '')
      .split('\n')
      .sort()
      .join('\n'),
    routes6: inNs(node.ns, 'ip', ['-6', 'route', 'show', 'table', 'main'])
      .replace(/ linkdown/g, '')
      .split('\n')
      .sort()
      .join('\n'),
    ipt4nft: iptablesState(node.ns, 'iptables-nft-save'),
    ipt4legacy: iptablesState(node.ns, 'iptables-legacy-save'),
    ipt6nft: iptablesState(node.ns, 'ip6tables-nft-save'),
    ipt6legacy: iptablesState(node.ns, 'ip6tables-legacy-save'),
    nft: nativeNftState(node.ns),
    // The run log (<root>/var/log/cni-sweep.log) is cni-sweep's history, which every run appends to,
    // refused runs too: not node state (its own tests read it).
    files: walk(node.root).filter((f) => !/^var\/log\/( |cni-sweep\.log )/.test(f)),
  };
}

/** Addresses per link, without operstate: a bridge's carrier flips on its own when ports come and go. */
function addrState(ns: string): string {
  const links = JSON.parse(inNs(ns, 'ip', ['-j', 'addr', 'show'])) as Array<{
    ifname: string;
    addr_info: Array<{ local: string; prefixlen: number }>;
  }>;
  // Link-local IPv6 addresses are random per link: leave them out.
  return links
    .map(
      (l) =>
        `${l.ifname} ${l.addr_info
          .filter((a) => !a.local.startsWith('fe80:'))
          .map((a) => `${a.local}/${a.prefixlen}`)
          .join(' ')}`,
    )
    .join('\n');
}

const XTABLES = /^table (ip|ip6|inet|arp|bridge) (filter|nat|mangle|raw|security) \{$/;

/** Native nftables tables, without counters; the tables iptables-nft keeps are compared through iptables-save. */
function nativeNftState(ns: string): string {
  const text = tryNs(ns, 'nft', ['-s', 'list', 'ruleset']);
  const tables: string[] = [];
  for (const block of text.split(/\n(?=table )/)) {
    if (!XTABLES.test(block.split('\n')[0]!)) tables.push(block.trimEnd());
  }
  // Sorted: a restored table comes back last, and table order carries no meaning here.
  return tables.sort().join('\n');
}

let counter = 0;
/** A unique namespace name and temporary root for one test. */
export function scratch(tag: string): { ns: string; root: string } {
  const id = `${process.pid}-${++counter}`;
  const base = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', `cni-sweep-${tag}-`));
  return { ns: `cnisweep-${tag}-${id}`.slice(0, 40), root: path.join(base, 'root') };
}

/**
 * The nodes one test file makes, and whatever else its tests must undo (mounts, attributes,
 * processes, directories), undone after each test: `afterEach(nodes.cleanUp)`. The undo
 * steps run first, last registered first (a mount inside a root goes before the root), then every
 * node is destroyed; one that fails does not keep the others from running. (Not a vitest hook here:
 * the demo and the benchmark import this file outside vitest.)
 */
export class TestNodes {
  private readonly made: FlannelNode[] = [];
  private readonly undo: Array<() => void> = [];

  /** `defaults`: the options every node of the file gets unless a test says otherwise. */
  constructor(private readonly defaults: Partial<FlannelNodeOptions> = {}) {}

  /** A dirty Flannel node in its own network namespace and temporary root. */
  make(tag: string, o: Partial<FlannelNodeOptions> = {}): FlannelNode {
    const node = createFlannelNode({ ...scratch(tag), ...this.defaults, ...o });
    this.made.push(node);
    return node;
  }

  /** Something to undo after the test, before the nodes go. */
  onCleanup(fn: () => void): void {
    this.undo.push(fn);
  }

  /** For `afterEach(nodes.cleanUp)`. */
  readonly cleanUp = (): void => {
    const errors: unknown[] = [];
    const attempt = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        errors.push(e);
      }
    };
    while (this.undo.length) attempt(this.undo.pop()!);
    while (this.made.length) {
      const node = this.made.pop()!;
      attempt(() => {
        destroyFlannelNode(node);
      });
    }
    if (errors.length) throw errors[0];
  };
}
