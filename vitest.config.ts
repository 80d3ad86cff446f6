import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration tests change kernel state in their own namespaces; run files one at a time.
    fileParallelism: false,
    // ansible-playbook plays take 25-45 s on a loaded 2-core machine; a hang still fails, later.
    testTimeout: 180_000,
    hookTimeout: 60_000,
  },
});
