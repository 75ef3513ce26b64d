// Types of scripts/addon-location.js (where the native addon is found), for lib/native.ts.
export interface Target { platform: string; arch: string; libc: string; glibc: string }
export const PREBUILT: ReadonlyArray<{ platform: string; arch: string; libc: string }>;
export const MIN_GLIBC: string;
export const LOCAL_BUILD: string;
export function currentTarget(): Target;
export function targetName(t: Pick<Target, 'platform' | 'arch' | 'libc'>): string;
export function prebuildFile(t: Pick<Target, 'platform' | 'arch' | 'libc'>): string;
export function matchingPrebuild(root: string, t?: Target): { file?: string; reason?: string };
export function addonCandidates(root: string): { list: Array<{ file: string; kind: 'MNQ_ADDON' | 'prebuild' | 'local build' }>; skipped: string };
export function shippedPlatforms(): string;
export function buildHelp(missing?: string[]): string;
