// The real host's prefetch: the listings a run starts with, started together by one bash. What a
// caller gets from query() afterwards must be what reading each command alone gives, a quick
// listing not held back by a firewall dump, and nothing may outlive a timeout. Real bash and stand-in
// commands on PATH.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RealHost } from '../../src/host/real.js';

let dir: string;
const saved = { ...process.env };

const STANDINS: Record<string, string> = {
  // stdout and stderr, several lines, no final newline on stdout
  both: 'echo "${0##*/} $*" >> "$STANDIN_LOG"\nprintf "line 1\\nline 2"\necho "a warning" >&2\n',
  fails: 'echo "${0##*/} $*" >> "$STANDIN_LOG"\necho "fails: no such table" >&2\nexit 3\n',
  // its arguments, one per line, as it received them
  args: 'echo "${0##*/} $*" >> "$STANDIN_LOG"\nfor a in "$@"; do printf "[%s]\\n" "$a"; done\n',
  // nft writes a listing a few bytes per write(2)
  nft: 'echo "${0##*/} $*" >> "$STANDIN_LOG"\ni=0\nwhile [ $i -lt 300 ]; do printf "rule %d;\\n" $i; i=$((i+1)); done\n',
  'iptables-nft-save': 'echo "${0##*/} $*" >> "$STANDIN_LOG"\nsleep 2\necho slow\n',
  hang: 'echo "${0##*/} $*" >> "$STANDIN_LOG"\necho $$ > "$STANDIN_DIR/hang.pid"\nexec sleep 30\n',
  // leaves a process in a session of its own holding its output pipes, out of reach of the kill
  escapes: 'setsid sh -c \'echo $$ > "$STANDIN_DIR/escaped.pid"; exec sleep 10\' &\nexec sleep 30\n',
};

beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-batch-'));
  fs.mkdirSync(path.join(dir, 'bin'));
  for (const [name, body] of Object.entries(STANDINS)) fs.writeFileSync(path.join(dir, 'bin', name), `#!/bin/sh\n${body}`, { mode: 0o755 });
  fs.writeFileSync(path.join(dir, 'calls.log'), '');
  process.env.PATH = `${path.join(dir, 'bin')}:${saved.PATH}`;
  process.env.STANDIN_LOG = path.join(dir, 'calls.log');
  process.env.STANDIN_DIR = dir;
});

afterEach(() => {
  process.env = { ...saved };
  fs.rmSync(dir, { recursive: true, force: true });
});

const calls = () => fs.readFileSync(path.join(dir, 'calls.log'), 'utf8').split('\n').filter(Boolean);

const READS = [
  ['both', '-j', 'link'],
  ['fails', 'list', 'table', 'ip', 'x'],
  ['args', "it's", '$HOME', 'two words', '*', '`id`', '"q"', ''],
  ['nft', 'list', 'table', 'ip', 'flannel-ipv4'],
  ['not-installed-anywhere', 'x'],
];

