// The compiler's one error type: a model mnq cannot run.

/** An error in compiling a model: names the node, its op type and what is missing. */
export class UnsupportedModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UnsupportedModelError';
  }
}
