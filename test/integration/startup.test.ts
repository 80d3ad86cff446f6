// The built CLI answers --version and --help from its loader, without reading the bundle: the
// answers must be the bundle's, and everything else must still reach the bundle, with the code
// cache when V8 takes it and without it when not.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLE, CLI, REPO, cliEnv, nodeArgs, TestNodes } from '../helpers/harness.js';
import { loadProfiles } from '../../src/profiles/index.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const node = (argv: string[]) => {
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const cli = (...args: string[]) => node([CLI, ...args]);

// Preloaded: says on stderr whether the loader gave vm.Script a code cache and whether V8 took it.
const CACHE_PROBE = `const vm = require('node:vm'), S = vm.Script;
vm.Script = class extends S {
  constructor(code, o) {
    super(code, o);
    process.stderr.write(!o?.cachedData ? 'cache: none\\n' : this.cachedDataRejected ? 'cache: rejected\\n' : 'cache: taken\\n');
  }
};`;

const nodes = new TestNodes({ pods: 3 });
afterEach(nodes.cleanUp);
let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  dirs = [];
});
/** A copy of the built files in a directory of their own, and the code-cache probe beside them. */
function copyOfDist(files = ['cni-sweep.cjs', 'cni-sweep.bundle.cjs', 'cni-sweep.cache']): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-startup-'));
  dirs.push(d);
  for (const f of files) fs.copyFileSync(path.join(REPO, 'dist', f), path.join(d, f));
  fs.writeFileSync(path.join(d, 'probe.cjs'), CACHE_PROBE);
  return d;
}
const probed = (dir: string, ...args: string[]) => node(['-r', path.join(dir, 'probe.cjs'), path.join(dir, 'cni-sweep.cjs'), ...args]);

