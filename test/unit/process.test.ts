// The real host's way of running one command (src/host/process.ts), on real processes.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { runProcess } from '../../src/host/process.js';

const T = { timeoutMs: 10_000 };

describe('runProcess', () => {
  it('gives its exit status, stdout and stderr as they were written', async () => {
    const r = await runProcess('sh', ['-c', 'printf "out\\n\\n"; printf "err\\n" >&2; exit 3'], T);
    expect(r).toEqual({ exitCode: 3, code: undefined, signal: undefined, stdout: 'out\n\n', stderr: 'err\n', timedOut: false });
  });

  it('feeds its stdin whole (a megabyte, more than a pipe holds) and gives /dev/null without input', async () => {
    const input = 'x'.repeat(1 << 20) + '\n';
    expect((await runProcess('cat', [], { ...T, input })).stdout).toBe(input);
    expect((await runProcess('cat', [], { ...T, input: Buffer.from([0xff, 0, 0x41]) })).stdout).toBe('\ufffd\0A');
    expect(await runProcess('sh', ['-c', 'readlink /proc/self/fd/0'], T)).toMatchObject({ exitCode: 0, stdout: '/dev/null\n' });
  });

  it('a command that exits without reading its input answers by its status', async () => {
    const r = await runProcess('sh', ['-c', 'exit 4'], { ...T, input: 'y'.repeat(1 << 20) });
    expect(r).toMatchObject({ exitCode: 4, timedOut: false });
  });

  it('a program that is not there: code ENOENT, no exit status, and the reason', async () => {
    const r = await runProcess('cni-sweep-no-such-program', ['a'], T);
    expect(r).toMatchObject({ code: 'ENOENT', exitCode: undefined, stdout: '', timedOut: false });
    expect(r.stderr).toMatch(/ENOENT/);
  });

  it('past its timeout its process group is sent SIGTERM, then SIGKILL if that does not end it, and it says it timed out', async () => {
    const t0 = Date.now();
    expect(await runProcess('sleep', ['30'], { timeoutMs: 100 })).toMatchObject({ timedOut: true, signal: 'SIGTERM', exitCode: undefined });
    const stubborn = await runProcess('sh', ['-c', 'trap "" TERM; echo up; sleep 30 & wait; wait'], {
      timeoutMs: 200,
      forceKillMs: 200,
    });
    expect(stubborn).toMatchObject({ timedOut: true, signal: 'SIGKILL' });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('runs in a session of its own, in the C locale, in the directory it is given', async () => {
    const r = await runProcess('sh', ['-c', 'echo "$(ps -o sid= -p $$) $LC_ALL $PWD"'], { ...T, cwd: os.tmpdir() });
    const [sid, lc, cwd] = r.stdout.trim().split(/\s+/);
    expect(Number(sid)).not.toBe(Number(execFileSync('ps', ['-o', 'sid=', '-p', String(process.pid)], { encoding: 'utf8' }).trim()));
    expect([lc, cwd]).toEqual(['C', fs.realpathSync(os.tmpdir())]);
  });

  it('its stdout can go to a file descriptor instead of a pipe', async () => {
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cni-sweep-proc-')), 'out');
    const fd = fs.openSync(file, 'w+');
    try {
      expect(await runProcess('sh', ['-c', 'echo to-file; echo e >&2'], { ...T, stdoutFd: fd })).toMatchObject({
        stdout: '',
        stderr: 'e\n',
        exitCode: 0,
      });
      expect(fs.readFileSync(file, 'utf8')).toBe('to-file\n');
    } finally {
      fs.closeSync(fd);
      fs.rmSync(path.dirname(file), { recursive: true });
    }
  });
});
