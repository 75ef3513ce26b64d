// The Open Inference Protocol's (KServe v2) infer request and response, for a model with one FP32 input and
// FP32 outputs: JSON tensors (`data` flat or nested, row-major) and the binary tensor data extension (a JSON
// header of `Inference-Header-Content-Length` bytes, then the tensors' little-endian bytes). A request is checked
// completely (names, datatype, shape against the model, element count against the shape) before anything is
// allocated for it; every problem is a 400 naming the field.
import { badRequest } from './http-error';

/** The header that gives the length of the JSON part of a binary-extension body. */
export const HEADER_LENGTH = 'inference-header-content-length';

/** What an infer request is checked against. */
export interface TensorSpec {
  /** the model's input */
  name: string;
  /** one item's dims (the input's shape without its batch dimension) */
  dims: number[];
  /** most items per request */
  maxBatch: number;
  /** the model's outputs; infer returns the first */
  outputs: string[];
}

/** A checked infer request. */
export interface InferRequest {
  id?: string;
  /** items (the input's first dimension) */
  batch: number;
  /** Writes the input's batch × dims floats into `into` from element `offset`. */
  write(into: Float32Array, offset: number): void;
  /** answer with the binary tensor data extension */
  binaryOutput: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  return typeof v === 'string' ? `'${v.length > 40 ? `${v.slice(0, 40)}…` : v}'` : typeof v === 'object' ? 'an object' : String(v);
}

/** The JSON part and the binary part of a request body. */
function splitBody(body: Buffer, headerLength: string | string[] | undefined): { json: unknown; binary: Buffer | null } {
  let jsonBytes = body;
  let binary: Buffer | null = null;
  if (headerLength !== undefined) {
    const text = Array.isArray(headerLength) ? headerLength[0] : headerLength;
    const n = Number(text);
    if (!/^\d+$/.test(String(text).trim()) || n < 1 || n > body.length) {
      throw badRequest(`Inference-Header-Content-Length must be the byte length of the JSON header, 1 to ${body.length}, got '${text}'`);
    }
    jsonBytes = body.subarray(0, n);
    binary = body.subarray(n);
  }
  if (jsonBytes.length === 0) throw badRequest('the request body is empty; an infer request is a JSON object with "inputs"');
  try {
    return { json: JSON.parse(jsonBytes.toString('utf8')), binary };
  } catch (e) {
    throw badRequest(`the request body is not valid JSON: ${(e as Error).message}`);
  }
}

/** Elements of a (possibly nested) JSON array of numbers, checked against `expected` and `depth` levels. */
function countElements(data: unknown[], expected: number, depth: number): number {
  let n = 0;
  const walk = (a: unknown[], level: number): void => {
    for (const v of a) {
      if (n > expected) return;
      if (typeof v === 'number') {
        n++;
      } else if (Array.isArray(v)) {
        if (level + 1 >= depth) throw badRequest(`inputs[0].data is nested deeper than its shape (${depth} dimensions)`);
        walk(v, level + 1);
      } else {
        throw badRequest(`inputs[0].data must hold numbers (FP32), found ${describe(v)}`);
      }
    }
  };
  walk(data, 0);
  return n;
}

function writeNested(data: unknown[], into: Float32Array, offset: number): number {
  let at = offset;
  for (const v of data) {
    if (typeof v === 'number') into[at++] = v;
    else at = writeNested(v as unknown[], into, at);
  }
  return at;
}

function positiveInt(v: unknown): boolean {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1;
}

