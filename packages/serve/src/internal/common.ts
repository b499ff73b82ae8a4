/**
 * What travels between Serve's processes: names, application and
 * deployment specs, replica sets and routes.
 * @internal
 */
import type { ActorHandle, AnyClass, AnyFunction } from '@tsray/core';
import type * as ray from '@tsray/core';
import type { ResolvedOptions } from './options';

/** The controller's actor name and the namespace of every Serve actor. */
export const CONTROLLER_NAME = 'SERVE_CONTROLLER';
/** The namespace Serve's actors live in. */
export const SERVE_NAMESPACE = 'serve';
/** The method name HTTP requests call (a class's `call`, or a function deployment itself). */
export const HTTP_METHOD = 'call';

/** A method a deployment's class may have that the replica awaits before it takes requests (serve.onnx loads its model so). */
export const ASYNC_INIT: unique symbol = Symbol.for('tsray.serve.asyncInit');

/** A deployment as the controller keeps it. */
export interface DeploymentSpec {
  name: string;
  code: ray.util.Shippable<AnyFunction | AnyClass>;
  kind: 'class' | 'function';
  /** constructor arguments; bound deployments as {@link HandleRef}s */
  initArgs: unknown[];
  options: ResolvedOptions;
  /** hash of the code, its arguments and actor options: a change replaces the replicas */
  codeVersion: string;
}

/** An application: its deployments, which one takes HTTP, where it is routed. */
export interface AppSpec {
  name: string;
  /** null: no HTTP route */
  routePrefix: string | null;
  ingress: string;
  deployments: DeploymentSpec[];
}

/** A bound deployment in constructor arguments: the replica gets a DeploymentHandle for it. */
export interface HandleRef {
  __tsrayServeHandle: true;
  app: string;
  deployment: string;
}

/** Whether `v` is a {@link HandleRef}. */
export function isHandleRef(v: unknown): v is HandleRef {
  return typeof v === 'object' && v !== null && (v as Partial<HandleRef>).__tsrayServeHandle === true;
}

/** One replica, as routers see it. */
export interface ReplicaInfo {
  replicaId: string;
  actor: ActorHandle<unknown>;
  /** model ids this replica had loaded when the set was made (multiplexing) */
  models: string[];
}

/** The replicas of a deployment, versioned so that routers can long-poll for changes. */
export interface ReplicaSet {
  version: number;
  /** false: no such deployment (deleted, or never deployed) */
  exists: boolean;
  replicas: ReplicaInfo[];
  maxOngoingRequests: number;
  maxQueuedRequests: number;
  /** autoscaled from zero: a request should wake the controller */
  scaledToZero: boolean;
}

/** HTTP routes, versioned. */
export interface RouteTable {
  version: number;
  routes: Array<{ prefix: string; app: string; ingress: string }>;
}

/** An HTTP request as the proxy sends it to a replica. */
export interface RequestWire {
  method: string;
  /** the whole path, routePrefix included */
  path: string;
  routePrefix: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string>;
  body: Uint8Array;
  requestId: string;
}

/** Per-call metadata sent with each request to a replica. */
export interface CallMeta {
  method: string;
  requestId: string;
  multiplexedModelId: string;
  /** true: an HTTP request (the first argument is a RequestWire) */
  http: boolean;
}

/**
 * A replica's answer: rejected (full or draining: try another replica), the
 * value, or (HTTP) "the value is a stream: pull it from me by request id".
 */
export type ReplicaReply = { k: 0; ongoing: number } | { k: 1; v: unknown } | { k: 2 };

/** A stream an HTTP request's handler returned, held by its replica until pulled. */
export class StreamTicket {
  constructor(
    readonly actor: ActorHandle<unknown>,
    readonly requestId: string,
  ) {}
}

/** A short random id. */
export function randomId(): string {
  return Math.random().toString(16).slice(2, 10) + Math.random().toString(16).slice(2, 6);
}
