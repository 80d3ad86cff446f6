// The runner: phase order, selection, dry run, idempotency, when services and the node are left
// alone, and what happens after a failure or an interrupt.
import { describe, expect, it } from 'vitest';
import { RefusedError, UsageError } from '../../src/errors.js';
import { silentReporter } from '../../src/events.js';
import type { FakeHost } from '../../src/host/fake.js';
import type { NodeDistro } from '../../src/distros/node.js';
import { JOURNAL } from '../../src/journal.js';
import { PHASES, PHASE_NAMES } from '../../src/phases/index.js';
import type { RunOptions } from '../../src/phases/types.js';
import { sweep, type SweepRequest } from '../../src/run.js';
import { CALICO_CONFLIST } from '../helpers/calico-node.js';
import { dirtyFlannelNode, foreignNode } from './fake-node.js';
import { DEFAULT_PHASES, FLANNEL, isolateKubeconfigEnv, runOptions } from './helpers.js';

isolateKubeconfigEnv();

const BACKUP_DIR = '/var/backups/cni-sweep/20261121T210000Z-node-1';

function request(host: FakeHost, over: Partial<Omit<SweepRequest, 'opts'>> & { opts?: Partial<RunOptions> } = {}): SweepRequest {
  return {
    host,
    profiles: [FLANNEL],
    phases: PHASES,
    selected: new Set(DEFAULT_PHASES),
    reporter: silentReporter,
    ...over,
    opts: runOptions({ dryRun: false, ...over.opts }),
  };
}

const statuses = (r: { report: { phases: Array<{ name: string; status: string }> } }) =>
  Object.fromEntries(r.report.phases.map((p) => [p.name, p.status]));
const cmd = (h: FakeHost) => h.calls.map((c) => c.argv.join(' '));

/** The interrupt a run checks, set to `signal` the moment the run starts a step whose argv starts with `argv`. */
function interruptOn(host: FakeHost, argv: string[], signal: NodeJS.Signals) {
  const interrupt = { signal: null as NodeJS.Signals | null };
  host.failOn((s) => {
    if (argv.every((a, i) => s.argv[i] === a)) interrupt.signal = signal;
    return false;
  });
  return interrupt;
}
/** The per-pod CNI-* chains of cbr0 in a dump: the targets of rules whose comment names cbr0. */
const cbr0Chains = (save: string) => [...save.matchAll(/name: \\"cbr0\\".* -j (CNI-\S+)/g)].map((m) => m[1]!);

/** Flannel's state left on the fake node, all kinds together: empty means clean. */
function flannelLeft(h: FakeHost, chains: string[] = []): string[] {
  const out: string[] = [];
  const mine = (s: string) => /flannel|FLANNEL|"cbr0"/.test(s) || chains.some((c) => s.includes(c));
  for (const l of h.linkNames()) if (/^(cni0|flannel|veth)/.test(l) && !l.startsWith('vethsite')) out.push(`link ${l}`);
  for (const f of [4, 6] as const) for (const r of h.routes[f]) if (/^(10\.244\.|fd00:10:244:)/.test(r.dst)) out.push(`route ${r.dst}`);
  for (const [b, d] of h.iptables) for (const t of d.tables) for (const c of t.chains) if (mine(c.name)) out.push(`${b} chain ${c.name}`);
  for (const [b] of h.iptables) for (const t of ['nat', 'filter']) for (const r of h.rules(b, t)) if (mine(r)) out.push(`${b} rule ${r}`);
  for (const t of h.nftTables) if (t.name.startsWith('flannel')) out.push(`nft ${t.name}`);
  for (const p of h.paths()) if (/flannel|cbr0|\/run\/netns\/cni-/.test(p) && !p.startsWith('/var/backups/')) out.push(`path ${p}`);
  return out;
}

