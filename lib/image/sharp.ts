// sharp, loaded on first use: `require('mnq')` and programs that never decode an image do not load it (nor
// libvips). Every use of sharp in lib/ goes through loadSharp().
import type SharpModule = require('sharp');

/** An image pipeline of sharp's. */
export type SharpImage = SharpModule.Sharp;

/** The sharp module: the constructor, with concurrency() and the rest. */
export function loadSharp(): typeof SharpModule {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('sharp') as typeof SharpModule;
}
