/**
 * The HTTP proxy: an actor per host (node:http) that routes each request
 * by the longest matching route prefix to its application's ingress
 * deployment through a router, and answers with what the deployment
 * returned: a Uint8Array as application/octet-stream, a string as
 * text/plain, anything else as JSON, and an async iterator (`call` written
 * as `async *call(req)`) as a chunked stream of its items, each sent as it
 * is yielded. `/-/routes` lists the routes, `/-/healthz` says the proxy is up.
 * Errors: 404 for an unknown route, 400 for a body `req.json()` cannot
 * parse, 503 when the deployment is at capacity or unavailable, 500 with
 * an `errorId` for the user's exception (the replica's log line shows the
 * same id). A client that disconnects cancels its request.
 * @internal
 */
import * as http from 'node:http';
import * as ray from '@tsray/core';
import { BackPressureError, DeploymentUnavailableError } from '../errors';
import { type DeploymentResponse, callDeployment } from '../handle';
import type { Replica } from './replica';
import { HTTP_METHOD, StreamTicket, randomId, type RequestWire, type RouteTable } from './common';
import { controller } from './router';

/** Where the proxies listen. */
export interface HttpOptions {
  host: string;
  port: number;
  /** 'HeadOnly': one proxy on the head's host; 'EveryNode': one per host; 'Disabled': none */
  location: 'HeadOnly' | 'EveryNode' | 'Disabled';
}

const MULTIPLEX_HEADER = 'serve_multiplexed_model_id';
const EMPTY = new Uint8Array(0);

