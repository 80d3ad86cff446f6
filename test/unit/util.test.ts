import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { renderStep } from '../../src/plan.js';
import { contains, formatAddr, networkOf, parsePrefix, routeDst } from '../../src/util/cidr.js';
import { heredocDelimiter, renderArgv, shellQuote } from '../../src/util/shell.js';

const P = (s: string) => {
  const p = parsePrefix(s);
  if (!p) throw new Error(`bad prefix in test: ${s}`);
  return p;
};

describe('cidr', () => {
  it('parses v4 and v6 prefixes and bare addresses', () => {
    expect(P('10.244.0.0/16')).toEqual({ family: 4, addr: 0x0af40000n, len: 16, text: '10.244.0.0/16' });
    expect(P('10.244.1.5')).toMatchObject({ family: 4, len: 32 });
    expect(P('fd00:10:244::/56')).toEqual({ family: 6, addr: 0xfd000010024400000000000000000000n, len: 56, text: 'fd00:10:244::/56' });
    expect(P('::ffff:1.2.3.4')).toMatchObject({ family: 6, addr: 0xffff01020304n, len: 128 });
  });

  it('rejects what is not a prefix', () => {
    for (const bad of [
      '10.244.0.0/33',
      '10.244.0/16',
      '256.0.0.0/8',
      '10.0.0.0/',
      '10.0.0.0/8/1',
      'fd00::/129',
      '1::2::3',
      '1:2:3:4:5:6:7:8:9',
      '::1:2:3:4:5:6:7:8',
      'fe80::1%eth0',
      '10.0.0.0/+8',
      '',
    ]) {
      expect(parsePrefix(bad), bad).toBeNull();
    }
  });

  it('computes the network of an address with a prefix length', () => {
    expect(networkOf(P('10.244.1.1/24')).text).toBe('10.244.1.0/24');
    expect(networkOf(P('10.0.7.9/22')).text).toBe('10.0.4.0/22');
    expect(networkOf(P('fd00:10:244:1::1/64')).text).toBe('fd00:10:244:1::/64');
    expect(networkOf(P('192.168.1.11/0')).text).toBe('0.0.0.0/0');
  });

  it('formats IPv6 as iproute2 and iptables print it: longest zero run compressed, a single zero group not', () => {
    expect(formatAddr(6, 0n)).toBe('::');
    expect(formatAddr(6, 1n)).toBe('::1');
    expect(formatAddr(6, P('fd00:0:0:1::').addr)).toBe('fd00:0:0:1::');
    expect(formatAddr(6, P('1:0:2:3:4:5:6:7').addr)).toBe('1:0:2:3:4:5:6:7');
    expect(formatAddr(6, P('1:0:0:2:0:0:3:4').addr)).toBe('1::2:0:0:3:4');
    expect(formatAddr(6, P('1:0:0:2:0:0:0:4').addr)).toBe('1:0:0:2::4');
    expect(formatAddr(4, P('10.244.1.2').addr)).toBe('10.244.1.2');
  });

  it('contains: inside, equal, larger, other family', () => {
    expect(contains(P('10.244.0.0/16'), P('10.244.2.0/24'))).toBe(true);
    expect(contains(P('10.244.0.0/16'), P('10.244.0.0/16'))).toBe(true);
    expect(contains(P('10.244.0.0/16'), P('10.244.7.7'))).toBe(true);
    expect(contains(P('10.244.0.0/16'), P('10.245.0.0/24'))).toBe(false);
    expect(contains(P('10.244.0.0/16'), P('10.0.0.0/8'))).toBe(false);
    expect(contains(P('fd00:10:244::/56'), P('fd00:10:244:2::/64'))).toBe(true);
    expect(contains(P('fd00:10:244::/56'), P('fd00:10:245::/64'))).toBe(false);
    expect(contains(P('0.0.0.0/0'), P('::/0'))).toBe(false);
  });

  it('reads route destinations, default included', () => {
    expect(routeDst('default', 4)!.text).toBe('0.0.0.0/0');
    expect(routeDst('default', 6)!.text).toBe('::/0');
    expect(routeDst('10.244.2.0/24', 4)!.len).toBe(24);
  });
});

const bash = (script: string) => execFileSync('bash', ['-c', script], { encoding: 'utf8' });

describe('shell rendering', () => {
  it('quotes only what needs quoting', () => {
    expect(shellQuote('/etc/cni/net.d/10-flannel.conflist')).toBe('/etc/cni/net.d/10-flannel.conflist');
    expect(shellQuote('--timeout=300s')).toBe('--timeout=300s');
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(renderArgv(['rm', '-f', '--', '/tmp/x y', '$(id)'])).toBe("rm -f -- '/tmp/x y' '$(id)'");
  });

  it('round-trips hostile arguments through bash', () => {
    const args = ['plain', 'two words', "it's", '$(echo pwned)', '`id`', 'a"b', 'back\\slash', 'new\nline', '*', '~root', '!x', ''];
    expect(
      bash(`printf '%s\\0' ${renderArgv(args)}`)
        .split('\0')
        .slice(0, -1),
    ).toEqual(args);
  });

  it('picks a heredoc delimiter that no line of the body equals', () => {
    expect(heredocDelimiter('a\nb\n')).toBe('CNI_SWEEP_EOF');
    expect(heredocDelimiter('CNI_SWEEP_EOF\nCNI_SWEEP_EOF_1\n')).toBe('CNI_SWEEP_EOF_2');
    expect(heredocDelimiter(' CNI_SWEEP_EOF\n')).toBe('CNI_SWEEP_EOF');
  });

  it('renders a step with stdin as a quoted heredoc that feeds bash exactly that stdin', () => {
    const stdin = '*nat\n-D POSTROUTING -m comment --comment "x $HOME `id`" -j A\nCNI_SWEEP_EOF\nCOMMIT\n';
    const text = renderStep({ argv: ['cat'], stdin });
    expect(text).toBe(`cat <<'CNI_SWEEP_EOF_1'\n${stdin}CNI_SWEEP_EOF_1`);
    expect(bash(text)).toBe(stdin);
    expect(renderStep({ argv: ['cat'], stdin: 'no newline' })).toBe("cat <<'CNI_SWEEP_EOF'\nno newline\nCNI_SWEEP_EOF");
    expect(renderStep({ argv: ['systemctl', 'stop', 'kubelet.service'] })).toBe('systemctl stop kubelet.service');
  });
});
