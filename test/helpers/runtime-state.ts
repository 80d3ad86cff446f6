// What the end-to-end tests read back from a runtime node: Flannel's traces, podman's network as
// bytes, the sandboxes' state as the runtime reports it, and the plan script's commands.
import fs from 'node:fs';
import path from 'node:path';
import { renderStep } from '../../src/plan.js';
import { inNode, type RuntimeNode } from './runtime-node.js';

const FLANNEL_TEXT = /FLANNEL|flanneld|cbr0|10\.244\.|fd00:10:244:/;
/** podman's network in a rule: its name in the plugins' comments (quoted, or escaped in a comment) or its subnet. */
const PODMAN_TEXT = /\\?"podman\\?"|10\.88\./;
export const SAVES = ['iptables-nft-save', 'iptables-legacy-save', 'ip6tables-nft-save', 'ip6tables-legacy-save'];

function save(node: RuntimeNode, tool: string): string[] {
  return inNode(node, tool, [])
    .split('\n')
    .filter((l) => l && !l.startsWith('#'))
    .map((l) => l.replace(/ \[\d+:\d+\]$/, ''));
}

/** Every trace of Flannel the kernel and the root still hold, one line each; [] when it is all gone. */
export function flannelTraces(node: RuntimeNode, flannelSandboxes: string[]): string[] {
  // An IPv6 address the bridge plugin just gave cni0 is tentative until duplicate address
  // detection ends (a second or two), and its local routes come then: read the node once it has.
  for (let i = 0; i < 100 && inNode(node, 'ip', ['-6', '-o', 'addr', 'show', 'tentative']).trim(); i++)
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 100);
  const out: string[] = [];
  const links = JSON.parse(inNode(node, 'ip', ['-j', '-d', 'link', 'show'])) as Array<{ ifname: string; master?: string }>;
  for (const l of links) if (/^(cni0|flannel\.1|flannel-v6\.1)$/.test(l.ifname) || l.master === 'cni0') out.push(`link ${l.ifname}`);
  for (const line of inNode(node, 'ip', ['-o', 'addr', 'show']).split('\n'))
    if (/ inet6? (10\.244\.|fd00:10:244:)/.test(line)) out.push(`address ${line}`);
  for (const fam of ['-4', '-6'])
    for (const line of inNode(node, 'ip', [fam, 'route', 'show', 'table', 'all']).split('\n'))
      if (/10\.244\.|fd00:10:244:|cni0|flannel/.test(line)) out.push(`route ${line}`);
  for (const line of inNode(node, 'ip', ['neigh', 'show']).split('\n'))
    if (/10\.244\.|fd00:10:244:|flannel/.test(line)) out.push(`neighbour ${line}`);
  for (const line of inNode(node, 'bridge', ['fdb', 'show']).split('\n')) if (/flannel|cni0/.test(line)) out.push(`fdb ${line}`);
  for (const tool of SAVES) {
    const lines = save(node, tool);
    for (const l of lines) if (FLANNEL_TEXT.test(l)) out.push(`${tool}: ${l}`);
    // portmap's per-pod chains: every one left must be podman's
    const podman = new Set(lines.filter((l) => PODMAN_TEXT.test(l)).flatMap((l) => [...l.matchAll(/-j (CNI-\S+)/g)].map((m) => m[1])));
    for (const l of lines) {
      const chain = /^:(CNI-DN-\S+)/.exec(l)?.[1];
      if (chain && !podman.has(chain)) out.push(`${tool}: portmap chain ${chain}`);
    }
  }
  const exists = (p: string) => fs.existsSync(path.join(node.root, p));
  for (const p of ['var/lib/cni/networks/cbr0', 'var/lib/cni/flannel', 'run/flannel', 'etc/cni/net.d/10-flannel.conflist'])
    if (exists(p)) out.push(`file ${p}`);
  const results = path.join(node.root, 'var/lib/cni/results');
  for (const f of fs.existsSync(results) ? fs.readdirSync(results) : [])
    if (f.startsWith('cbr0-') || flannelSandboxes.some((id) => f.includes(id))) out.push(`result cache ${f}`);
  const netns = path.join(node.root, 'run/netns');
  for (const f of fs.existsSync(netns) ? fs.readdirSync(netns) : []) if (f.startsWith('cni-')) out.push(`netns ${f}`);
  for (const line of inNode(node, 'findmnt', ['-rn', '-o', 'TARGET']).split('\n'))
    if (/\/run\/netns\/cni-/.test(line)) out.push(`netns mount ${line}`);
  return out;
}

