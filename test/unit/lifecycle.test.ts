// Half-done runs and bad input on the fake host and in-process: the services a killed run left
// stopped, the short form of a long command, the tar reader restore relies on, empty values.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { tarMembers } from '../../src/backup/tar.js';
import { shortArgv } from '../../src/errors.js';
import { silentReporter } from '../../src/events.js';
import type { FakeHost } from '../../src/host/fake.js';
import { JOURNAL } from '../../src/journal.js';
import { PHASES } from '../../src/phases/index.js';
import { sweep } from '../../src/run.js';
import { dirtyFlannelNode } from './fake-node.js';
import { DEFAULT_PHASES, FLANNEL, isolateKubeconfigEnv, runMain, runOptions } from './helpers.js';

isolateKubeconfigEnv();

const request = (host: FakeHost, o: { dryRun?: boolean; restartOnFailure?: boolean } = {}) => ({
  host,
  profiles: [FLANNEL],
  phases: PHASES,
  selected: new Set(DEFAULT_PHASES),
  reporter: silentReporter,
  restartOnFailure: o.restartOnFailure,
  opts: runOptions({ dryRun: o.dryRun ?? false }),
});

/** A node a killed run left: everything cleaned, its journal still "running", kubelet and containerd stopped. */
async function leftByKilledRun(): Promise<FakeHost> {
  const { host } = dirtyFlannelNode();
  host.units.set('kubelet.service', 'active');
  host.units.set('containerd.service', 'active');
  expect((await sweep(request(host))).report.changed).toBe(true);
  const journal = JSON.parse(host.fileAt(host.realPath(JOURNAL))!);
  host.units.set('kubelet.service', 'inactive');
  host.units.set('containerd.service', 'inactive');
  await host.writeState(JOURNAL, JSON.stringify({ ...journal, status: 'running', leftStopped: ['kubelet.service', 'containerd.service'] }));
  host.calls.length = 0;
  return host;
}

describe('services a killed run left stopped', () => {
  it('a later run with nothing to clean starts them, in reverse stop order, and says why; a plan shows it', async () => {
    const host = await leftByKilledRun();
    const plan = await sweep(request(host, { dryRun: true }));
    const planned = plan.plans.flatMap((p) => p.plan?.steps ?? []).map((s) => s.argv.join(' '));
    expect(planned).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    expect(host.calls).toEqual([]);
    const r = await sweep(request(host));
    expect(host.calls.map((c) => c.argv.join(' '))).toEqual(['systemctl start containerd.service', 'systemctl start kubelet.service']);
    expect(host.units.get('kubelet.service')).toBe('active');
    expect(r.report.phases.find((p) => p.name === 'start-runtime')!.notes).toEqual([
      expect.stringMatching(
        /^the unfinished run of \S+ \(pid \d+\) stopped kubelet\.service, containerd\.service and did not start them again: starting them at the end of this run$/,
      ),
    ]);
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!)).toMatchObject({ status: 'finished', leftStopped: [] });
  });

  it('with --no-restart-on-failure it leaves them stopped, and keeps the record', async () => {
    const host = await leftByKilledRun();
    await sweep(request(host, { restartOnFailure: false }));
    expect(host.calls).toEqual([]);
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!).leftStopped).toEqual(['kubelet.service', 'containerd.service']);
  });

  it('a finished run that left kubelet stopped (--skip start-kubelet): once started by hand, it is forgotten, and never started by a later run after the operator stops it', async () => {
    const { host } = dirtyFlannelNode();
    host.units.set('kubelet.service', 'active');
    host.units.set('containerd.service', 'active');
    await sweep({ ...request(host), selected: new Set(DEFAULT_PHASES.filter((p) => p !== 'start-kubelet')) });
    expect(host.units.get('kubelet.service')).toBe('inactive');
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!).leftStopped).toEqual(['kubelet.service']);
    // The operator starts it; a run on the clean node forgets it.
    host.units.set('kubelet.service', 'active');
    await sweep(request(host));
    expect(JSON.parse(host.fileAt(host.realPath(JOURNAL))!).leftStopped).toEqual([]);
    // Weeks later the operator stops it for maintenance: no run starts it.
    host.units.set('kubelet.service', 'inactive');
    host.calls.length = 0;
    const plan = await sweep(request(host, { dryRun: true }));
    expect(plan.plans.flatMap((p) => p.plan?.steps ?? [])).toEqual([]);
    await sweep(request(host));
    expect(host.calls).toEqual([]);
  });

  it('a unit started by hand since is left alone', async () => {
    const host = await leftByKilledRun();
    host.units.set('containerd.service', 'active');
    await sweep(request(host));
    expect(host.calls.map((c) => c.argv.join(' '))).toEqual(['systemctl start kubelet.service']);
  });
});

