import { defineConfig } from 'vitest/config';

// Four projects so a developer can run the fast unit suite alone; npm test runs all of them.
export default defineConfig({
  test: {
    // The JSON report is what .ci/run counts; the default reporter is for people.
    reporters: ['default', 'json'],
    // One file at a time: the data-plane and e2e suites start real processes, and this machine
    // has two cores; parallel files would compete for CPU and ports and make timings noisy.
    fileParallelism: false,
    outputFile: { json: '.vitest-results.json' },
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/unit/**/*.test.ts', 'test/golden/**/*.test.ts'],
        },
      },
      {
        test: {
          name: 'dataplane',
          include: ['test/dataplane/**/*.test.ts', 'test/images/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts', 'test/cluster/**/*.test.ts'],
          // One real control plane for the whole suite; each test file uses its own namespace.
          globalSetup: ['test/cluster/global-setup.ts'],
          testTimeout: 300_000,
          hookTimeout: 1_800_000,
        },
      },
      {
        test: {
          name: 'node',
          include: ['test/node/**/*.test.ts'],
          // One contained real node (kubelet, containerd, kube-proxy, CoreDNS, kube-router)
          // for the whole project; see test/node/README.md.
          globalSetup: ['test/node/global-setup.ts'],
          testTimeout: 600_000,
          hookTimeout: 2_400_000,
        },
      },
    ],
  },
});
