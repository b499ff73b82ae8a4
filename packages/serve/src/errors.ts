/**
 * `@tsray/serve`'s errors. Each extends core's `RayError`. Bad arguments to
 * public functions (a deployment option, a handle option) are the standard
 * `TypeError` / `RangeError`, with a message that names the option.
 */
import { RayError } from '@tsray/core';

/** The base class of Serve's errors. */
export class ServeError extends RayError {
  static override readonly kind: string = 'ServeError';
}

/**
 * Thrown by a handle call (and answered over HTTP with 503) when every
 * replica of the deployment is at `maxOngoingRequests` and
 * `maxQueuedRequests` requests already wait: the caller should back off and
 * retry, or the deployment needs more replicas.
 */
export class BackPressureError extends ServeError {
  static override readonly kind: string = 'BackPressureError';
}

/**
 * Thrown when a request cannot be served: the deployment or application
 * does not exist (any more), it has no replica that came up in time, or the
 * replica running the request died and the one retry failed too.
 */
export class DeploymentUnavailableError extends ServeError {
  static override readonly kind: string = 'DeploymentUnavailableError';
}

/** Thrown by `serve.run()` when an application cannot be deployed (a constructor that throws, bad options); `cause` is the first failure. */
export class DeployFailedError extends ServeError {
  static override readonly kind: string = 'DeployFailedError';
}

/** Thrown by `DeploymentResponse.result({ timeoutMs })` when the response did not arrive in time. */
export class RequestTimeoutError extends ServeError {
  static override readonly kind: string = 'RequestTimeoutError';
}

/**
 * Thrown by `req.json()` when the body is not valid JSON; uncaught, the HTTP
 * proxy answers 400 with its message.
 */
export class BadRequestError extends ServeError {
  static override readonly kind: string = 'BadRequestError';
}
