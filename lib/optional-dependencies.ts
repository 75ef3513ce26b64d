// The packages mnq needs only for some commands, as optional peer dependencies (package.json
// peerDependenciesMeta): `npm install mnq` leaves them out, and mnq loads each one when a function that needs it
// runs, never on `require('mnq')`. A missing one is a MissingDependencyError naming what needs it and the
// one command that adds it (the CLI prints it as one line and exits 2). docs/install.md lists them.
import * as path from 'path';

/** Each optional package and what needs it. */
const NEEDED_BY = {
  'onnxruntime-node': 'ONNX Runtime (calibrate, compare, check-ort, bench --vs-ort, classify --engine ort)',
  fastify: 'mnq serve / createServer',
  '@fastify/multipart': 'mnq serve / createServer',
  'prom-client': 'mnq serve / createServer',
  bullmq: 'mnq worker / mnq submit',
} as const;

export type OptionalPackage = keyof typeof NEEDED_BY;

/** An optional dependency is not installed: the message names what needs it and the npm command that adds it. */
export class MissingDependencyError extends Error {
  readonly packages: OptionalPackage[];
  /** the CLI's exit status for it */
  readonly exitCode = 2;
  constructor(packages: OptionalPackage[], neededBy: string, install: string) {
    super(`${neededBy} needs ${packages.join(', ')}, not installed with mnq: ${install}`);
    this.name = 'MissingDependencyError';
    this.packages = packages;
  }
}

function isInstalled(name: string): boolean {
  try {
    require.resolve(`${name}/package.json`);
    return true;
  } catch {
    return false;
  }
}

function installCommand(names: OptionalPackage[]): string {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const peers = (require(path.join(__dirname, '..', 'package.json')) as { peerDependencies?: Record<string, string> })
    .peerDependencies ?? {};
  return `npm install ${names.map((n) => (peers[n] ? `${n}@'${peers[n]}'` : n)).join(' ')}`;
}

/** Throws a MissingDependencyError naming every one of `names` that is not installed. */
export function checkInstalled(names: OptionalPackage[]): void {
  const missing = names.filter((n) => !isInstalled(n));
  if (missing.length) throw new MissingDependencyError(missing, NEEDED_BY[missing[0]], installCommand(missing));
}

/** Loads an optional package; a MissingDependencyError when it is not installed. */
export function requireOptional<T>(name: OptionalPackage): T {
  checkInstalled([name]);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name) as T;
}
