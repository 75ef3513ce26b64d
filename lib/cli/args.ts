// The command-line flag parser of the mnq commands (lib/cli/<command>.ts):
//   --name VALUE, --name=VALUE, -x VALUE (one-letter alias), boolean --name, positional arguments,
//   `--` (everything after it is positional), -h / --help anywhere.
// Errors are UsageErrors whose messages name the flag: unknown options list the valid ones.

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

export interface FlagSpec {
  /** 'boolean': present or absent, takes no value; 'string': takes a value (`--name V` or `--name=V`). */
  type: 'boolean' | 'string';
  /** a one-letter alias, given as `-x` */
  short?: string;
  /** accepted but left out of the list in error messages (flags for the command's own use) */
  hidden?: boolean;
  /** a valued flag that may be given more than once (read with `strings`) */
  repeatable?: boolean;
}

export type FlagSpecs = Record<string, FlagSpec>;

/** A value that looks like an option rather than a value: `-x`, `--x` (but not `-`, `-1`, `-.5`). */
function looksLikeOption(a: string): boolean {
  return a.startsWith('-') && a !== '-' && !/^-\.?\d/.test(a);
}

function flagName(name: string, spec: FlagSpec): string {
  return spec.short ? `-${spec.short}/--${name}` : `--${name}`;
}

export class ParsedArgs<N extends string> {
  constructor(
    /** the arguments that are not options, in order */
    readonly positional: string[],
    /** -h or --help was given (other errors are then not reported) */
    readonly help: boolean,
    private readonly values: ReadonlyMap<string, string[]>,
    private readonly booleans: ReadonlySet<string>,
  ) {}

  /** The one positional argument: a UsageError 'missing <what>' without one, 'unexpected arguments: ...' for more. */
  single(what: string): string {
    if (this.positional.length === 0) throw new UsageError(`missing ${what}`);
    if (this.positional.length > 1) throw new UsageError(`unexpected arguments: ${this.positional.slice(1).join(' ')}`);
    return this.positional[0];
  }

  /** Whether the flag was given (a boolean flag, or a valued flag with any value). */
  has(name: N): boolean {
    return this.values.has(name) || this.booleans.has(name);
  }

  /** A boolean flag: true when given. */
  bool(name: N): boolean {
    return this.booleans.has(name);
  }

  /** A valued flag's value, or undefined when absent. */
  string(name: N): string | undefined {
    return this.values.get(name)?.[0];
  }

  /** A valued flag that must be given: a UsageError with `message` without it. */
  required(name: N, message: string): string {
    const v = this.string(name);
    if (v === undefined) throw new UsageError(message);
    return v;
  }

  /** Every value of a repeatable flag, in order (empty when absent). */
  strings(name: N): string[] {
    return [...(this.values.get(name) ?? [])];
  }

  /** A numeric flag, or undefined when absent; a UsageError naming the flag when it is not a number in range. */
  number(name: N, range: { min?: number; above?: number } = {}): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    const ok = v.trim() !== '' && Number.isFinite(n) && (range.min === undefined || n >= range.min) && (range.above === undefined || n > range.above);
    if (!ok) {
      const what = range.above !== undefined ? `a number > ${range.above}` : range.min !== undefined ? `a number >= ${range.min}` : 'a number';
      throw new UsageError(`--${name} must be ${what}, got '${v}'`);
    }
    return n;
  }

  /** An integer flag, or undefined when absent; a UsageError naming the flag when it is not an integer in [min, max]. */
  int(name: N, range: { min?: number; max?: number } = {}): number | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    const n = Number(v);
    const { min, max } = range;
    if (v.trim() === '' || !Number.isInteger(n) || (min !== undefined && n < min) || (max !== undefined && n > max)) {
      const what = max !== undefined ? `an integer from ${min ?? '-∞'} to ${max}`
        : min === undefined ? 'an integer' : min === 1 ? 'a positive integer' : min === 0 ? 'a non-negative integer' : `an integer >= ${min}`;
      throw new UsageError(`--${name} must be ${what}, got '${v}'`);
    }
    return n;
  }

  /** A flag whose value must be one of `choices`, or undefined when absent. */
  choice<C extends string>(name: N, choices: readonly C[]): C | undefined {
    const v = this.string(name);
    if (v === undefined) return undefined;
    if (!(choices as readonly string[]).includes(v)) {
      throw new UsageError(`--${name} must be ${choices.map((c) => `'${c}'`).join(', ').replace(/, ([^,]*)$/, ' or $1')}, got '${v}'`);
    }
    return v as C;
  }
}

/**
 * Parses `argv` against the flags of `specs`. Throws a UsageError for an unknown option (listing the valid
 * ones), a missing value, a value given to a boolean flag or a flag given twice, except that when -h or
 * --help is present the result has `help` set and nothing else is checked.
 */
export function parseArgs<S extends FlagSpecs>(argv: readonly string[], specs: S): ParsedArgs<keyof S & string> {
  const end = argv.indexOf('--');
  const options = end < 0 ? argv : argv.slice(0, end);
  if (options.some((a) => a === '--help' || a === '-h')) return new ParsedArgs([], true, new Map(), new Set());

  const byShort = new Map<string, string>();
  for (const [name, spec] of Object.entries(specs)) if (spec.short) byShort.set(spec.short, name);
  const valid = (): string => [...Object.entries(specs).filter(([, s]) => !s.hidden).map(([n, s]) => flagName(n, s)), '-h/--help'].join(', ');

  const positional: string[] = [];
  const values = new Map<string, string[]>();
  const booleans = new Set<string>();
  for (let i = 0; i < options.length; i++) {
    const a = options[i];
    if (!looksLikeOption(a)) {
      positional.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const given = eq > 0 ? a.slice(0, eq) : a;
    let value = eq > 0 ? a.slice(eq + 1) : undefined;
    const name = given.startsWith('--') ? given.slice(2) : byShort.get(given.slice(1));
    const spec = name !== undefined && Object.prototype.hasOwnProperty.call(specs, name) ? specs[name] : undefined;
    if (name === undefined || !spec || (!given.startsWith('--') && given.length !== 2)) {
      throw new UsageError(`unknown option '${given}' (options: ${valid()})`);
    }
    if (spec.type === 'boolean') {
      if (value !== undefined) throw new UsageError(`${given} takes no value`);
      booleans.add(name);
      continue;
    }
    if (value === undefined) {
      const next = options[i + 1];
      if (next === undefined) throw new UsageError(`${given} needs a value`);
      if (looksLikeOption(next)) throw new UsageError(`${given} needs a value, got option '${next}' (write ${given}=VALUE for a value that starts with '-')`);
      value = next;
      i++;
    }
    if (values.has(name) && !spec.repeatable) throw new UsageError(`${flagName(name, spec)} given twice`);
    values.set(name, [...(values.get(name) ?? []), value]);
  }
  if (end >= 0) positional.push(...argv.slice(end + 1));
  return new ParsedArgs(positional, false, values, booleans);
}

/**
 * Reports a usage error on stderr the same way for every command, `mnq <command>: <message>`, then the
 * usage text when given, else a pointer to --help; returns exit code 2. Other errors are rethrown.
 */
export function reportUsageError(command: string, err: unknown, usage?: string): number {
  if (!(err instanceof UsageError)) throw err;
  console.error(`mnq ${command}: ${err.message}`);
  console.error(usage ? `\n${usage}` : `run 'mnq ${command} --help' for usage`);
  return 2;
}
