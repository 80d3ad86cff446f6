// Which distribution runs this node, and its layout resolved on it: data dir from its config, conf
// and bin dirs with symlinks resolved under --root (never followed out of it), and the state and
// rules it adds to the profiles.
import path from 'node:path';
import type { Host } from '../host/host.js';
import { inRoot } from '../host/in-root.js';
import { unitStates, unitStatesArgv } from '../host/units.js';
import type { Profile } from '../profiles/schema.js';
import type { Distro, DistroAdds } from './schema.js';
import type { Embedded } from '../profiles/targets.js';

export interface NodeDistro {
  name: string;
  role: string | null;
  /** Why this distribution: units, paths, or --distro. */
  evidence: string[];
  dataDir: string | null;
  /** Conf dirs as real node paths (symlinks resolved), the runtime's first, each once. */
  confDirs: string[];
  binDirs: string[];
  criSocket: string | null;
  /** Its admin kubeconfig, when it writes one (a k3s or rke2 server, microk8s). */
  kubeconfig?: string | null;
  units: { kubelet: string[]; runtime: string[] };
  adds: Record<string, DistroAdds>;
  /** Top-level scalars of the distribution's config file (k3s: flannel-backend, data-dir ...). */
  config: Record<string, string> | null;
}

/**
 * The node path a path leads to, following symlinks the way the kernel does but inside the root:
 * an absolute target is a node path, not a path on the machine running cni-sweep. Null when a
 * link dangles or loops.
 */
export async function resolveNodePath(host: Host, nodePath: string): Promise<string | null> {
  let parts = nodePath.split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0, hops = 0; i < parts.length; i++) {
    const next = path.posix.join(cur, parts[i]!);
    const type = await host.entryType(next);
    if (type === null) return path.posix.join(next, ...parts.slice(i + 1));
    if (type === 'symlink') {
      const target = host.readLink ? await host.readLink(next) : null;
      if (target === null || ++hops > 40) return null;
      parts = [...path.posix.resolve(cur, target).split('/').filter(Boolean), ...parts.slice(i + 1)];
      cur = '/';
      i = -1;
      continue;
    }
    cur = next;
  }
  return cur;
}

