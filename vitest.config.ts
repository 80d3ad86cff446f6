import { defineConfig } from 'vitest/config';

// One file at a time, in one process: integration tests change kernel state in their own
// namespaces, e2e tests also drive a real containerd.
const serial = { pool: 'forks', poolOptions: { forks: { singleFork: true } } } as const;

export default defineConfig({
  test: {
    // ansible-playbook plays take 25-45 s on a loaded 2-core machine; a hang still fails, later.
    testTimeout: 180_000,
    hookTimeout: 60_000,
    projects: [
      // Fake host only: files run in parallel. Groups run one after another (unit first).
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], sequence: { groupOrder: 0 } } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts'], sequence: { groupOrder: 1 }, ...serial } },
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], sequence: { groupOrder: 2 }, ...serial } },
    ],
  },
});
