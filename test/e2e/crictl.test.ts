// The crictl stand-in the end-to-end layer puts on cni-sweep's PATH prints what cri-tools' crictl
// prints for the subcommands cni-sweep uses, against the test's own containerd.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { E2E_SHIMS, installFlannel, runPod, startNode, stopAllNodes, type RuntimeNode } from '../helpers/runtime-node.js';

afterEach(stopAllNodes);

const crictl = (node: RuntimeNode, ...args: string[]) =>
  execFileSync('nsenter', ['-t', String(node.holder), '-m', '-n', path.join(E2E_SHIMS, 'crictl'), ...args], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });

describe('crictl stand-in', { timeout: 300_000 }, () => {
  it('pods -q, pods -o json, inspectp -o json, stopp and rmp as cri-tools prints them', async () => {
    const node = await startNode('e2e-crictl');
    installFlannel(node);
    const a = await runPod(node, 'a', 30100);
    const b = await runPod(node, 'b');

    // newest first, one id per line; the default endpoint is containerd's socket, as crictl's
    expect(crictl(node, 'pods', '-q')).toBe(`${b.id}\n${a.id}\n`);
    const list = JSON.parse(crictl(node, '--runtime-endpoint', 'unix:///run/containerd/containerd.sock', 'pods', '-o', 'json'));
    expect(Object.keys(list)).toEqual(['items']);
    expect(list.items[1]).toMatchObject({
      id: a.id,
      metadata: { name: 'a', uid: 'uid-a', namespace: 'default', attempt: 0 },
      state: 'SANDBOX_READY',
      createdAt: expect.stringMatching(/^\d+$/),
      labels: expect.objectContaining({ app: 'a' }),
    });

    const out = crictl(node, 'inspectp', '-o', 'json', a.id);
    const inspect = JSON.parse(out);
    expect(Object.keys(inspect)).toEqual(['info', 'status']);
    expect(out).toMatch(/^\{\n {2}"info": \{/);
    expect(inspect.status).toMatchObject({ id: a.id, state: 'SANDBOX_READY', network: { ip: expect.stringMatching(/^10\.244\.1\./) } });
    expect(inspect.info.runtimeSpec.linux.namespaces).toContainEqual({
      type: 'network',
      path: expect.stringMatching(/^\/var\/run\/netns\/cni-/),
    });
    expect(inspect.info.config.port_mappings).toEqual([{ container_port: 80, host_port: 30100 }]);

    expect(crictl(node, 'stopp', a.id)).toBe(`Stopped sandbox ${a.id}\n`);
    expect(crictl(node, 'rmp', a.id)).toBe(`Removed sandbox ${a.id}\n`);
    expect(crictl(node, 'pods', '-q')).toBe(`${b.id}\n`);
    expect(() => crictl(node, 'stopp', 'nonexistent')).toThrow(/level=fatal msg="stopping the pod sandbox \\"nonexistent\\": .*not found/);
  });
});