describe('sweep', () => {
  it('reads the links from the address listing: one process for both, never `ip link show` on the node', async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host, { opts: { dryRun: true } }));
    expect(r.report.wouldRemove?.interfaces.names).toEqual(expect.arrayContaining(['cni0', 'flannel.1']));
    const asked = host.queries.map((q) => q.join(' '));
    expect(asked).toContain('ip -d -j addr show');
    expect(asked.filter((q) => / link show/.test(q) && !q.startsWith('nsenter '))).toEqual([]);
  });

  it('plans every phase in order and reports what each would do', async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host, { opts: { dryRun: true } }));
    expect(r.report.phases.map((p) => p.name)).toEqual(PHASE_NAMES);
    expect(PHASE_NAMES).toEqual([
      'preflight',
      'backup',
      'drain',
      'stop-kubelet',
      'remove-sandboxes',
      'stop-runtime',
      'cni-config',
      'cni-state',
      'bpf',
      'interfaces',
      'routes',
      'firewall',
      'netns',
      'modules',
      'start-runtime',
      'start-kubelet',
      'uncordon',
    ]);
    expect(statuses(r)).toEqual({
      preflight: 'nothing-to-do',
      backup: 'ok',
      drain: 'ok',
      'stop-kubelet': 'ok',
      'remove-sandboxes': 'nothing-to-do',
      'stop-runtime': 'ok',
      'cni-config': 'ok',
      'cni-state': 'ok',
      bpf: 'nothing-to-do',
      interfaces: 'ok',
      routes: 'ok',
      firewall: 'ok',
      netns: 'ok',
      modules: 'skipped',
      'start-runtime': 'ok',
      'start-kubelet': 'ok',
      uncordon: 'nothing-to-do',
    });
    // A plan writes no backup: the path it would use shows in the plan script, and the report says null.
    expect(r.report.backup).toBeNull();
    expect(r.plans.find((p) => p.phase.name === 'backup')!.plan!.steps[1]!.argv).toContain(BACKUP_DIR);
  });

  it('a dry run changes nothing: no write call, no lock, no journal', async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host, { opts: { dryRun: true } }));
    expect(host.calls).toEqual([]);
    expect(host.exists(JOURNAL)).toBe(false);
    expect(r.report).toMatchObject({ changed: false, dryRun: true, node: 'node-1', cni: ['flannel'] });
    expect(new Set(r.report.phases.flatMap((p) => p.steps.map((s) => s.status)))).toEqual(new Set(['planned']));
  });

  it('reports unselected phases as skipped and runs none of their commands', async () => {
    const { host } = dirtyFlannelNode();
    const before = host.iptablesSave('iptables-nft');
    const r = await sweep(request(host, { selected: new Set(DEFAULT_PHASES.filter((n) => n !== 'firewall')) }));
    expect(statuses(r).firewall).toBe('skipped');
    expect(r.report.phases.map((p) => p.name)).toEqual(PHASE_NAMES);
    expect(cmd(host).filter((c) => c.includes('-restore') || c.startsWith('nft -f'))).toEqual([]);
    expect(host.iptablesSave('iptables-nft')).toBe(before);
  });

  it('with --only, runs just those phases', async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host, { selected: new Set(['interfaces', 'routes']) }));
    expect(Object.entries(statuses(r)).filter(([, s]) => s !== 'skipped')).toEqual([
      ['interfaces', 'ok'],
      ['routes', 'ok'],
    ]);
    expect(host.calls.map((c) => c.argv)).toEqual([
      ['ip', '-batch', '-'],
      ['ip', '-batch', '-'],
    ]);
    expect(host.units.get('kubelet.service')).toBe('active');
  });

  it("leaves the node clean, with everything that is not Flannel's still there, and a second run changes nothing", async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    const kept = foreignNode();
    const chains = cbr0Chains(host.iptablesSave('iptables-nft'));
    expect(chains).toHaveLength(4);
    expect(flannelLeft(host, chains)).toEqual(
      expect.arrayContaining([
        'link cni0',
        'link flannel.1',
        'route 10.244.2.0/24',
        'route fd00:10:244:2::/64',
        `iptables-nft chain ${chains[0]}`,
        'ip6tables-nft chain FLANNEL-FWD',
        'nft flannel-ipv4',
        'path /etc/cni/net.d/10-flannel.conflist',
        'path /var/lib/cni/networks/cbr0/',
      ]),
    );
    const first = await sweep(request(host));
    expect(first.report.failed).toBeUndefined();
    expect(first.report.changed).toBe(true);
    expect(flannelLeft(host, chains)).toEqual([]);
    // The journal keeps each step's command and outcome; the batches' stdin only as a size.
    const journal = JSON.parse(host.fileAt(host.realPath(JOURNAL))!);
    const batch = first.report.phases.find((p) => p.name === 'interfaces')!.steps[0];
    expect(journal.status).toBe('finished');
    expect(journal.report.phases.find((p: { name: string }) => p.name === 'interfaces').steps).toEqual([
      { argv: ['ip', '-batch', '-'], status: 'ok', ms: batch!.ms, stdinBytes: Buffer.byteLength(batch!.stdin!) },
    ]);
    expect(host.linkNames()).toEqual(kept.linkNames());
    expect(host.routes).toEqual(kept.routes);
    expect(host.nftTables).toEqual(kept.nftTables);
    expect(host.units).toEqual(kept.units);
    expect(host.paths().filter((p) => !p.endsWith('/') && !p.startsWith('/var/backups/') && p !== JOURNAL)).toEqual(
      ['/etc/cni/net.d/87-podman-bridge.conflist', ...kept.paths().filter((p) => !p.endsWith('/'))].sort(),
    );
    // podman still uses portmap: its DNAT entry and the shared chains stay
    expect(host.rules('iptables-nft', 'nat').filter((r) => r.includes('HOSTPORT') || r.includes('podman'))).toEqual([
      '-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-A OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
      '-A POSTROUTING -m comment --comment "CNI portfwd requiring masquerade" -j CNI-HOSTPORT-MASQ',
      '-A CNI-HOSTPORT-MASQ -m mark --mark 0x2000/0x2000 -j MASQUERADE',
      '-A CNI-HOSTPORT-SETMARK -m comment --comment "CNI portfwd masquerade mark" -j MARK --set-xmark 0x2000/0x2000',
      expect.stringMatching(/^-A CNI-HOSTPORT-DNAT -p tcp -m comment --comment "dnat name: \\"podman\\"/),
    ]);

    const calls = host.calls.length;
    const second = await sweep(request(host));
    expect(second.report.changed).toBe(false);
    expect(host.calls.length).toBe(calls);
    expect(
      second.report.phases.filter((p) => p.status !== 'skipped').every((p) => p.status === 'nothing-to-do' && p.steps.length === 0),
    ).toBe(true);
    expect(second.report.phases.filter((p) => p.status === 'skipped').map((p) => p.name)).toEqual(['modules']);
  });

  it('without another portmap user, removes the shared CNI-HOSTPORT chains too, and every cbr0 chain', async () => {
    const { host } = dirtyFlannelNode();
    await sweep(request(host));
    expect(host.chains('iptables-nft', 'nat').filter((c) => c.startsWith('CNI-') || c.startsWith('FLANNEL-'))).toEqual([]);
    expect(host.rules('iptables-nft', 'nat').filter((r) => r.includes('CNI-'))).toEqual([]);
    expect(host.chains('iptables-nft', 'nat')).toEqual([
      'PREROUTING',
      'INPUT',
      'OUTPUT',
      'POSTROUTING',
      'KUBE-SERVICES',
      'KUBE-POSTROUTING',
      'KUBE-MARK-MASQ',
    ]);
  });

  it('neither drains, stops services nor writes anything on a node with nothing to remove', async () => {
    const host = foreignNode();
    const r = await sweep(request(host));
    expect(host.calls).toEqual([]);
    expect(r.report.changed).toBe(false);
    expect(statuses(r)).toMatchObject({
      drain: 'nothing-to-do',
      'stop-kubelet': 'nothing-to-do',
      'stop-runtime': 'nothing-to-do',
      backup: 'nothing-to-do',
    });
    expect(host.units.get('kubelet.service')).toBe('active');
    expect(host.exists(JOURNAL)).toBe(false);
  });

  it('writes the backup before the first change', async () => {
    const { host } = dirtyFlannelNode();
    await sweep(request(host));
    const c = cmd(host);
    const lastBackup = c.findIndex((x) => x.startsWith('sha256sum'));
    const firstChange = c.findIndex((x) => /^(kubectl|systemctl stop|rm |ip -batch|umount)/.test(x));
    expect(lastBackup).toBeGreaterThan(0);
    expect(firstChange).toBeGreaterThan(lastBackup);
    const manifest = JSON.parse(host.fileAt(`${BACKUP_DIR}/manifest.json`)!);
    expect(manifest.files.slice(0, 4)).toEqual([
      '/etc/cni/net.d/10-flannel.conflist',
      '/run/flannel',
      '/var/lib/cni/flannel',
      '/var/lib/cni/networks/cbr0',
    ]);
    expect(manifest.nftables.map((t: { name: string }) => t.name)).toEqual(['flannel-ipv4', 'flannel-ipv6']);
  });

  it('says which units a failure leaves stopped (a start that fails too), and how they get started', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'iptables-nft-restore', { code: 4, stderr: 'iptables-nft-restore: line 3 failed\n' });
    host.failOn((s) => s.argv.join(' ') === 'systemctl start containerd.service', { code: 1, stderr: 'Job failed\n' });
    const r = await sweep(request(host));
    expect(r.report.failed?.phase).toBe('firewall');
    expect(r.report.warnings).toContain(
      'containerd.service is still stopped: the next cni-sweep run starts it (the journal records it), or `systemctl start containerd.service`',
    );
    // Once the restarts work, nothing is said.
    const ok = dirtyFlannelNode().host;
    ok.failOn((s) => s.argv[0] === 'iptables-nft-restore', { code: 4 });
    expect((await sweep(request(ok))).report.warnings?.some((w) => /still stopped/.test(w)) ?? false).toBe(false);
  });

  it('restarts the runtime and kubelet when a phase fails after stopping them, and reports the failed command', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'iptables-nft-restore', { code: 4, stderr: 'iptables-nft-restore: line 3 failed\n' });
    const r = await sweep(request(host));
    expect(r.report.failed).toEqual({
      phase: 'firewall',
      error: 'iptables-nft-restore --noflush -w exited 4: iptables-nft-restore: line 3 failed',
      argv: ['iptables-nft-restore', '--noflush', '-w'],
      exitCode: 4,
      stderr: 'iptables-nft-restore: line 3 failed\n',
    });
    // The firewall and the links go beside cni-state once cni-config has ended: the link batch had
    // started when the firewall failed, cni-state's step had not, and no step started after that.
    expect(statuses(r)).toMatchObject({
      'cni-state': 'skipped',
      interfaces: 'ok',
      routes: 'skipped',
      firewall: 'failed',
      netns: 'skipped',
      'start-runtime': 'ok',
      'start-kubelet': 'ok',
      uncordon: 'skipped',
    });
    const byName = Object.fromEntries(r.report.phases.map((p) => [p.name, p]));
    expect(byName['cni-state']!.notes).toEqual(['not run: phase firewall failed']);
    expect(byName['cni-state']!.steps.map((st) => st.status)).toEqual(['not-run']);
    expect(byName.routes!.notes).toEqual(['not run: phase firewall failed']);
    expect(byName.netns!.notes).toEqual(['not run: phase firewall failed']);
    expect(byName['start-runtime']!.notes).toEqual(['run because phase firewall failed']);
    expect(byName.firewall!.steps[0]).toMatchObject({ status: 'failed', exitCode: 4, stderr: 'iptables-nft-restore: line 3 failed\n' });
    expect(cmd(host).slice(-2)).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    expect([host.units.get('containerd.service'), host.units.get('kubelet.service')]).toEqual(['active', 'active']);
    expect(r.report.changed).toBe(true);
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!).status).toBe('failed');
  });

  it('one firewall batch rejected: the batches beside it still apply, the phase fails naming the rejected one', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'ip6tables-nft-restore', { code: 2, stderr: 'ip6tables-nft-restore: line 2 failed\n' });
    const r = await sweep(request(host));
    expect(r.report.failed).toMatchObject({ phase: 'firewall', argv: ['ip6tables-nft-restore', '--noflush', '-w'], exitCode: 2 });
    const fw = r.report.phases.find((p) => p.name === 'firewall')!;
    expect(fw.steps.map((x) => [x.argv[0], x.status])).toEqual([
      ['iptables-nft-restore', 'ok'],
      ['ip6tables-nft-restore', 'failed'],
      ['nft', 'ok'],
    ]);
    expect(host.iptablesSave('iptables-nft')).not.toMatch(/FLANNEL/);
    expect(host.iptablesSave('ip6tables-nft')).toMatch(/FLANNEL-POSTRTG/);
    expect(host.nftTables.map((t) => t.name)).toEqual(['site-filter']);
    expect(statuses(r)).toMatchObject({ firewall: 'failed', netns: 'skipped', 'start-runtime': 'ok', 'start-kubelet': 'ok' });
  });

  it('leaves them stopped with restartOnFailure: false', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'iptables-nft-restore');
    const r = await sweep(request(host, { restartOnFailure: false }));
    expect(statuses(r)).toMatchObject({ firewall: 'failed', 'start-runtime': 'skipped', 'start-kubelet': 'skipped' });
    expect(cmd(host).filter((c) => c.startsWith('systemctl start'))).toEqual([]);
    expect(host.units.get('kubelet.service')).toBe('inactive');
  });

  it('a failing drain stops the run before anything is removed or stopped', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'kubectl', { code: 1, stderr: 'error: cannot evict pod\n' });
    const r = await sweep(request(host));
    expect(r.report.failed).toMatchObject({ phase: 'drain', exitCode: 1 });
    expect(cmd(host).filter((c) => /^(systemctl|rm |umount|nft -f|ip -batch|ip6?tables-\S+-restore)/.test(c))).toEqual([]);
    expect(flannelLeft(host)).toEqual(flannelLeft(dirtyFlannelNode().host));
  });

  it('stops after the phase in flight when interrupted, restarts services and says so', async () => {
    const { host } = dirtyFlannelNode();
    const interrupt = interruptOn(host, ['rm', '-f'], 'SIGINT');
    const r = await sweep(request(host, { interrupt }));
    expect(r.report.interrupted).toBe('SIGINT');
    expect(statuses(r)).toMatchObject({
      'cni-config': 'ok',
      'cni-state': 'skipped',
      interfaces: 'skipped',
      netns: 'skipped',
      'start-runtime': 'ok',
      'start-kubelet': 'ok',
    });
    expect(r.report.phases.find((p) => p.name === 'interfaces')!.notes).toEqual(['not run: SIGINT']);
    expect(host.link('cni0')).toBeDefined();
    expect(host.units.get('containerd.service')).toBe('active');
  });

  it('an interrupt mid-phase stops before the next step of that phase, not only between phases', async () => {
    const { host } = dirtyFlannelNode();
    const interrupt = interruptOn(host, ['umount'], 'SIGTERM');
    const r = await sweep(request(host, { interrupt }));
    expect(r.report.interrupted).toBe('SIGTERM');
    const ns = r.report.phases.find((p) => p.name === 'netns')!;
    expect(ns.steps.map((st) => `${st.argv[0]}:${st.status}`)).toEqual(['umount:ok', 'rm:not-run']);
    expect(ns.notes).toEqual(['interrupted by SIGTERM after 1 of 2 steps']);
    expect(ns.status).toBe('interrupted');
    expect(host.paths().filter((p) => p.startsWith('/run/netns/cni-')).length).toBe(2);
    expect(host.units.get('kubelet.service')).toBe('active');
  });

  it('an interrupt during side-by-side steps lets them all finish, then stops', async () => {
    const { host } = dirtyFlannelNode();
    const interrupt = interruptOn(host, ['iptables-nft-restore'], 'SIGTERM');
    const r = await sweep(request(host, { interrupt }));
    const fw = r.report.phases.find((p) => p.name === 'firewall')!;
    expect(fw.steps.map((st) => `${st.argv[0]}:${st.status}`)).toEqual(['iptables-nft-restore:ok', 'ip6tables-nft-restore:ok', 'nft:ok']);
    // netns, planned once the links were gone, starts no step after the signal.
    const ns = r.report.phases.find((p) => p.name === 'netns')!;
    expect(ns.steps.map((st) => st.status)).toEqual(['not-run', 'not-run']);
    expect(ns.notes).toEqual(['not run: SIGTERM']);
    expect(statuses(r)).toMatchObject({ firewall: 'ok', netns: 'skipped' });
  });

  it("keeps what it removes from nftables as inspection read it: the iptables saves and the CNI's own tables, not the whole ruleset again", async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host));
    expect(r.report.failed).toBeUndefined();
    const saved = r.report.phases
      .find((p) => p.name === 'backup')!
      .steps.filter((s) => s.status === 'ok')
      .map((s) => s.argv.join(' '));
    expect(saved).toEqual(
      expect.arrayContaining([
        'iptables-nft-save',
        'ip6tables-nft-save',
        'nft list table ip flannel-ipv4',
        'nft list table ip6 flannel-ipv6',
      ]),
    );
    expect(host.queries.map((q) => q.join(' '))).not.toContain('nft list ruleset');
    expect(host.exists(`${BACKUP_DIR}/firewall/nft.ruleset`)).toBe(false);
    expect(host.exists(`${BACKUP_DIR}/firewall/nft-ip-flannel-ipv4.nft`)).toBe(true);
  });

  it('does not report changed when only its own backup files were written (the backup failed, nothing else ran)', async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv[0] === 'tar', { code: 2, stderr: 'tar: write error\n' });
    const r = await sweep(request(host));
    expect(r.report.failed).toMatchObject({ phase: 'backup', exitCode: 2 });
    expect(r.report.changed).toBe(false);
    expect(cmd(host).filter((c) => /^(kubectl|systemctl (stop|start))/.test(c))).toEqual([]);
  });

  it("runs the backup's reads together; one that fails fails the backup after the others finished, before any change", async () => {
    const { host } = dirtyFlannelNode();
    host.failOn((s) => s.argv.join(' ') === 'ip -d -j addr show', { code: 1, stderr: 'Dump was interrupted\n' });
    const r = await sweep(request(host));
    expect(r.report.failed).toMatchObject({ phase: 'backup', argv: ['ip', '-d', '-j', 'addr', 'show'], exitCode: 1 });
    const steps = r.report.phases.find((p) => p.name === 'backup')!.steps;
    // mkdir alone, then every save at once; the checksums wait for all of them and do not run.
    expect(steps[1]).toMatchObject({
      argv: ['mkdir', '-m', '0700', '--', BACKUP_DIR, `${BACKUP_DIR}/firewall`, `${BACKUP_DIR}/node`],
      status: 'ok',
    });
    expect(steps.filter((s) => s.status === 'failed').map((s) => s.argv.join(' '))).toEqual(['ip -d -j addr show']);
    expect(steps.slice(1).map((s) => s.argv[0])).toEqual(expect.arrayContaining(['iptables-nft-save', 'nft', 'tar', 'cat']));
    expect(steps.filter((s) => s.argv[0] !== 'ip').every((s) => s.status === 'ok')).toBe(true);
    expect(steps.some((s) => s.argv[0] === 'sha256sum')).toBe(false);
    // What was written is no backup: it is removed again, and the report names no backup.
    expect(steps.at(-1)).toMatchObject({ argv: ['rm', '-rf', '--', BACKUP_DIR], status: 'ok' });
    expect(host.exists(BACKUP_DIR)).toBe(false);
    expect(r.report.backup).toBeNull();
    expect(r.report.failed!.error).toMatch(/; removed the partial backup \S+; nothing on the node was changed$/);
    expect(statuses(r)).toMatchObject({ drain: 'skipped', 'cni-config': 'skipped', firewall: 'skipped' });
    expect(flannelLeft(host)).not.toEqual([]);
    expect(r.report.changed).toBe(false);
  });

  it('a backup directory that cannot be made (a read-only disk): the error names the cause, and no removal of a backup that never was', async () => {
    const { host } = dirtyFlannelNode();
    const stderr = `mkdir: cannot create directory '${BACKUP_DIR}': Read-only file system\nmkdir: cannot create directory '${BACKUP_DIR}/firewall': No such file or directory\nmkdir: cannot create directory '${BACKUP_DIR}/node': No such file or directory\n`;
    host.failOn((st) => st.argv[0] === 'mkdir' && st.argv[1] === '-m', { code: 1, stderr });
    const r = await sweep(request(host));
    expect(r.report.failed!.error).toBe(
      `mkdir -m 0700 -- ${BACKUP_DIR} ${BACKUP_DIR}/firewall ${BACKUP_DIR}/node exited 1: mkdir: cannot create directory '${BACKUP_DIR}': Read-only file system; no backup was written; nothing on the node was changed`,
    );
    expect(r.report.phases.find((p) => p.name === 'backup')!.steps.map((st) => st.argv[0])).not.toContain('rm');
    expect(r.report.changed).toBe(false);
  });

  it('a signal while the backup is written: the partial backup is removed, the report names none, nothing on the node changed', async () => {
    const { host } = dirtyFlannelNode();
    const interrupt = interruptOn(host, ['tar'], 'SIGTERM');
    const r = await sweep(request(host, { interrupt }));
    expect(r.report.interrupted).toBe('SIGTERM');
    const backup = r.report.phases.find((p) => p.name === 'backup')!;
    expect(backup.status).toBe('interrupted');
    expect(backup.steps.at(-1)).toMatchObject({ argv: ['rm', '-rf', '--', BACKUP_DIR], status: 'ok' });
    expect(backup.notes.at(-1)).toBe(`removed the partial backup ${BACKUP_DIR}`);
    expect(host.exists(BACKUP_DIR)).toBe(false);
    expect(r.report.backup).toBeNull();
    expect(r.report.changed).toBe(false);
    expect(flannelLeft(host)).not.toEqual([]);
  });

  it('asks before the first change and changes nothing when not confirmed', async () => {
    const { host } = dirtyFlannelNode();
    let asked: string[] = [];
    const r = await sweep(
      request(host, {
        confirm: async (plans) => {
          asked = plans.filter((p) => p.plan.steps.length).map((p) => p.phase.name);
          return false;
        },
      }),
    );
    expect(r.aborted).toBe(true);
    expect(asked).toEqual([
      'backup',
      'drain',
      'stop-kubelet',
      'stop-runtime',
      'cni-config',
      'cni-state',
      'interfaces',
      'routes',
      'firewall',
      'netns',
      'start-runtime',
      'start-kubelet',
    ]);
    expect(host.calls).toEqual([]);
    expect(host.locks.size).toBe(0);
  });

  it('plans each phase again just before applying it, against the node as it is then', async () => {
    const { host } = dirtyFlannelNode();
    await sweep(
      request(host, {
        confirm: async () => {
          host.addLink({ ifname: 'vethlate', master: 'cni0', linkinfo: { info_kind: 'veth' } });
          return true;
        },
      }),
    );
    expect(host.link('vethlate')).toBeUndefined();
    expect(host.calls.find((c) => c.stdin?.includes('link set dev cni0 group'))!.stdin).toContain('link set dev vethlate group 4242424\n');
  });

  it('refuses while another run holds the lock, and a plan does not need it', async () => {
    const { host } = dirtyFlannelNode();
    host.holdLock('/run/cni-sweep.lock', 4242);
    const err = await sweep(request(host)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RefusedError);
    expect((err as Error).message).toBe('another cni-sweep run (pid 4242) holds /run/cni-sweep.lock');
    expect(host.calls).toEqual([]);
    expect((await sweep(request(host, { opts: { dryRun: true } }))).report.failed).toBeUndefined();
  });

  it("refuses a --backup-dir in the distribution's CNI config directory, before changing anything", async () => {
    const { host } = dirtyFlannelNode();
    const confDir = '/var/lib/rancher/k3s/agent/etc/cni/net.d';
    const distro: NodeDistro = {
      name: 'k3s',
      role: 'agent',
      evidence: ['--distro k3s'],
      dataDir: '/var/lib/rancher/k3s',
      confDirs: [confDir, '/etc/cni/net.d'],
      binDirs: ['/var/lib/rancher/k3s/data/current/bin'],
      criSocket: null,
      units: { kubelet: ['k3s-agent.service'], runtime: [] },
      adds: {},
      config: null,
    };
    const err = await sweep(request(host, { distro, opts: { backupDir: `${confDir}/backups` } })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toBe(`--backup-dir ${confDir}/backups is in the CNI config directory ${confDir}`);
    expect(host.calls).toEqual([]);
  });

  it('fails before changing anything when it cannot write its journal', async () => {
    const { host } = dirtyFlannelNode();
    host.writable = false;
    await expect(sweep(request(host))).rejects.toThrow(UsageError);
    expect(host.calls).toEqual([]);
    expect(host.locks.size).toBe(0);
  });

  it('a last journal write that fails (the disk filled meanwhile) is a warning: the run that cleaned the node still reports and succeeds', async () => {
    const { host } = dirtyFlannelNode();
    const write = host.writeState.bind(host);
    host.writeState = async (p: string, text: string) => {
      if (p === JOURNAL && JSON.parse(text).status === 'finished') throw new Error('ENOSPC: no space left on device, write');
      return write(p, text);
    };
    const r = await sweep(request(host));
    expect(r.report.failed).toBeUndefined();
    expect(r.report.warnings).toContain(
      'could not write the journal /var/lib/cni-sweep/last-run.json: ENOSPC: no space left on device, write; the next run may take this one for unfinished and check the node again',
    );
    expect(flannelLeft(host)).toEqual([]);
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!).status).toBe('running');
  });

  it('a journal write stalled on a busy disk does not hold up the next phase; the last record is on disk when the run returns', async () => {
    const { host } = dirtyFlannelNode();
    const events: string[] = [];
    const write = host.writeState.bind(host);
    let n = 0;
    const records: Array<{ status: string; report: { phases: Array<{ name: string; status: string; ms?: number }> } }> = [];
    host.writeState = async (p, content) => {
      const k = ++n;
      records.push(JSON.parse(content));
      const status = (JSON.parse(content) as { status: string }).status;
      events.push(`write ${k} ${status} start`);
      if (k > 1) await new Promise((r) => setTimeout(r, 30)); // every progress record stalls
      await write(p, content);
      events.push(`write ${k} end`);
    };
    host.failOn((s) => {
      events.push(`step ${s.argv[0]}`);
      return false;
    });
    const r = await sweep(request(host));
    expect(r.report.failed).toBeUndefined();
    // Nothing changes before the first record (the facts a crashed run leaves) is written.
    expect(events.slice(0, 2)).toEqual(['write 1 running start', 'write 1 end']);
    // Phases went on while the second record was being written.
    const stalled = events.slice(events.indexOf('write 2 running start'), events.indexOf('write 2 end'));
    expect(stalled.filter((e) => e.startsWith('step ')).length).toBeGreaterThan(0);
    // Records waiting behind a stalled one collapse into the newest: fewer writes than phases.
    expect(n).toBeLessThan(r.report.phases.filter((p) => p.status !== 'skipped').length + 1);
    // A progress record shows the run as it was when its phase ended, not the next phase begun.
    for (const rec of records.slice(1)) expect(rec.report.phases.filter((p) => p.status === 'ok' && p.ms === undefined)).toEqual([]);
    // The run returns after its final record is written, and that record has every phase.
    expect(events.at(-1)).toBe(`write ${n} end`);
    const journal = JSON.parse(host.fileAt(host.realPath(JOURNAL))!);
    expect(journal.status).toBe('finished');
    expect(journal.report.phases.map((p: { name: string; status: string }) => `${p.name} ${p.status}`)).toEqual(
      r.report.phases.map((p) => `${p.name} ${p.status}`),
    );
  });

  it('refuses --uncordon up front when no CNI config would be left, changing nothing', async () => {
    const { host } = dirtyFlannelNode();
    const r = await sweep(request(host, { opts: { uncordon: true } }));
    expect(r.report.failed?.phase).toBe('uncordon');
    expect(host.calls).toEqual([]);
  });

  it("uncordons at the end with --uncordon when another pod network's config stays", async () => {
    const { host } = dirtyFlannelNode({ podman: true });
    host.writeFile('/etc/cni/net.d/10-calico.conflist', CALICO_CONFLIST);
    await sweep(request(host, { opts: { uncordon: true } }));
    expect(cmd(host).at(-1)).toBe('kubectl --kubeconfig /root/.kube/config uncordon node-1');
    expect(host.cordoned.size).toBe(0);
  });

  it('a rerun after a failed run still finds the host-gw routes, using what the failed run had recorded', async () => {
    const { host } = dirtyFlannelNode();
    let broken = true;
    host.failOn((s) => broken && (s.stdin?.startsWith('route delete') ?? false));
    const first = await sweep(request(host));
    expect(first.report.failed?.phase).toBe('routes');
    expect(host.exists('/run/flannel/subnet.env')).toBe(false);
    broken = false;
    await sweep(request(host));
    expect(host.routes[4].map((r) => r.dst)).not.toContain('10.244.2.0/24');
    expect(host.routes[6].map((r) => r.dst)).not.toContain('fd00:10:244:2::/64');
  });

  it('a cleanup split over --only runs: the later run finds host-gw routes with the networks the first recorded', async () => {
    const { host } = dirtyFlannelNode();
    const first = await sweep(request(host, { selected: new Set(['backup', 'cni-config', 'cni-state']) }));
    expect(first.report.failed).toBeUndefined();
    expect(host.exists('/run/flannel/subnet.env')).toBe(false);
    const notes: string[] = [];
    await sweep(
      request(host, {
        selected: new Set(['backup', 'routes']),
        reporter: {
          emit: (e) => {
            if (e.type === 'note' && !('phase' in e && e.phase)) notes.push(e.text);
          },
          pause() {},
        },
      }),
    );
    expect(host.routes[4].map((r) => r.dst)).not.toContain('10.244.2.0/24');
    expect(notes).toEqual([
      expect.stringMatching(
        /^using the networks the run of 2026-11-21T21:00:00\.000Z recorded before it removed them \(pass --pod-cidr to override\)$/,
      ),
    ]);
  });

  it('a selection that stops kubelet or the runtime and does not start it again says so before anything changes', async () => {
    const warned = async (skip: string[]) => {
      const { host } = dirtyFlannelNode();
      const r = await sweep(request(host, { selected: new Set(DEFAULT_PHASES.filter((p) => !skip.includes(p))), opts: { dryRun: true } }));
      return r.report.warnings ?? [];
    };
    expect(await warned([])).toEqual([]);
    expect(await warned(['start-runtime', 'start-kubelet'])).toEqual([
      'kubelet.service is stopped and not started again (phase start-kubelet is not selected): the node stays without it until `systemctl start kubelet.service`',
      'containerd.service is stopped and not started again (phase start-runtime is not selected): the node stays without it until `systemctl start containerd.service`',
    ]);
    expect(await warned(['start-runtime'])).toEqual([
      'containerd.service is stopped and not started again (phase start-runtime is not selected): the node stays without it until `systemctl start containerd.service`',
      'kubelet is started again while containerd.service stays stopped: the node goes NotReady',
    ]);
  });

  it("a finished run's networks never widen what a node still shows", async () => {
    const { host } = dirtyFlannelNode();
    await sweep(request(host, { selected: new Set(['backup', 'cni-config']) }));
    // Flannel is back with another pod network; the journal's 10.244.0.0/16 must not be added to it.
    host.writeFile('/run/flannel/subnet.env', 'FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.3.1/24\n');
    const r = await sweep(request(host, { selected: new Set(['backup', 'routes']) }));
    const routes = r.report.phases.find((p) => p.name === 'routes')!;
    // Only the routes through flannel's own device go (interfaces is not in this run); the host-gw
    // route into the old 10.244.0.0/16 is outside what the node shows now, and stays.
    expect(routes.steps.map((st) => st.stdin)).toEqual(['route delete 10.244.0.0/24 via 10.244.0.0 dev flannel.1\n']);
    expect(host.routes[4].map((x) => x.dst)).toContain('10.244.2.0/24');
  });

  // With no CNI detected or chosen, nothing on the node is any CNI's to remove: the shared portmap
  // chains another runtime (k3s, nerdctl, a CNI whose config lives elsewhere) may be using must stay,
  // and the node must not be drained or have its services restarted for them.
  it('removes nothing when no CNI is selected, not even leftover CNI-HOSTPORT chains', async () => {
    const host = foreignNode();
    host.setIptables(
      'iptables-nft',
      [
        '*nat',
        ':PREROUTING ACCEPT [0:0]',
        ':CNI-HOSTPORT-DNAT - [0:0]',
        ':CNI-HOSTPORT-MASQ - [0:0]',
        '-A PREROUTING -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT',
        'COMMIT',
        '',
      ].join('\n'),
    );
    const r = await sweep(request(host, { profiles: [], opts: { dryRun: true } }));
    expect(r.report.phases.flatMap((p) => p.steps.map((s) => s.argv.join(' ')))).toEqual([]);
  });
});