function sendJson(res: http.ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) {
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function errorName(e: unknown): string {
  const c = e instanceof ray.TaskError ? e.cause : e;
  return c instanceof Error ? c.name : '';
}

/** See the module comment. */
export class HttpProxy {
  private server: http.Server | undefined;
  private routes: RouteTable = { version: -1, routes: [] };
  private stopped = false;

  constructor(private readonly opts: HttpOptions) {}

  /**
   * Listens; resolves when it does.
   * @throws Error naming the address when the port is in use
   */
  async ready(): Promise<boolean> {
    if (this.server) return true;
    const server = http.createServer((req, res) => this.serve(req, res));
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) => {
        if (e.code === 'EADDRINUSE') reject(new Error(`Serve's HTTP proxy cannot listen on ${this.opts.host}:${this.opts.port}: the port is in use; stop what uses it, or pass serve.start({ http: { port } }) with another port`));
        else reject(new Error(`Serve's HTTP proxy cannot listen on ${this.opts.host}:${this.opts.port}: ${e.message}`));
      });
      server.listen(this.opts.port, this.opts.host, () => resolve());
    });
    this.server = server;
    void this.pollRoutes();
    return true;
  }

  /** Stops listening. */
  async stop(): Promise<boolean> {
    this.stopped = true;
    const s = this.server;
    this.server = undefined;
    if (s) {
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    return true;
  }

  private async pollRoutes(): Promise<void> {
    while (!this.stopped) {
      try {
        const c = await controller();
        this.routes = (await ray.get(c.listenRoutes.remote(this.routes.version, 10_000))) as RouteTable;
      } catch {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  private match(path: string): RouteTable['routes'][number] | undefined {
    for (const r of this.routes.routes) {
      const p = r.prefix === '/' ? '/' : r.prefix.replace(/\/$/, '');
      if (p === '/' || path === p || path.startsWith(`${p}/`)) return r;
    }
    return undefined;
  }

  private serve(req: http.IncomingMessage, res: http.ServerResponse): void {
    const raw = req.url ?? '/';
    const q = raw.indexOf('?');
    let pathname = q < 0 ? raw : raw.slice(0, q);
    if (pathname.includes('%')) {
      try {
        pathname = decodeURIComponent(pathname);
      } catch {
        // keep it as sent
      }
    }
    if (pathname === '/-/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('success');
      return;
    }
    if (pathname === '/-/routes') {
      sendJson(res, 200, Object.fromEntries(this.routes.routes.map((r) => [r.prefix, r.app])));
      return;
    }
    const route = this.match(pathname);
    if (!route) {
      sendJson(res, 404, { error: `no application is routed at ${pathname}; the routes are: ${this.routes.routes.map((r) => r.prefix).join(', ') || '(none)'}` });
      return;
    }
    const query: Record<string, string | string[]> = {};
    if (q >= 0) {
      for (const [k, v] of new URLSearchParams(raw.slice(q + 1))) {
        const had = query[k];
        query[k] = had === undefined ? v : Array.isArray(had) ? [...had, v] : [had, v];
      }
    }
    const headers: Record<string, string> = {};
    for (const k in req.headers) {
      const v = req.headers[k];
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }
    const requestId = headers['x-request-id'] ?? randomId();
    const go = (body: Uint8Array): void => {
      const wire: RequestWire = { method: req.method ?? 'GET', path: pathname, routePrefix: route.prefix, query, headers, body, requestId };
      void this.forward(route, wire, res);
    };
    // a request without a body (no length, not chunked) goes at once
    if (headers['content-length'] === undefined && headers['transfer-encoding'] === undefined) {
      go(EMPTY);
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const b = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      go(new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    });
  }

  private async forward(route: RouteTable['routes'][number], wire: RequestWire, res: http.ServerResponse): Promise<void> {
    const requestId = wire.requestId;
    const resp = callDeployment(route.app, route.ingress, HTTP_METHOD, [wire], { http: true, requestId, multiplexedModelId: wire.headers[MULTIPLEX_HEADER] ?? '' }) as DeploymentResponse<unknown>;
    let finished = false;
    let pulling: ray.ObjectRefGenerator<unknown> | undefined;
    res.once('close', () => {
      if (finished) return;
      resp.cancel();
      if (pulling) ray.cancel(pulling);
    });
    try {
      const v = await resp;
      if (v instanceof StreamTicket) {
        const actor = v.actor as unknown as ray.ActorHandleOf<Replica>;
        pulling = actor.pull.options({ numReturns: 'streaming' }).remote(v.requestId, HTTP_METHOD);
        await this.streamReply(res, pulling);
      } else {
        this.reply(res, v);
      }
      finished = true;
    } catch (e) {
      finished = true;
      const name = errorName(e);
      if (name === 'BadRequestError') sendJson(res, 400, { error: (e instanceof ray.TaskError ? e.cause : (e as Error)).message, requestId });
      else if (e instanceof BackPressureError || e instanceof DeploymentUnavailableError) sendJson(res, 503, { error: e.message, requestId });
      else if (e instanceof ray.TaskCancelledError) sendJson(res, 499, { error: 'the client went away', requestId });
      else {
        const c = e instanceof ray.TaskError ? e.cause : e;
        const msg = c instanceof Error ? `${c.name}: ${c.message}` : String(c);
        sendJson(res, 500, { error: msg, errorId: requestId });
      }
    }
  }

  private reply(res: http.ServerResponse, v: unknown): void {
    if (v instanceof Uint8Array) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': v.byteLength });
      res.end(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    } else if (typeof v === 'string') {
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(v) });
      res.end(v);
    } else {
      const text = JSON.stringify(v === undefined ? null : v);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
      res.end(text);
    }
  }

  private async streamReply(res: http.ServerResponse, gen: ray.ObjectRefGenerator<unknown>): Promise<void> {
    let started = false;
    for await (const ref of gen) {
      const chunk = await ray.get(ref as ray.ObjectRef<unknown>);
      if (!started) {
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'transfer-encoding': 'chunked' });
        started = true;
      }
      const data = chunk instanceof Uint8Array ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : typeof chunk === 'string' ? chunk : JSON.stringify(chunk);
      res.write(data);
    }
    if (!started) res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end();
  }
}

/** The proxy's actor class. */
export const ProxyActor = ray.remote(HttpProxy);