/** Top-level `key: value` scalars of a YAML file (k3s and rke2 configs are flat maps of flags). */
export function yamlScalars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z0-9_.-]+|"[^"]*"|'[^']*')\s*:\s*(.*)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.replace(/^["']|["']$/g, '');
    let v = m[2]!;
    if (/^"/.test(v)) v = /^"((?:[^"\\]|\\.)*)"/.exec(v)?.[1] ?? '';
    else if (/^'/.test(v)) v = /^'((?:[^']|'')*)'/.exec(v)?.[1]?.replace(/''/g, "'") ?? '';
    else v = v.replace(/\s+#.*$/, '').trim();
    out[key] = v;
  }
  return out;
}

const fill = (p: string, dataDir: string | null) => (dataDir ? p.replaceAll('{dataDir}', dataDir) : p);

async function activeUnits(host: Host, units: string[]): Promise<Set<string>> {
  const states = await unitStates(host, units);
  return new Set(units.filter((u) => states?.get(u) === 'active'));
}

/** Lays a distribution out on this node. */
export async function resolveDistro(host: Host, d: Distro, evidence: string[], active?: Set<string>): Promise<NodeDistro> {
  let config: Record<string, string> | null = null;
  let dataDir: string | null = d.config?.defaultDataDir ?? null;
  if (d.config) {
    // config.yaml, then config.yaml.d/*.yaml in lexical order (later files win), then the running
    // server's or agent's command line, which wins over both (k3s and rke2 read them so).
    const sources: Array<{ from: string; values: Record<string, string> }> = [];
    const text = await host.readFile(d.config.file).catch(() => null);
    if (text !== null) sources.push({ from: d.config.file, values: yamlScalars(text) });
    const dropins = `${d.config.file}.d`;
    for (const e of (await host.readDir(dropins).catch(() => null)) ?? []) {
      if (e.type === 'dir' || !/\.ya?ml$/.test(e.name)) continue;
      const t = await host.readFile(`${dropins}/${e.name}`).catch(() => null);
      if (t !== null) sources.push({ from: `${dropins}/${e.name}`, values: yamlScalars(t) });
    }
    if (d.name === 'k3s') {
      const proc = findK3s(await host.processes().catch(() => []));
      if (proc)
        sources.push({
          from: `the command line of ${path.posix.basename(proc.argv[0] ?? 'k3s')} (pid ${proc.pid})`,
          values: cliFlags(proc.argv),
        });
      else
        // Stopped (as cni-sweep asks, to remove its Flannel), its command line is the unit's
        // ExecStart, where the installer writes INSTALL_K3S_EXEC (--flannel-backend=none, --data-dir).
        for (const unit of K3S_UNIT_FILES) {
          const argv = execStart((await host.readFile(unit).catch(() => null)) ?? '');
          if (argv) sources.push({ from: `ExecStart in ${unit}`, values: cliFlags(argv) });
        }
    }
    if (sources.length) {
      config = Object.assign({}, ...sources.map((x) => x.values)) as Record<string, string>;
      const key = d.config.dataDirKey;
      const dir = key ? config[key] : undefined;
      if (key && dir && dir.startsWith('/') && !dir.split('/').includes('..')) {
        dataDir = path.posix.normalize(dir);
        evidence.push(`data dir ${dataDir} (${[...sources].reverse().find((x) => x.values[key] === dir)!.from})`);
      }
    }
  }
  const resolveAll = async (paths: string[]) => {
    const out: string[] = [];
    for (const p of paths) {
      const r = await resolveNodePath(host, fill(p, dataDir));
      if (r && !out.includes(r)) out.push(r);
    }
    return out;
  };
  const units =
    active ??
    (await activeUnits(
      host,
      d.detect.units.map((u) => u.unit),
    ));
  let role = d.detect.units.find((u) => u.role && units.has(u.unit))?.role ?? null;
  // A stopped k3s or rke2 still tells a server from an agent by its data dir.
  if (!role && dataDir && d.detect.units.some((u) => u.role)) {
    if ((await host.entryType(`${dataDir}/server`)) === 'dir') role = 'server';
    else if ((await host.entryType(`${dataDir}/agent`)) === 'dir') role = 'agent';
  }
  const adds: Record<string, DistroAdds> = {};
  for (const [profile, a] of Object.entries(d.adds)) {
    if (Object.entries(a.unlessConfig).some(([k, v]) => config?.[k] === v)) continue;
    adds[profile] = { ...a, statePaths: await resolveAll(a.statePaths) };
  }
  return {
    name: d.name,
    role,
    evidence,
    dataDir,
    confDirs: await resolveAll(
      d.cni.confDirsWhen.find((w) => Object.entries(w.config).every(([k, v]) => config?.[k] === v))?.confDirs ?? d.cni.confDirs,
    ),
    binDirs: await resolveAll(d.cni.binDirs),
    criSocket: d.criSocket ?? null,
    kubeconfig: d.kubeconfig ?? null,
    units: d.units,
    adds,
    config,
  };
}

/** The units detection asks systemd about: each distribution's own, and kubeadm's runtimes (see detectDistro). */
const detectionUnits = (all: Distro[]) => [
  ...new Set(all.flatMap((d) => [...d.detect.units.map((u) => u.unit), ...(d.name === 'kubeadm' ? d.units.runtime : [])])),
];

/** The read detectDistro starts with (what unitStates asks), to start it beside the listings. */
export function distroReads(all: Distro[]): string[][] {
  const units = detectionUnits(all);
  return units.length ? [unitStatesArgv(units)] : [];
}

/**
 * The distribution whose units run here (an active unit wins), else whose files are here, else
 * kubeadm/plain. `--distro` names one outright. A unit an unfinished run of cni-sweep stopped
 * (`stoppedByRun`, from its journal) counts as running: the rerun after a crash must not take the
 * node for another distribution because that run stopped kubelet. kubeadm's files with one of its
 * runtimes running (containerd.service, crio.service ...: k3s and rke2 run theirs inside their own
 * unit) count as kubeadm running, ahead of another distribution's files alone (a k3s removed by
 * hand, its data dir left, on a node joined with kubeadm since).
 */
export async function detectDistro(
  host: Host,
  all: Distro[],
  override?: Distro,
  stoppedByRun?: { units: string[]; by: string },
): Promise<NodeDistro> {
  const allUnits = detectionUnits(all);
  const active = await activeUnits(host, allUnits);
  if (override) return resolveDistro(host, override, ['--distro'], active);
  /** How a unit shows its distribution runs: active, or stopped by an unfinished run; null when it does not. */
  const runningUnit = (u: string): string | null =>
    active.has(u) ? `unit ${u} active` : stoppedByRun?.units.includes(u) ? `unit ${u} stopped by ${stoppedByRun.by}` : null;
  const found: Array<{ d: Distro; evidence: string[]; running: boolean }> = [];
  for (const d of all) {
    const evidence = d.detect.units.flatMap((u) => runningUnit(u.unit) ?? []);
    let running = evidence.length > 0;
    for (const p of d.detect.paths) if ((await host.entryType(p)) !== null) evidence.push(`path ${p}`);
    const runtime = d.name === 'kubeadm' && !running && evidence.length ? d.units.runtime.map(runningUnit).find(Boolean) : undefined;
    if (runtime) {
      evidence.push(runtime);
      running = true;
    }
    if (evidence.length) found.push({ d, evidence, running });
  }
  // kubeadm is the fallback: another distribution with any evidence is more specific.
  const special = found.filter((f) => f.d.name !== 'kubeadm');
  const pick = special.find((f) => f.running) ?? (found.find((f) => f.d.name === 'kubeadm' && f.running) || special[0]) ?? found[0];
  const d = pick?.d ?? all.find((x) => x.name === 'kubeadm') ?? all[0];
  if (!d) throw new Error('no distribution to detect: the list of distributions is empty');
  return resolveDistro(host, d, pick?.evidence ?? ['default: nothing of another distribution found'], active);
}

/** The profiles with what the distribution adds to them (k3s: kube-router netpol goes with Flannel). */
export function applyDistro(profiles: Profile[], nd: NodeDistro | null | undefined): Profile[] {
  if (!nd) return profiles;
  const union = <T>(a: T[], b: T[]) => [...a, ...b.filter((x) => !a.some((y) => JSON.stringify(y) === JSON.stringify(x)))];
  return profiles.map((p) => {
    const a = nd.adds[p.name];
    if (!a) return p;
    return {
      ...p,
      state: { ...p.state, paths: union(p.state.paths, a.statePaths), subnetEnv: a.subnetEnv ?? p.state.subnetEnv },
      firewall: {
        ...p.firewall,
        chainPrefixes: union(p.firewall.chainPrefixes, a.chainPrefixes),
        ipsetPrefixes: union(p.firewall.ipsetPrefixes, a.ipsetPrefixes),
        comments: union(p.firewall.comments, a.comments),
      },
      nftables: union(p.nftables, a.nftables),
    };
  });
}

/**
 * The distribution's additions less what a live CNI owns: k3s's kube-router netpol chains and sets go
 * with its Flannel, but not while a kube-router runs (standalone, or inside a k3s whose command
 * line, not its config.yaml, says flannel-backend none). Returns the additions it took out, by profile.
 */
export function withoutLive(nd: NodeDistro, live: Profile[]): { distro: NodeDistro; kept: string[] } {
  const overlaps = (a: string, b: string) => a.startsWith(b) || b.startsWith(a);
  const kept: string[] = [];
  const adds: Record<string, DistroAdds> = {};
  for (const [name, a] of Object.entries(nd.adds)) {
    const owner = (test: (l: Profile) => boolean) => live.find(test)?.name;
    const keep = <T>(xs: T[], test: (x: T, l: Profile) => boolean, show: (x: T) => string) =>
      xs.filter((x) => {
        const who = owner((l) => test(x, l));
        if (who) kept.push(`${show(x)} (${who} is live)`);
        return !who;
      });
    adds[name] = {
      ...a,
      chainPrefixes: keep(
        a.chainPrefixes,
        (x, l) => l.firewall.chainPrefixes.some((q) => overlaps(x, q)),
        (x) => `chains ${x}*`,
      ),
      ipsetPrefixes: keep(
        a.ipsetPrefixes,
        (x, l) => l.firewall.ipsetPrefixes.some((q) => overlaps(x, q)),
        (x) => `ipsets ${x}*`,
      ),
      nftables: keep(
        a.nftables,
        (x, l) => l.nftables.some((t) => t.family === x.family && t.name === x.name),
        (x) => `nftables table ${x.family} ${x.name}`,
      ),
    };
  }
  return { distro: { ...nd, adds }, kept };
}

/** crictl pointed at the distribution's runtime (the socket under --root); kubeadm: crictl's own default. */
export function crictl(nd: NodeDistro | null | undefined, root: string, ...args: string[]): string[] {
  if (!nd?.criSocket) return ['crictl', ...args];
  return ['crictl', '--runtime-endpoint', `unix://${inRoot(root, nd.criSocket, true)}`, ...args];
}

export interface Proc {
  /** /proc/<pid>/comm */
  comm?: string;
  /** /proc/<pid>/cmdline split at NULs */
  argv: string[];
}

/** What to tell the user when k3s's Flannel is live and kept. */
export const K3S_FLANNEL_HINT =
  'stop k3s (systemctl stop k3s, or k3s-agent) and run again, or set `flannel-backend: none` in /etc/rancher/k3s/config.yaml, restart k3s and run again to remove its Flannel';

/**
 * Whether k3s's embedded Flannel is live: a k3s server or agent runs (its process shows as
 * `k3s server` / `k3s agent`, or k3s-server / k3s-agent once it renamed itself) and neither its
 * command line nor its config says `flannel-backend: none`.
 */
export function k3sFlannelLive(procs: Proc[], config: Record<string, string> | null): { live: boolean; why: string } {
  const k3s = findK3s(procs);
  if (!k3s) return { live: false, why: 'no k3s server or agent process' };
  const argv = k3s.argv;
  let backend: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const m = /^--flannel-backend(?:=(.*))?$/.exec(argv[i]!);
    if (m) backend = m[1] ?? argv[i + 1];
  }
  backend ??= config?.['flannel-backend'];
  const who = `k3s ${/agent/.test(`${k3s.comm ?? ''} ${argv.slice(0, 2).join(' ')}`) ? 'agent' : 'server'}`;
  if (backend === 'none') return { live: false, why: `${who} runs with flannel-backend none` };
  return { live: true, why: `${who} runs with its embedded Flannel (backend ${backend || 'vxlan'})` };
}

/** Where the k3s installer (get.k3s.io) writes its units, server and agent. */
const K3S_UNIT_FILES = ['/etc/systemd/system/k3s.service', '/etc/systemd/system/k3s-agent.service'];

/**
 * A unit file's last ExecStart= as an argv: lines ending in a backslash continue it, and words are
 * split as systemd does for the installer's quoting ('--flannel-backend=none', "a b"); a leading
 * prefix (-, @, +, !) is dropped. Null without one.
 */
export function execStart(unitText: string): string[] | null {
  const lines = unitText.replace(/\\\r?\n/g, ' ').split(/\r?\n/);
  const value = lines
    .map((l) => /^\s*ExecStart\s*=(.*)$/.exec(l)?.[1]?.trim())
    .filter((v): v is string => v !== undefined)
    .pop();
  if (!value) return null;
  const words: string[] = [];
  const re = /'([^']*)'|"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(value); m; m = re.exec(value)) words.push(m[1] ?? m[2]?.replace(/\\(.)/g, '$1') ?? m[3]!);
  if (words[0]) words[0] = words[0].replace(/^[-@+!:]+/, '');
  return words.length ? words : null;
}

/** A k3s command line's options as config keys: `--data-dir X`, `--data-dir=X`, `-d X`; a bare flag is "true". */
function cliFlags(argv: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 2; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(a);
    const key = m ? m[1]! : a === '-d' ? 'data-dir' : null;
    if (!key) continue;
    let value = m?.[2];
    if (value === undefined) {
      const next = argv[i + 1];
      value = next !== undefined && !next.startsWith('-') ? (i++, next) : 'true';
    }
    out[key] = value;
  }
  return out;
}

/** The k3s server or agent process: `k3s server` / `k3s agent`, or k3s-server / k3s-agent once it renamed itself. */
function findK3s<P extends Proc>(procs: P[]): P | undefined {
  return procs.find((p) => {
    const base = path.posix.basename(p.argv[0] ?? '');
    if (/^k3s-(server|agent)$/.test(p.comm ?? '') || /^k3s-(server|agent)$/.test(base)) return true;
    return base === 'k3s' && (p.argv[1] === 'server' || p.argv[1] === 'agent');
  });
}

/** What to tell the user when k3s's embedded kube-router network policy controller is live and kept. */
export const K3S_NETPOL_HINT =
  "its KUBE-ROUTER-*, KUBE-NWPLCY-*, KUBE-POD-FW-* chains and ipsets are k3s's own while it runs: stop k3s (systemctl stop k3s, or k3s-agent) and run again, or set `disable-network-policy: true` in /etc/rancher/k3s/config.yaml and restart k3s";

/**
 * Whether k3s runs kube-router's network policy controller inside it (k3s pkg/agent/netpol): a k3s
 * server or agent runs and neither its command line nor its config says `disable-network-policy`.
 */
export function k3sNetpolLive(procs: Proc[], config: Record<string, string> | null): { live: boolean; why: string } {
  const k3s = findK3s(procs);
  if (!k3s) return { live: false, why: 'no k3s server or agent process' };
  const who = `k3s ${/agent/.test(`${k3s.comm ?? ''} ${k3s.argv.slice(0, 2).join(' ')}`) ? 'agent' : 'server'}`;
  const flag = k3s.argv.map((a) => /^--disable-network-policy(?:=(.*))?$/.exec(a)).find(Boolean);
  const off = flag ? (flag[1] ?? 'true') : config?.['disable-network-policy'];
  if (off === 'true') return { live: false, why: `${who} runs with disable-network-policy` };
  return { live: true, why: `${who} runs kube-router's network policy controller inside it` };
}

/**
 * The CNIs this distribution runs inside its own process and that are live now, for the target rule:
 * k3s's Flannel, and kube-router, whose network policy controller k3s embeds.
 */
export function embeddedLive(nd: NodeDistro, procs: Proc[]): Embedded {
  const out: Embedded = new Map();
  if (nd.name !== 'k3s') return out;
  const k3s = k3sFlannelLive(procs, nd.config);
  if (k3s.live) out.set('flannel', { why: k3s.why, hint: K3S_FLANNEL_HINT });
  const netpol = k3sNetpolLive(procs, nd.config);
  if (netpol.live) out.set('kube-router', { why: netpol.why, hint: K3S_NETPOL_HINT });
  // Stopped, with its Flannel off and its network policy on, k3s enforces NetworkPolicy for the CNI
  // that replaced Flannel: the pods still running (its unit's KillMode=process) keep those rules
  // until it starts again, and then it uses them. They are its configuration, not leftovers.
  else if (!findK3s(procs) && nd.config?.['flannel-backend'] === 'none' && nd.config['disable-network-policy'] !== 'true')
    out.set('kube-router', {
      why: 'k3s is stopped, and its configuration (flannel-backend none, network policy on) has its network policy controller enforce NetworkPolicy with these chains and sets for the CNI that replaced Flannel: the pods still running rely on them',
      hint: 'set `disable-network-policy: true` in /etc/rancher/k3s/config.yaml (or drop it from the k3s unit) if k3s should not enforce NetworkPolicy, then run again',
    });
  return out;
}