const BUILTIN = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** The lines of an iptables-save that are podman's: its chains, its rules, and the hooks into them. */
export function podmanRules(lines: string[]): string[] {
  const mine = (l: string) => PODMAN_TEXT.test(l);
  const own = new Set(lines.filter(mine).flatMap((l) => [...l.matchAll(/-j (CNI-\S+)/g)].map((m) => m[1])));
  const shared = new Set(['CNI-HOSTPORT-DNAT', 'CNI-HOSTPORT-MASQ', 'CNI-HOSTPORT-SETMARK', 'CNI-FORWARD', 'CNI-ADMIN']);
  return lines.filter((l) => {
    if (l.startsWith('*') || l === 'COMMIT') return true;
    const decl = /^:(\S+)/.exec(l)?.[1];
    if (decl) return own.has(decl) || shared.has(decl) || BUILTIN.has(decl);
    const m = /^-A (\S+) .*?(?:-j (\S+))?$/.exec(l);
    if (!m) return false;
    const chain = m[1]!;
    const target = m[2];
    if (mine(l) || own.has(chain) || chain === 'CNI-HOSTPORT-MASQ' || chain === 'CNI-HOSTPORT-SETMARK') return true;
    return !chain.startsWith('CNI-') && !!target && shared.has(target);
  });
}

function readTree(root: string, rel: string): string[] {
  const full = path.join(root, rel);
  if (!fs.existsSync(full)) return [`${rel} missing`];
  const st = fs.statSync(full);
  if (!st.isDirectory()) return [`${rel} ${(st.mode & 0o7777).toString(8)} ${fs.readFileSync(full).toString('base64')}`];
  return fs
    .readdirSync(full)
    .sort()
    .flatMap((f) => readTree(root, path.join(rel, f)));
}

/** podman's network, everywhere it lives: links, addresses, routes, its containers' insides, its rules, its files. */
export function podmanState(node: RuntimeNode, netns: string[]): Record<string, string[]> {
  const links = inNode(node, 'ip', ['-o', 'link', 'show'])
    .split('\n')
    .filter((l) => /: cni-podman0[:@]| master cni-podman0 /.test(l));
  const names = links.map((l) => l.split(': ')[1]!.split('@')[0]!);
  const results = fs.readdirSync(path.join(node.root, 'var/lib/cni/results')).filter((f) => f.startsWith('podman-'));
  return {
    links,
    addrs: names.flatMap((n) => inNode(node, 'ip', ['-o', 'addr', 'show', 'dev', n]).split('\n')),
    routes: ['-4', '-6'].flatMap((f) => inNode(node, 'ip', [f, 'route', 'show', 'table', 'all', 'dev', 'cni-podman0']).split('\n')),
    containers: netns.flatMap((ns) =>
      [
        ['ip', '-o', 'addr'],
        ['ip', 'route'],
        ['ip', '-6', 'route'],
      ].flatMap((cmd) => inNode(node, 'nsenter', [`--net=/run/netns/${ns}`, ...cmd]).split('\n')),
    ),
    iptables: SAVES.flatMap((t) => podmanRules(save(node, t)).map((l) => `${t}: ${l}`)),
    files: [
      ...readTree(node.root, 'etc/cni/net.d/87-podman-bridge.conflist'),
      ...readTree(node.root, 'var/lib/cni/networks/podman'),
      ...results.flatMap((f) => readTree(node.root, path.join('var/lib/cni/results', f))),
    ],
  };
}

/** The firewall lines nobody's CNI wrote (the site's), per tool. */
export function siteRules(node: RuntimeNode): string[] {
  return SAVES.flatMap((t) =>
    save(node, t)
      .filter((l) => /SITE-FW|--dport 22 /.test(l))
      .map((l) => `${t}: ${l}`),
  );
}

