#!/usr/bin/env node
// mnq command-line entry point: `npx mnq <command> ...`.
// Each command lives in lib/cli/<command>.ts and exports
//   summary: string            (one line for `mnq help`)
//   run(argv: string[]): Promise<number>   (exit code)
import * as path from 'path';
import * as fs from 'fs';
import { MissingDependencyError } from './optional-dependencies';

const COMMANDS = [
  'classify', 'check-ort', 'bench', 'bench-classify', 'build', 'info', 'calibrate', 'compare', 'fetch',
  'worker', 'submit', 'serve',
];

interface CommandModule { summary: string; run(argv: string[]): Promise<number> }

function loadCommand(name: string): CommandModule | null {
  const file = path.join(__dirname, 'cli', `${name}.js`);
  if (!fs.existsSync(file)) return null;
  // eslint-disable-next-line @typescript-eslint/no-var-requires
  return require(file) as CommandModule;
}

function usage(): string {
  const lines = ['usage: mnq <command> [options]', '', 'commands:'];
  for (const c of COMMANDS) {
    const m = loadCommand(c);
    if (m) lines.push(`  ${c.padEnd(16)}${m.summary}`);
  }
  lines.push('', "run 'mnq <command> --help' for a command's options");
  return lines.join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === 'help' && rest.length) return main([rest[0], '--help']);
  if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
    console.log(usage());
    return cmd ? 0 : 1;
  }
  if (cmd === '--version' || cmd === '-v') {
    console.log(require('../package.json').version);
    return 0;
  }
  const m = COMMANDS.includes(cmd) ? loadCommand(cmd) : null;
  if (!m) {
    console.error(`mnq: unknown command '${cmd}'\n\n${usage()}`);
    return 2;
  }
  return m.run(rest);
}

/** An error as the CLI prints it: `mnq <command>: <message>`, without the library's own 'mnq: ' prefix. */
export function errorLine(command: string | undefined, err: unknown): string {
  const e = err as Error;
  const message = (e && e.message ? e.message : String(err)).replace(/^mnq: /, '');
  return `mnq${command && COMMANDS.includes(command) ? ` ${command}` : ''}: ${message}`;
}

if (require.main === module) main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    const e = err as Error;
    console.error(errorLine(process.argv[2], err));
    if (process.env.MNQ_DEBUG && e && e.stack) console.error(e.stack);
    process.exitCode = err instanceof MissingDependencyError ? err.exitCode : 1;
  },
);
