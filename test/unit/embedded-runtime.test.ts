// A runtime inside the kubelet's unit (k3s, rke2): stopping that unit takes the CRI with it, so the
// sandboxes on the removed network are removed through the distribution's socket before the stop.
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { dirtyFlannelNode } from './fake-node.js';
import { Capture, isolateKubeconfigEnv } from './helpers.js';

isolateKubeconfigEnv();

async function plan(argv: string[], host: ReturnType<typeof dirtyFlannelNode>['host']): Promise<string> {
  const out = new Capture();
  const err = new Capture();
  const code = await main(['plan', ...argv], {
    stdout: out.stream,
    stderr: err.stream,
    stdinIsTty: false,
    stderrIsTty: false,
    env: {},
    makeHost: () => host,
  });
  expect(err.text).not.toMatch(/error/);
  expect(code).toBe(0);
  return out.text;
}

const commands = (script: string) => script.split('\n').filter((l) => /^(crictl|systemctl) /.test(l));

describe('sandboxes on a node whose runtime runs inside the kubelet unit', () => {
  it('k3s agent: crictl on k3s socket removes the Flannel pods before k3s-agent is stopped', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.writeFile('/usr/local/bin/k3s', '', 0o755).writeFile('/etc/rancher/k3s/config.yaml', 'flannel-backend: none\n');
    host.units.set('k3s-agent.service', 'active');
    host.sandboxes = ['flan1'];
    host.pods.set('flan1', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip });
    const script = await plan(['--node', 'node-1', '--skip', 'drain'], host);
    expect(script).toMatch(/^# distro: k3s \(agent\)/m);
    const endpoint = 'crictl --runtime-endpoint unix:///run/k3s/containerd/containerd.sock';
    expect(commands(script)).toEqual([
      `${endpoint} stopp flan1`,
      `${endpoint} rmp flan1`,
      'systemctl stop k3s-agent.service',
      'systemctl start k3s-agent.service',
    ]);
  });

  it('kubeadm: kubelet stops first (it would recreate them), then the sandboxes go, then the runtime', async () => {
    const { host, pods } = dirtyFlannelNode();
    host.sandboxes = ['flan1'];
    host.pods.set('flan1', { name: 'web-1', namespace: 'default', ip: pods[0]!.ip });
    const script = await plan(['--node', 'node-1', '--skip', 'drain'], host);
    expect(commands(script)).toEqual([
      'systemctl stop kubelet.service',
      'crictl stopp flan1',
      'crictl rmp flan1',
      'systemctl stop containerd.service',
      'systemctl start containerd.service',
      'systemctl start kubelet.service',
    ]);
  });
});