describe('shortArgv', () => {
  it('keeps a short command whole and shortens a long one to its options, first operand and count', () => {
    expect(shortArgv(['rm', '-f', '--', '/a'])).toBe('rm -f -- /a');
    const paths = Array.from({ length: 23 }, (_, i) => `/root/var/lib/cni/results/cbr0-${String(i).padStart(64, '0')}-eth0`);
    expect(shortArgv(['rm', '-rf', '--', ...paths])).toBe(`rm -rf -- ${paths[0]!.slice(0, 77)}... ... (23 paths)`);
    // Without "--", the first word that is not an option counts as the first operand.
    expect(shortArgv(['crictl', 'rmp', ...Array.from({ length: 40 }, () => 'f'.repeat(64))])).toBe('crictl rmp ... (41 arguments)');
  });
});

describe('tarMembers', () => {
  it('reads what GNU tar writes: long names, directories, symlinks, hard links, sizes and checksums', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-tar-'));
    const long = `var/lib/cni/results/cbr0-${'a'.repeat(64)}-eth0`;
    fs.mkdirSync(path.join(dir, 'var/lib/cni/results'), { recursive: true });
    fs.writeFileSync(path.join(dir, long), '{"kind":"cniCacheV1"}');
    fs.symlinkSync('../../../../etc', path.join(dir, 'var/lib/cni/up'));
    fs.linkSync(path.join(dir, long), path.join(dir, 'var/lib/cni/hard'));
    const archive = path.join(dir, 'a.tar');
    execFileSync('tar', ['-C', dir, '-cf', archive, 'var']);
    const members = tarMembers(fs.readFileSync(archive));
    fs.rmSync(dir, { recursive: true });
    const byName = Object.fromEntries(members.map((m) => [m.name, m]));
    expect(byName['var/lib/cni/results']).toEqual({ name: 'var/lib/cni/results', type: 'dir', size: 0 });
    expect(byName['var/lib/cni/up']).toEqual({ name: 'var/lib/cni/up', type: 'symlink', size: 0, link: '../../../../etc' });
    const file = Object.values(byName).find((m) => m.type === 'file')!;
    const hard = Object.values(byName).find((m) => m.type === 'hardlink')!;
    expect([file.name, hard.link].sort()).toEqual([file.name, file.name]);
    expect([file.name, hard.name].sort()).toEqual(['var/lib/cni/hard', long].sort());
    expect(file).toMatchObject({ size: 21, sha256: createHash('sha256').update('{"kind":"cniCacheV1"}').digest('hex') });
  });

  it('refuses a truncated archive and a header whose checksum is wrong', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-tar-'));
    fs.writeFileSync(path.join(dir, 'f'), 'x');
    execFileSync('tar', ['-C', dir, '-cf', path.join(dir, 'a.tar'), 'f']);
    const buf = fs.readFileSync(path.join(dir, 'a.tar'));
    fs.rmSync(dir, { recursive: true });
    expect(() => tarMembers(buf.subarray(0, 600))).toThrow(/truncated/);
    const bad = Buffer.from(buf);
    bad[0] = 'g'.charCodeAt(0);
    expect(() => tarMembers(bad)).toThrow(/header checksum mismatch/);
  });
});

describe('empty values everywhere', () => {
  const cli = async (argv: string[]) => {
    const { host } = dirtyFlannelNode();
    const { code, stderr } = await runMain(argv, host);
    return { code, stderr, calls: host.calls };
  };
  it.each([
    [['restore', '']],
    [['restore', '/x', '--root', '']],
    [['backups', 'prune', '--keep', '']],
    [['backups', '--backup-dir', '']],
    [['doctor', '--cni', '']],
    [['plan', '--only', ',']],
  ])('%j: exit 2, one line, nothing run', async (argv) => {
    const r = await cli(argv);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^cni-sweep: error: [^\n]+\n( {2}hint: [^\n]+\n)?$/);
    expect(r.calls).toEqual([]);
  });
});
