// Types of scripts/queue-harness.js for the TypeScript tests.
export const CLI: string;
export function redisServerPath(): string | null;
export function freePort(): Promise<number>;
export function sleep(ms: number): Promise<void>;

export class RedisServer {
  readonly dir: string;
  readonly port: number;
  readonly url: string;
  readonly pid: number | undefined;
  readonly restarts: number;
  static start(dir: string, bin?: string | null): Promise<RedisServer>;
  stop(): Promise<void>;
  restart(keepData?: boolean): Promise<void>;
}

export class MnqProcess {
  readonly pid: number;
  readonly args: string[];
  readonly stdout: string[];
  readonly stderr: string[];
  constructor(args: string[], options?: { cwd?: string; env?: Record<string, string>; echo?: string });
  waitForLine(re: RegExp, ms?: number): Promise<string>;
  wait(ms?: number): Promise<number | string>;
  kill(signal?: NodeJS.Signals): void;
}

export interface HeldRequest { release(): void; drop(): void }

export interface ImageServer {
  port: number;
  host: string;
  url(name: string): string;
  requests: Map<string, number>;
  hold(name: string): Promise<HeldRequest>;
  close(): Promise<void>;
}

export function imageServer(dir: string): Promise<ImageServer>;
