import { defineConfig } from 'vitest/config';

// Three tiers (see README): unit needs nothing; host needs root and throwaway network
// namespaces; e2e needs a real dockerd. `npm test` runs host and e2e at once, each (and each
// engine's e2e run) in namespaces of its own (scripts/engine-ns.sh).
export default defineConfig({
  test: {
    // Within a tier, files share the (namespace's) dockerd and firewall: one file at a time.
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'host',
          include: ['test/host/**/*.test.ts'],
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          // scripts/engines.sh runs the tier once per engine: the project's name says which, next
          // to every result (`|e2e dockerd 28.5.2+dfsg4 --ip-forward-no-drop| test/e2e/...`).
          name: process.env.MNT_ENGINE ? `e2e ${process.env.MNT_ENGINE}` : 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 180_000,
          globalSetup: ['test/e2e/global-setup.ts'],
        },
      },
    ],
  },
});
