// ONNX Runtime as the tests' exact reference: on x86-64 only (lib/ort/cpu.ts, ortReferenceCaveat).
import { ortReferenceCaveat } from '../../lib/ort/cpu';
import { testIf } from './shared';

/** null on x86-64; elsewhere what the ORT parity tests need. */
export const ORT_CAVEAT = ortReferenceCaveat();
export const ORT_HOW = 'run the ONNX Runtime parity tests on x86-64 (CI does); on arm64, npm run test:arm64 checks mnq bit-identical to x86';
/** ORT_CAVEAT and ORT_HOW as describeShared's `also`. */
export const NEEDS_X86_ORT = { why: ORT_CAVEAT, how: ORT_HOW };
/** test() for a test that compares mnq with ORT bit for bit. */
export const testOrt = testIf(ORT_CAVEAT, ORT_HOW);