/** Sandboxes the runtime calls READY whose network namespace has no interface but lo, or is gone. */
export async function readyWithoutNetwork(node: RuntimeNode): Promise<string[]> {
  const out: string[] = [];
  for (const pod of await node.cri.listPodSandbox()) {
    if (pod.state !== 'SANDBOX_READY') continue;
    const { info } = await node.cri.podSandboxStatus(pod.id, true);
    const spec = JSON.parse(info.info!) as { runtimeSpec: { linux: { namespaces: Array<{ type: string; path?: string }> } } };
    const netns = spec.runtimeSpec.linux.namespaces.find((n) => n.type === 'network')?.path;
    let ifaces: string[] = [];
    try {
      ifaces = (JSON.parse(inNode(node, 'nsenter', [`--net=${netns}`, 'ip', '-j', 'link', 'show'])) as Array<{ ifname: string }>)
        .map((l) => l.ifname)
        .filter((n) => n !== 'lo');
    } catch {
      /* namespace gone */
    }
    if (!ifaces.length) out.push(`${pod.metadata.name} (${pod.id.slice(0, 13)})`);
  }
  return out;
}

/** Backup directory names and manifest times carry the clock: the same step planned and run differs there only. */
const clock = (s: string) => s.replace(/\d{8}T\d{6}Z-/g, '<time>-').replace(/\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/g, '<time>');

/**
 * The commands of a plan script (comments and the preamble left out), each as its argv and stdin
 * render: the report has no working directory or output file, so the plan's `(cd DIR && ...)` and
 * `> FILE` are taken off. What bash would do to the text is done here too: the header's variables
 * (NODE, CREATED, BACKUP) are put in, an operand per line is joined back, and a heredoc that
 * carries variables is expanded and shown quoted, as a step renders without them.
 */
