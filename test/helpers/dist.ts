// Tests whose child processes or worker threads run the built package (dist/) check first that it is current.
import * as fs from 'fs';
import * as path from 'path';
import { REPO_ROOT } from './shared';

/** Throws unless dist/ holds each of `sources` (paths under lib/, e.g. 'model.ts') at least as new as lib/. */
export function checkDist(sources: string[], who: string): void {
  for (const rel of sources) {
    const src = path.join(REPO_ROOT, 'lib', rel);
    const out = path.join(REPO_ROOT, 'dist', rel.replace(/\.ts$/, '.js'));
    if (!fs.existsSync(out) || fs.statSync(out).mtimeMs < fs.statSync(src).mtimeMs) {
      throw new Error(`${path.relative(REPO_ROOT, out)} is missing or older than lib/${rel}: run 'npm run build:ts' first (${who} run dist/)`);
    }
  }
}

/** Every .ts file under lib/`dir`, as paths under lib/. */
export function libSources(dir: string): string[] {
  return fs.readdirSync(path.join(REPO_ROOT, 'lib', dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts')).map((f) => path.join(dir, f));
}
