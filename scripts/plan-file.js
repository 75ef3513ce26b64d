// Writes a compiled plan (lib/plan.ts) and one float input image as the binary
// plan file that native programs read (native/bench/plan_file.h describes the
// format; bench_model runs it).
'use strict';

class Writer {
  constructor() { this.parts = []; }
  bytes(b) { this.parts.push(Buffer.from(b.buffer, b.byteOffset, b.byteLength)); }
  i32(v) { const b = Buffer.alloc(4); b.writeInt32LE(v | 0); this.parts.push(b); }
  u32(v) { const b = Buffer.alloc(4); b.writeUInt32LE(v >>> 0); this.parts.push(b); }
  f32(v) { const b = Buffer.alloc(4); b.writeFloatLE(v); this.parts.push(b); }
  list(typed) { this.u32(typed.length); this.bytes(typed); }
  str(s) { const b = Buffer.from(s, 'utf8'); this.u32(b.length); this.parts.push(b); }
  ints(a) { this.list(Int32Array.from(a)); }
  done() { return Buffer.concat(this.parts); }
}

const SHAPE_FIELDS = ['inH', 'inW', 'inC', 'outH', 'outW', 'outC', 'kernelH', 'kernelW', 'strideH', 'strideW',
  'dilationH', 'dilationW', 'padTop', 'padLeft', 'padBottom', 'padRight'];

/** The plan file of `plan` with `input` (Float32Array, one image in the plan's input layout). */
function planFileBytes(plan, input) {
  const w = new Writer();
  w.bytes(Buffer.from('MNQPLAN1'));
  w.u32(plan.tensors.length);
  for (const t of plan.tensors) {
    w.str(t.name);
    w.i32(t.h); w.i32(t.w); w.i32(t.c);
    w.f32(t.scale);
    w.i32(t.zeroPoint);
  }
  w.u32(plan.ops.length);
  for (const op of plan.ops) {
    w.i32(op.type);
    w.str(op.name);
    w.ints(op.inputs);
    w.i32(op.output);
    for (const f of SHAPE_FIELDS) w.i32(op.shape[f]);
    w.i32(op.groups);
    w.i32(op.inputPieces ?? 1);
    w.list(op.weights);
    w.list(op.wZeroPoint);
    w.list(op.wScale);
    w.list(op.bias);
    w.i32(op.qmin); w.i32(op.qmax);
    w.i32(op.hasActivation ? 1 : 0);
    w.i32(op.activation.fn); w.f32(op.activation.p0); w.f32(op.activation.p1);
    w.f32(op.actScale);
    w.i32(op.actZeroPoint);
    w.list(op.table ?? new Int8Array(0));
    w.i32(op.addOffset ?? 0);
  }
  w.i32(plan.input);
  w.i32(plan.inputLayout);
  w.ints(plan.outputs);
  w.list(input);
  return w.done();
}

module.exports = { planFileBytes };
