// Tiny flag parser shared by the builder commands: --name value, --name=value, boolean flags.
export interface ParsedArgs {
  positional: string[];
  flags: Map<string, string>;
  booleans: Set<string>;
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export function parseArgs(argv: string[], valueFlags: string[], boolFlags: string[], aliases: Record<string, string> = {}): ParsedArgs {
  const positional: string[] = [];
  const flags = new Map<string, string>();
  const booleans = new Set<string>();
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    let value: string | undefined;
    const eq = a.indexOf('=');
    if (eq > 0) {
      value = a.slice(eq + 1);
      a = a.slice(0, eq);
    }
    const name = aliases[a] ?? a.replace(/^--?/, '');
    if (boolFlags.includes(name)) {
      if (value !== undefined) throw new UsageError(`--${name} takes no value`);
      booleans.add(name);
    } else if (valueFlags.includes(name)) {
      if (value === undefined) {
        if (i + 1 >= argv.length) throw new UsageError(`--${name} needs a value`);
        value = argv[++i];
      }
      if (flags.has(name)) throw new UsageError(`--${name} given twice`);
      flags.set(name, value);
    } else {
      throw new UsageError(`unknown option '${a}'`);
    }
  }
  return { positional, flags, booleans };
}

/** A numeric flag value, or undefined when absent; a clear error when not a number. */
export function numberFlag(args: ParsedArgs, name: string, integer = false): number | undefined {
  const v = args.flags.get(name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n))) {
    throw new UsageError(`--${name} must be ${integer ? 'an integer' : 'a number'}, got '${v}'`);
  }
  return n;
}
