// A jest environment whose typed-array and ArrayBuffer constructors are the
// host realm's own, so native addons (onnxruntime-node, mnq.node) that create
// typed arrays pass `instanceof` checks made inside the test sandbox.
// Use with a `@jest-environment ./test/helpers/node-env.js` docblock.
'use strict';
const NodeEnvironment = require('jest-environment-node').TestEnvironment;

const SHARED = [
  'ArrayBuffer', 'SharedArrayBuffer', 'DataView', 'Int8Array', 'Uint8Array', 'Uint8ClampedArray', 'Int16Array',
  'Uint16Array', 'Int32Array', 'Uint32Array', 'Float32Array', 'Float64Array', 'BigInt64Array', 'BigUint64Array',
];

class HostTypedArrayEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = HostTypedArrayEnvironment;
