// The fake node's model: what it holds (links, addresses, routes, files, pods) and the small
// helpers every family of commands shares. See ../fake.ts.
import path from 'node:path';
import type { ExecResult } from '../host.js';

/** A link as `ip -j -d link show` prints it (only the fields cni-sweep and the model use are typed). */
export interface FakeLink {
  ifindex: number;
  ifname: string;
  flags?: string[];
  mtu?: number;
  master?: string;
  /** Link group, as `ip -j` prints it ("default" or a number). */
  group?: string;
  /** The peer, for a veth whose other end is in the same namespace. */
  link?: string;
  link_netnsid?: number;
  operstate?: string;
  linkinfo?: { info_kind?: string; info_data?: unknown };
  [key: string]: unknown;
}

/** A route as `ip -j route show table main` prints it. */
export interface FakeRoute {
  type?: string;
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string;
  scope?: string;
  metric?: number;
  flags?: string[];
  [key: string]: unknown;
}

export interface FakeAddr {
  family: 'inet' | 'inet6';
  local: string;
  prefixlen: number;
}

export type FsNode =
  | { type: 'file'; content: string; mode: number }
  | { type: 'dir'; mode: number }
  /** The target is kept verbatim: an absolute one is a real path, as on a real filesystem. */
  | { type: 'symlink'; target: string };

export interface Failure {
  code?: number;
  stderr?: string;
}

export interface FakePod {
  name?: string;
  namespace?: string;
  state?: 'SANDBOX_READY' | 'SANDBOX_NOTREADY';
  ip?: string;
  additionalIps?: string[];
  hostNetwork?: boolean;
  /** Real path of its network namespace file (netnsLinks says what is inside). */
  netns?: string;
}

/** Binaries a typical node has. */
export const DEFAULT_BINS = [
  'ip',
  'tc',
  'findmnt',
  'nft',
  'ipset',
  'systemctl',
  'kubectl',
  'crictl',
  'lsmod',
  'modprobe',
  'nsenter',
  'unshare',
  'sh',
  'rm',
  'mv',
  'umount',
  'mkdir',
  'tar',
  'cat',
  'sha256sum',
  ...['iptables-nft', 'iptables-legacy', 'ip6tables-nft', 'ip6tables-legacy'].flatMap((b) => [`${b}-save`, `${b}-restore`]),
];

export const ROUTE_TYPES = [
  'unicast',
  'local',
  'broadcast',
  'multicast',
  'throw',
  'unreachable',
  'prohibit',
  'blackhole',
  'nat',
  'anycast',
];
export const familyOf = (addr: string): 4 | 6 => (addr.includes(':') ? 6 : 4);

/** Route destinations compared the way the kernel sees them: "default" and bare hosts are prefixes. */
export function canonDst(dst: string, family: 4 | 6): string {
  if (dst === 'default') return family === 4 ? '0.0.0.0/0' : '::/0';
  return (dst.includes('/') ? dst : `${dst}/${family === 4 ? 32 : 128}`).toLowerCase();
}

export function clean(real: string): string {
  const p = path.posix.normalize(real);
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

export interface Outcome {
  code: number;
  stdout?: string;
  stderr?: string;
}
export const OK: Outcome = { code: 0 };
export const fail = (code: number, stderr: string): Outcome => ({ code, stderr });

export interface FakeHostInit {
  root?: string;
  hostname?: string;
  isRoot?: boolean;
  bins?: string[];
}

/** What a read prints on success (or with `code`, as `systemctl is-active` exits 3 with output). */
export const printed = (stdout: string, code = 0): ExecResult => ({ code, stdout, stderr: '' });
/** A read that exits non-zero with a message. */
export const refused = (code: number, stderr: string): ExecResult => ({ code, stdout: '', stderr });