describe('RealHost prefetch', () => {
  it('answers each read as reading it alone does: output, errors, exit status, a missing command; each runs once', async () => {
    const alone = new RealHost('/');
    const expected = await Promise.all(READS.map((r) => alone.query(r)));
    expect(expected[0]).toEqual({ code: 0, stdout: 'line 1\nline 2', stderr: 'a warning\n' });
    expect(expected[1]).toEqual({ code: 3, stdout: '', stderr: 'fails: no such table\n' });
    expect(expected[2]!.stdout).toBe('[it\'s]\n[$HOME]\n[two words]\n[*]\n[`id`]\n["q"]\n[]\n');
    expect(expected[3]!.stdout.split('\n')).toHaveLength(301);
    expect(expected[4]).toBeNull();
    fs.writeFileSync(path.join(dir, 'calls.log'), '');

    const host = new RealHost('/');
    host.prefetch(READS);
    expect(await Promise.all(READS.map((r) => host.query(r)))).toEqual(expected);
    expect(calls().sort()).toEqual([
      'args it\'s $HOME two words * `id` "q" ',
      'both -j link',
      'fails list table ip x',
      'nft list table ip flannel-ipv4',
    ]);
  });

  it('a quick listing is not held back by a slow firewall dump asked for before it', async () => {
    const host = new RealHost('/');
    const t0 = Date.now();
    host.prefetch([['iptables-nft-save'], ['both']]);
    expect((await host.query(['both']))!.stdout).toBe('line 1\nline 2');
    expect(Date.now() - t0).toBeLessThan(1500);
    expect((await host.query(['iptables-nft-save']))!.stdout).toBe('slow\n');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(2000);
  });

  it('forks once per command: every command is a child of the one bash', async () => {
    for (const name of ['p1', 'p2', 'p3']) fs.writeFileSync(path.join(dir, 'bin', name), '#!/bin/sh\necho $PPID\n', { mode: 0o755 });
    const host = new RealHost('/');
    const reads = [['p1'], ['p2'], ['p3']];
    host.prefetch(reads);
    const parents = await Promise.all(reads.map(async (r) => (await host.query(r))!.stdout));
    expect(new Set(parents).size).toBe(1);
  });

  it('a batch that outlives the timeout is killed with what it started: its unfinished reads fail as timed out, one that ended is answered', async () => {
    const host = new RealHost('/', 700);
    const started = Date.now();
    host.prefetch([['hang'], ['both']]);
    expect((await host.query(['both']))!.code).toBe(0);
    await expect(host.query(['hang'])).rejects.toThrow(/hang.*timed out/);
    // Once: the batch's timeout is the read's, not a first of two.
    expect(Date.now() - started).toBeLessThan(1400);
    expect(fs.readFileSync(path.join(dir, 'calls.log'), 'utf8').match(/^hang/gm)).toEqual(['hang']);
    // Gone, or dead and not yet reaped by whoever inherited it.
    const pid = Number(fs.readFileSync(path.join(dir, 'hang.pid'), 'utf8'));
    const alive = () => {
      try {
        return !/^\d+ \(.*\) Z /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
      } catch {
        return false;
      }
    };
    for (let i = 0; i < 20 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
    expect(alive()).toBe(false);
  });

  it('a read whose command left a process outside the batch (setsid) holding its pipes still fails at the timeout', async () => {
    const host = new RealHost('/', 700);
    const started = Date.now();
    host.prefetch([['escapes'], ['both']]);
    try {
      await expect(host.query(['escapes'])).rejects.toThrow(/escapes.*timed out/);
      expect(Date.now() - started).toBeLessThan(2500);
      expect((await host.query(['both']))!.code).toBe(0);
    } finally {
      process.kill(Number(fs.readFileSync(path.join(dir, 'escaped.pid'), 'utf8')), 'SIGKILL');
    }
  });

  it("runs no start-up file, no exported function and no exported option: BASH_ENV, ~/.bashrc, BASH_FUNC_*, SHELLOPTS are not the batch's", async () => {
    const marker = path.join(dir, 'bash-env-ran');
    fs.writeFileSync(path.join(dir, 'env.sh'), `touch ${marker}\n`);
    process.env.BASH_ENV = path.join(dir, 'env.sh');
    // bash runs ~/.bashrc for what it takes for sshd's command (SSH_CLIENT set, at level 1).
    fs.writeFileSync(path.join(dir, '.bashrc'), `touch ${marker}\n`);
    Object.assign(process.env, { HOME: dir, SSH_CLIENT: '192.0.2.1 50000 22' });
    // Options a caller exported: xtrace would write `+ exec ...` into every read's stderr.
    Object.assign(process.env, { SHELLOPTS: 'xtrace:errexit:monitor', BASHOPTS: 'extdebug' });
    delete process.env.SHLVL;
    process.env['BASH_FUNC_both%%'] = '() { echo function; }';
    const host = new RealHost('/');
    host.prefetch([['both'], ['args', 'x']]);
    expect(await host.query(['both'])).toEqual({ code: 0, stdout: 'line 1\nline 2', stderr: 'a warning\n' });
    expect(await host.query(['args', 'x'])).toEqual({ code: 0, stdout: '[x]\n', stderr: '' });
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("a dd that cannot coalesce nft's output (an old or busybox dd) loses nothing: that read is made alone", async () => {
    fs.writeFileSync(path.join(dir, 'bin', 'dd'), '#!/bin/sh\necho "dd: invalid status level \'none\'" >&2\nexit 1\n', { mode: 0o755 });
    const host = new RealHost('/');
    host.prefetch([['nft', 'list', 'table', 'ip', 'flannel-ipv4'], ['both']]);
    const r = await host.query(['nft', 'list', 'table', 'ip', 'flannel-ipv4']);
    expect(r!.code).toBe(0);
    expect(r!.stdout).toMatch(/^rule 0;\n[^]*rule 299;\n$/);
    expect((await host.query(['both']))!.stdout).toBe('line 1\nline 2');
  });

  it('without bash on PATH, each is read alone, with the same answers', async () => {
    process.env.PATH = path.join(dir, 'bin');
    const host = new RealHost('/');
    host.prefetch([['both'], ['fails'], ['nft', 'list']]);
    expect(await host.query(['both'])).toEqual({ code: 0, stdout: 'line 1\nline 2', stderr: 'a warning\n' });
    expect((await host.query(['fails']))!.code).toBe(3);
    expect((await host.query(['nft', 'list']))!.stdout).toMatch(/^rule 0;\n[^]*rule 299;\n$/);
  });
});
