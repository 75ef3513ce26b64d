/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'test/tsconfig.json' }] },
  testTimeout: 120000,
  maxWorkers: 2,
  // a fresh worker after any test file that leaves one above 1 GB: the calibration and accuracy suites hold ONNX
  // Runtime sessions, thread pools and models until they are collected, and a later file in the same worker
  // then loads its native addons into that process
  workerIdleMemoryLimit: '1GB',
};
