// The built CLI answers --version and --help from its loader, without unpacking the bundle: the
// answers must be the bundle's, and everything else must still reach the bundle.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, REPO } from '../helpers/harness.js';

const VERSION = (JSON.parse(fs.readFileSync(path.join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
const cli = (...args: string[]) => {
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env: { PATH: process.env.PATH, LC_ALL: 'C' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

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
});
