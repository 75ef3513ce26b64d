// An error with the HTTP status (and headers) `mnq serve` answers it with: a JSON body { "error": message },
// the error shape of the Open Inference Protocol (KServe v2).

export class HttpError extends Error {
  constructor(readonly statusCode: number, message: string, readonly headers: Record<string, string> = {}) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, message);