describe('the built CLI at start-up', () => {
  it('prints the version for --version, -V and version, exit 0', () => {
    for (const a of ['--version', '-V']) expect(cli(a)).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
    expect(cli('version')).toEqual({ code: 0, stdout: `cni-sweep ${VERSION}\n`, stderr: '' });
  });

  it('prints the same help for --help, -h, help and nothing, exit 0, as the bundle does after an option it parses', () => {
    const help = cli('--help');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cni-sweep \[options\] \[command\]\n/);
    expect(help.stdout).toContain('Exit codes: 0 success, 1 a phase failed, 2 bad usage or input, 3 refused.');
    for (const a of [['-h'], ['help'], []]) expect(cli(...a)).toEqual(help);
    // --verbose is no fast path: the bundle itself prints the help.
    expect(cli('--verbose', '--help')).toEqual(help);
  });

  it('runs the bundle for everything else', () => {
    const v = cli('version', '--json');
    expect(v.code).toBe(0);
    expect(JSON.parse(v.stdout)).toMatchObject({ version: VERSION, node: process.version });
    expect(cli('--versio')).toMatchObject({ code: 2, stdout: '' });
    expect(cli('--versio').stderr).toMatch(/^cni-sweep: error: /);
    expect(cli('profiles').stdout).toMatch(/^flannel: /);
  });

  it('compiles the bundle with the code cache made at build time', () => {
    const r = probed(copyOfDist(), 'profiles');
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('cache: taken\n');
    expect(r.stdout).toBe(cli('profiles').stdout);
  });

  it('starts without the Node modules only some commands use (they load when used)', () => {
    // What the bundle requires at its top runs before the listings start, on every command.
    const d = copyOfDist();
    fs.writeFileSync(
      path.join(d, 'loaded.cjs'),
      "process.on('exit', () => process.stderr.write(process.moduleLoadList.filter((m) => /^NativeModule (crypto|readline)$/.test(m)).join(',') + '\\n'));",
    );
    const r = node(['-r', path.join(d, 'loaded.cjs'), path.join(d, 'cni-sweep.cjs'), 'plan', '--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Usage: cni-sweep plan/);
    expect(r.stderr).toBe('\n');
  });

  it("runs the same without the cache V8 refuses (another Node's), or one from another build, or none", () => {
    const expected = cli('profiles');
    expect(expected.stdout).toMatch(/^flannel: /);
    // Another V8 version: its version hash (bytes 4-7 of V8's header) differs, and V8 refuses the data.
    const other = copyOfDist();
    const cache = fs.readFileSync(path.join(other, 'cni-sweep.cache'));
    cache.writeUInt32LE((cache.readUInt32LE(4) ^ 0xffffffff) >>> 0, 4);
    fs.writeFileSync(path.join(other, 'cni-sweep.cache'), cache);
    expect(probed(other, 'profiles')).toEqual({ ...expected, stderr: 'cache: rejected\n' });
    // Another build's cache (its tag names another build): not even offered to V8.
    const stale = copyOfDist();
    const c = fs.readFileSync(path.join(stale, 'cni-sweep.cache'), 'latin1');
    fs.writeFileSync(path.join(stale, 'cni-sweep.cache'), c.replace(/build [0-9a-f]+\n$/, 'build 0123456789abcdef\n'), 'latin1');
    expect(probed(stale, 'profiles')).toEqual({ ...expected, stderr: 'cache: none\n' });
    const none = copyOfDist(['cni-sweep.cjs', 'cni-sweep.bundle.cjs']);
    expect(probed(none, 'profiles')).toEqual({ ...expected, stderr: 'cache: none\n' });
  });

  it('says in one line that the bundle is missing or from another build, and exits 1', () => {
    const alone = copyOfDist(['cni-sweep.cjs']);
    const bundle = path.join(alone, 'cni-sweep.bundle.cjs');
    const msg = `cni-sweep: error: ${bundle} is missing or not the one built with ${path.join(alone, 'cni-sweep.cjs')}: reinstall cni-sweep\n`;
    expect(probed(alone, 'profiles')).toEqual({ code: 1, stdout: '', stderr: msg });
    fs.writeFileSync(bundle, fs.readFileSync(BUNDLE, 'utf8').replace(/ build [0-9a-f]+:/, ' build 0123456789abcdef:'));
    expect(probed(alone, 'profiles')).toEqual({ code: 1, stdout: '', stderr: msg });
    // The fast answers need no bundle.
    expect(probed(alone, '--version')).toEqual({ code: 0, stdout: `${VERSION}\n`, stderr: '' });
  });

  it('runs from the bundle file alone, copied anywhere (what the Ansible role copies)', () => {
    const alone = copyOfDist(['cni-sweep.bundle.cjs']);
    const run = (...args: string[]) => node([path.join(alone, 'cni-sweep.bundle.cjs'), ...args]);
    expect(run('--version')).toEqual(cli('--version'));
    expect(run('--help')).toEqual(cli('--help'));
    expect(run('profiles')).toEqual(cli('profiles'));
    expect(run('--versio')).toEqual(cli('--versio'));
  });

  it('knows the built-in profiles as a fresh parse of their sources (the build embeds them parsed)', () => {
    const r = cli('profiles', '--json');
    expect(r.code).toBe(0);
    expect((JSON.parse(r.stdout) as Array<{ source: string }>).map(({ source, ...p }) => ({ source, p }))).toStrictEqual(
      loadProfiles().map((p) => ({ source: 'built-in', p })),
    );
  });

  it('a plan or a run: the loader starts the first listings before it compiles the bundle; each is read once, and the plan is the one the bundle alone makes', () => {
    const n = nodes.make('early', { foreignRules: 50 });
    const trace = path.join(path.dirname(n.root), 'trace');
    const plan = (entry: string, env: Record<string, string> = {}) =>
      spawnSync('/usr/bin/nsenter', [`--net=${n.nsPath}`, process.execPath, entry, 'plan', ...nodeArgs(n)], {
        encoding: 'utf8',
        env: { ...cliEnv(n), ...env },
      });
    const early = plan(CLI, { CNI_SWEEP_TRACE: trace });
    expect(early.status).toBe(0);
    const reads = fs
      .readFileSync(trace, 'utf8')
      .split('\n')
      .map((l) => /\$ (iptables-nft-save|ip6tables-nft-save|ip -d -j addr show|nft list flowtables)( \(\w+\))?$/.exec(l.trim()))
      .filter((m) => m !== null)
      .map((m) => `${m[1]!}${m[2] ?? ''}`)
      .sort();
    expect(reads).toEqual([
      'ip -d -j addr show (early)',
      'ip6tables-nft-save (early)',
      'iptables-nft-save (early)',
      'nft list flowtables (early)',
    ]);
    // The bundle run alone (no loader, no early reads) plans the same, to the line.
    const alone = plan(BUNDLE);
    expect(alone.status).toBe(0);
    const body = (s: string) => s.replace(/^# planned: .*$|^CREATED=.*$|^BACKUP=.*$|\/\d{8}T\d{6}Z-/gm, '');
    expect(body(early.stdout)).toBe(body(alone.stdout));
    expect(early.stdout).toContain('iptables-nft-restore --noflush -w');
  });
});
