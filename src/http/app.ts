/**
 * Express and nothing else: parse every body as JSON whatever the Content-Type (dockerd sends
 * none) with an empty body meaning no arguments, give each request an id and a child logger, run
 * the route, and turn every failure into HTTP 500 + {"Err": "..."} in one place.
 */
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import { PluginError, messageOf } from '../errors.js';
import type { Plugin } from '../plugin.js';
import { loadSchemas, validate } from '../protocol/schemas.js';
import { type Route, routes } from './routes.js';

export interface AppDeps {
  readonly plugin: Plugin;
  readonly log: Logger;
  readonly onRegister?: (log: Logger) => void;
  /** Largest accepted body; a 1000-port range is about 150 kB. */
  readonly bodyLimit?: string;
  /** Called once per request with its route, outcome and duration (metrics). */
  readonly onRequest?: (route: string, ok: boolean, ms: number) => void;
}

const CONTENT_TYPE = 'application/vnd.docker.plugins.v1.2+json';

/** The one mapper from a thrown value to the wire: [status, message]. */
export function toErr(err: unknown): { status: number; message: string } {
  if (err instanceof PluginError)
    return { status: err.code === 'BODY_TOO_LARGE' ? 413 : err.code === 'NOT_FOUND' ? 404 : 500, message: err.message };
  const e = err as { type?: string; status?: number };
  if (e?.type === 'entity.too.large') return { status: 413, message: 'body: request body is too large' };
  if (e?.type === 'entity.parse.failed') return { status: 500, message: `body: not valid JSON (${messageOf(err)})` };
  if (typeof e?.status === 'number' && e.status < 500) return { status: 500, message: `body: ${messageOf(err)}` };
  return { status: 500, message: `internal error: ${messageOf(err)}` };
}

const send = (res: Response, status: number, body: unknown): void => {
  res.status(status).type(CONTENT_TYPE).send(JSON.stringify(body));
};

let counter = 0;

export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use((req: Request, res: Response, next: NextFunction) => {
    const reqId = `req-${(++counter).toString(36)}`;
    const started = performance.now();
    res.locals.log = deps.log.child({ reqId, route: req.path });
    res.on('finish', () => {
      const ms = Math.round((performance.now() - started) * 100) / 100;
      const l = res.locals.log as Logger;
      const line = { status: res.statusCode, ms, ...(res.locals.ids as object), ...(res.locals.failure as object) };
      if (res.statusCode >= 400) l.warn(line, 'request failed');
      else l.info(line, 'request');
      deps.onRequest?.(req.path, res.statusCode < 400, ms);
    });
    next();
  });
  app.use(express.json({ type: () => true, strict: false, limit: deps.bodyLimit ?? '8mb' }));
  for (const r of routes) app.post(r.path, handler(r, deps));
  app.use((req: Request, res: Response) => send(res, 404, { Err: `unknown route: ${req.method} ${req.path.slice(0, 200)}` }));
  app.use((err: unknown, _req: Request, res: Response, _next: NextFunction) => {
    const { status, message } = toErr(err);
    ((res.locals.log as Logger | undefined) ?? deps.log).error({ err }, message);
    send(res, status, { Err: message });
  });
  return app;
}

function handler(r: Route, deps: AppDeps) {
  return async (req: Request, res: Response): Promise<void> => {
    let log = res.locals.log as Logger;
    try {
      // An empty body means "no arguments" (Activate, GetCapabilities...).
      const body: unknown = req.body === undefined || req.body === null ? {} : req.body;
      const ids = idsOf(body);
      if (ids) {
        res.locals.ids = ids;
        log = log.child(ids);
      }
      if (r.schema !== 'none') await loadSchemas(); // at once, but for the first requests after start
      const args = validate(r.schema, body);
      const out = await r.handle(args as never, { plugin: deps.plugin, log, onRegister: deps.onRegister ?? (() => undefined) });
      send(res, 200, out ?? {});
    } catch (err) {
      const { status, message } = toErr(err);
      // Our own errors are logged once, on the request line; anything else also gets its stack.
      if (err instanceof PluginError) res.locals.failure = { code: err.code, err: message };
      else log.error({ err }, 'unexpected failure');
      send(res, status, { Err: message });
    }
  };
}

function idsOf(body: unknown): Record<string, string> | undefined {
  if (typeof body !== 'object' || body === null) return undefined;
  const b = body as Record<string, unknown>;
  const out: Record<string, string> = {};
  if (typeof b.NetworkID === 'string') out.networkId = b.NetworkID.slice(0, 12);
  if (typeof b.EndpointID === 'string') out.endpointId = b.EndpointID.slice(0, 12);
  if (typeof b.PoolID === 'string') out.poolId = b.PoolID.slice(0, 80);
  return Object.keys(out).length ? out : undefined;
}