export function planCommands(script: string): string[] {
  const body = script.split('\nset -euo pipefail\n')[1] ?? '';
  const vars = new Map<string, string>();
  const expand = (s: string) => s.replace(/"\$([A-Z]+)"/g, (_, v: string) => vars.get(v) ?? `$${v}`);
  const out: string[] = [];
  let heredoc: { tag: string; quoted: boolean } | null = null;
  let pending = '';
  for (const line of body.split('\n')) {
    if (heredoc !== null) {
      if (line === heredoc.tag) {
        out[out.length - 1] = `${out[out.length - 1]!}\n${line}`;
        heredoc = null;
        continue;
      }
      const text = heredoc.quoted
        ? line
        : line.replace(/\$\{([A-Z]+)\}/g, (_, v: string) => vars.get(v) ?? '').replace(/\\([\\$`])/g, '$1');
      out[out.length - 1] = `${out[out.length - 1]!}\n${text}`;
      continue;
    }
    // Comments, and the traps that start the stopped services again on a failure (what a run does then, not a command of it).
    if (!line || line.startsWith('#') || line.startsWith('trap ')) continue;
    const assign = /^([A-Z]+)=(\S+)$/.exec(line);
    if (assign) {
      vars.set(assign[1]!, assign[2]!);
      continue;
    }
    if (line.endsWith(' \\')) {
      pending += `${line.slice(0, -2).trimStart()} `;
      continue;
    }
    const whole = pending + line.trimStart();
    pending = '';
    const m = /<<('?)([^' ]+)\1$/.exec(whole);
    heredoc = m ? { tag: m[2]!, quoted: m[1] === "'" } : null;
    let cmd = expand(m ? whole.slice(0, whole.length - m[0].length - 1) : whole);
    cmd = cmd.replace(/ > \S+$/, '');
    const sub = /^\(cd \S+ && (.*)\)$/.exec(cmd);
    if (sub) cmd = sub[1]!;
    out.push(heredoc ? `${cmd} <<'${heredoc.tag}'` : cmd);
  }
  return out.map(clock);
}

/**
 * The run's commands that the plan does not show. Once the runtime has removed the sandboxes on the
 * removed network it has released their veths, IPAM and hostPort rules itself, and the run plans
 * each later phase again: a later command may then carry fewer lines or paths than planned, or be
 * gone, but never anything the plan did not show, in the same order.
 */
export function notInPlan(ran: string[], planned: string[]): string[] {
  const words = (c: string) => c.split('\n')[0]!.split(' ');
  const extra: string[] = [];
  let at = 0;
  for (const r of ran) {
    const rLines = r.split('\n').slice(1);
    const i = planned.findIndex((p, k) => {
      if (k < at || words(p)[0] !== words(r)[0]) return false;
      const pWords = new Set(words(p));
      const pLines = new Set(p.split('\n').slice(1));
      return words(r).every((w) => pWords.has(w)) && rLines.every((l) => pLines.has(l));
    });
    if (i < 0) extra.push(r);
    else at = i + 1;
  }
  return extra;
}

interface ReportStep {
  argv: string[];
  stdin?: string;
  status: string;
}
export interface RunReport {
  changed: boolean;
  cni: string[];
  phases: Array<{ name: string; status: string; notes: string[]; steps: ReportStep[] }>;
  failed?: { error: string };
}

/** The commands a run executed, rendered as the plan renders them. */
export function executedCommands(report: RunReport): string[] {
  return report.phases.flatMap((p) =>
    p.steps.filter((s) => s.status !== 'skipped').map((s) => clock(renderStep({ argv: s.argv, stdin: withoutMembers(s.stdin) }))),
  );
}

/**
 * The backup's manifest as planned: a run adds the list of files.tar's members once tar has written
 * it, which no plan can know beforehand (the plan says so in a note).
 */
function withoutMembers(stdin: string | undefined): string | undefined {
  if (!stdin?.startsWith('{') || !stdin.includes('"members"')) return stdin;
  const manifest = JSON.parse(stdin) as Record<string, unknown>;
  delete manifest.members;
  return JSON.stringify(manifest, null, 2) + '\n';
}

function walkFiles(root: string, rel: string, skip: RegExp): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(path.join(root, rel)).sort()) {
    const r = path.join(rel, name);
    if (skip.test(r)) continue;
    const st = fs.lstatSync(path.join(root, r));
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isSymbolicLink()) out.push(`${r} -> ${fs.readlinkSync(path.join(root, r))}`);
    else if (st.isDirectory()) out.push(`${r}/ ${mode}`, ...walkFiles(root, r, skip));
    else if (st.isFile()) out.push(`${r} ${mode} ${fs.readFileSync(path.join(root, r)).toString('base64')}`);
    else out.push(`${r} ${mode} special`);
  }
  return out;
}

/**
 * Everything a run may change on the node: links, addresses, routes, neighbours, FDB, every
 * firewall table, and the root's files (containerd's own database, logs and state, which it
 * rewrites as it runs, left out).
 */
export function nodeState(node: RuntimeNode): Record<string, string[]> {
  const lines = (cmd: string, args: string[]) =>
    inNode(node, cmd, args)
      .split('\n')
      .filter((l) => l && !l.startsWith('#'))
      .map((l) => l.replace(/ \[\d+:\d+\]$/, '').replace(/ linkdown/g, ''));
  return {
    links: lines('ip', ['-o', 'link', 'show']).map((l) => l.replace(/ state \S+/, '')),
    addrs: lines('ip', ['-o', 'addr', 'show']),
    routes: [...lines('ip', ['-4', 'route', 'show', 'table', 'all']), ...lines('ip', ['-6', 'route', 'show', 'table', 'all'])].sort(),
    neighbours: lines('ip', ['neigh', 'show', 'nud', 'permanent']),
    fdb: lines('bridge', ['fdb', 'show']).filter((l) => /permanent|dst/.test(l)),
    firewall: [...SAVES.flatMap((t) => lines(t, []).map((l) => `${t}: ${l}`)), ...lines('nft', ['list', 'tables'])],
    files: walkFiles(node.root, '', /^(var\/lib\/containerd|run\/containerd|var\/log)(\/|$)/),
  };
}
