/**
 * `serve.Request`: an HTTP request as a deployment's `call(req)` gets it.
 */
import { BadRequestError } from './errors';
import type { RequestWire } from './internal/common';

/** An HTTP request, as the proxy received it. */
export class Request {
  /** `GET`, `POST`, … */
  readonly method: string;
  /** the whole path, the route prefix included (`/model/predict`) */
  readonly path: string;
  /** the route prefix the request matched (`/model`) */
  readonly routePrefix: string;
  /** query parameters; a repeated one is an array */
  readonly query: Readonly<Record<string, string | string[]>>;
  /** headers, names in lower case */
  readonly headers: Readonly<Record<string, string>>;
  /** the body's bytes */
  readonly body: Uint8Array;
  /** the id the proxy gave the request (in logs and in a 500's `errorId`) */
  readonly requestId: string;

  /** @internal */
  constructor(w: RequestWire) {
    this.method = w.method;
    this.path = w.path;
    this.routePrefix = w.routePrefix;
    this.query = w.query;
    this.headers = w.headers;
    this.body = w.body;
    this.requestId = w.requestId;
  }

  /** The body as UTF-8 text. */
  text(): string {
    return Buffer.from(this.body.buffer, this.body.byteOffset, this.body.byteLength).toString('utf8');
  }

  /**
   * The body parsed as JSON.
   * @throws BadRequestError when it is not JSON (uncaught, the proxy answers 400 with the parse error)
   */
  json<T = unknown>(): T {
    const t = this.text();
    try {
      return JSON.parse(t) as T;
    } catch (e) {
      throw new BadRequestError(`the request body is not valid JSON: ${(e as Error).message}`);
    }
  }
}