/** Parses and checks an infer request body against the model; throws a 400 HttpError naming the problem. */
export function parseInferRequest(body: Buffer, headerLength: string | string[] | undefined, spec: TensorSpec): InferRequest {
  const { json, binary } = splitBody(body, headerLength);
  if (!isObject(json)) throw badRequest(`an infer request is a JSON object with "inputs", got ${describe(json)}`);
  const { inputs, outputs, id, parameters } = json;
  if (id !== undefined && typeof id !== 'string') throw badRequest(`"id" must be a string, got ${describe(id)}`);
  if (parameters !== undefined && !isObject(parameters)) throw badRequest('"parameters" must be an object');
  if (!Array.isArray(inputs) || inputs.length === 0) throw badRequest(`"inputs" must be a non-empty array of tensors; the model's input is '${spec.name}'`);
  if (inputs.length !== 1) throw badRequest(`the model has one input, '${spec.name}'; the request has ${inputs.length}`);
  const input = inputs[0];
  if (!isObject(input)) throw badRequest('inputs[0] must be an object with name, shape, datatype and data');
  if (input.name !== spec.name) throw badRequest(`unknown input ${describe(input.name)}: the model's input is '${spec.name}'`);
  if (input.datatype !== 'FP32') throw badRequest(`input '${spec.name}' has datatype FP32, got ${describe(input.datatype)}`);
  const want = `[N, ${spec.dims.join(', ')}] with 1 <= N <= ${spec.maxBatch}`;
  const shape = input.shape;
  if (!Array.isArray(shape) || !shape.every(positiveInt)) throw badRequest(`inputs[0].shape must be an array of positive integers, ${want}; got ${JSON.stringify(shape)}`);
  if (shape.length !== spec.dims.length + 1 || spec.dims.some((d, i) => shape[i + 1] !== d)) {
    throw badRequest(`inputs[0].shape [${shape.join(', ')}] does not match the model's input: ${want}`);
  }
  const batch = shape[0] as number;
  if (batch > spec.maxBatch) throw badRequest(`inputs[0].shape has a batch of ${batch}, more than this server's limit of ${spec.maxBatch} (--max-batch)`);
  const elements = batch * spec.dims.reduce((a, b) => a * b, 1);
  const inputParams = input.parameters;
  if (inputParams !== undefined && !isObject(inputParams)) throw badRequest('inputs[0].parameters must be an object');
  const binarySize = inputParams?.binary_data_size;

  let write: InferRequest['write'];
  if (binarySize !== undefined) {
    if (input.data !== undefined) throw badRequest('inputs[0] has both "data" and parameters.binary_data_size; give one');
    if (binary === null) throw badRequest('inputs[0] has parameters.binary_data_size but the request has no Inference-Header-Content-Length header');
    if (binarySize !== elements * 4) throw badRequest(`inputs[0] binary_data_size is ${describe(binarySize)} bytes; shape [${shape.join(', ')}] of FP32 needs ${elements * 4}`);
    if (binary.length !== binarySize) throw badRequest(`the binary part of the body has ${binary.length} bytes; inputs[0] binary_data_size says ${binarySize}`);
    write = (into, offset) => {
      // little-endian FP32, as the extension specifies (and as every platform mnq runs on stores floats)
      new Uint8Array(into.buffer, into.byteOffset + offset * 4, binary.length).set(binary);
    };
  } else {
    const data = input.data;
    if (!Array.isArray(data)) throw badRequest(`inputs[0].data must be an array of ${elements} numbers (or use the binary data extension)`);
    if (binary !== null && binary.length > 0) throw badRequest(`the body has ${binary.length} bytes after the JSON header but no input names binary_data_size`);
    const flat = data.length === elements && data.every((v) => typeof v === 'number');
    const n = flat ? elements : countElements(data, elements, shape.length);
    if (n !== elements) throw badRequest(`inputs[0] shape [${shape.join(', ')}] needs ${elements} values, data has ${n > elements ? 'more' : n}`);
    write = flat ? (into, offset) => into.set(data as number[], offset) : (into, offset) => { writeNested(data, into, offset); };
  }

  let binaryOutput = isObject(parameters) && parameters.binary_data_output === true;
  if (outputs !== undefined) {
    if (!Array.isArray(outputs)) throw badRequest('"outputs" must be an array of { name, parameters }');
    for (const [i, o] of outputs.entries()) {
      if (!isObject(o)) throw badRequest(`outputs[${i}] must be an object with a name`);
      if (o.name !== spec.outputs[0]) {
        throw badRequest(spec.outputs.includes(o.name as string)
          ? `outputs[${i}]: mnq computes the model's first output only, '${spec.outputs[0]}'`
          : `outputs[${i}]: unknown output ${describe(o.name)}; the model's output is '${spec.outputs[0]}'`);
      }
      const p = o.parameters;
      if (p !== undefined && !isObject(p)) throw badRequest(`outputs[${i}].parameters must be an object`);
      if (p?.classification !== undefined) throw badRequest('the classification extension is not supported: POST an image to /v1/models/{name}:classify for top-k labels');
      if (p?.binary_data !== undefined) binaryOutput = p.binary_data === true;
    }
  }
  return { id: id as string | undefined, batch, write, binaryOutput };
}

/** The infer response: JSON, or with the binary extension a JSON header followed by the output's bytes. */
export function inferResponse(
  modelName: string, request: InferRequest, outputName: string, output: Float32Array, shape: number[],
): { body: Buffer; headers: Record<string, string> } {
  const head: Record<string, unknown> = { model_name: modelName };
  if (request.id !== undefined) head.id = request.id;
  const tensor: Record<string, unknown> = { name: outputName, datatype: 'FP32', shape };
  if (!request.binaryOutput) {
    tensor.data = Array.from(output);
    head.outputs = [tensor];
    return { body: Buffer.from(JSON.stringify(head)), headers: { 'content-type': 'application/json; charset=utf-8' } };
  }
  tensor.parameters = { binary_data_size: output.byteLength };
  head.outputs = [tensor];
  const json = Buffer.from(JSON.stringify(head));
  return {
    body: Buffer.concat([json, Buffer.from(output.buffer, output.byteOffset, output.byteLength)]),
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) },
  };
}
