/**
 * The request a replica is running, for code that runs inside it
 * (`serve.getMultiplexedModelId()`, handle calls made while serving it).
 * @internal
 */
import { AsyncLocalStorage } from 'node:async_hooks';

/** What a replica knows about the request it runs. */
export interface RequestContext {
  requestId: string;
  multiplexedModelId: string;
  app: string;
  deployment: string;
  replicaId: string;
}

/** The storage the replica runs each request in. */
export const requestContext = new AsyncLocalStorage<RequestContext>();

/** The multiplexed model id of the request being served here, if any. */
export function currentModelId(): string | undefined {
  const m = requestContext.getStore()?.multiplexedModelId;
  return m === '' ? undefined : m;
}
