// The OpenAPI 3.1 document (GET /openapi.json) and its docs page (GET /docs), generated with
// @asteasolutions/zod-to-openapi (the generator behind @hono/zod-openapi) from the same zod schemas the
// routes validate with. Each route is listed once below with who may call it and its body limit;
// tests/security/openapi.test.ts fails when a route of the app is missing here. Route files that
// define their routes with OpenAPIHono + createRoute register themselves and need no entry.
import { z } from 'zod';
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { ZodType } from 'zod';

type Method = 'get' | 'head' | 'post' | 'put' | 'patch' | 'delete';

export interface ApiRouteDoc {
  method: Method;
  /** Hono path (`/v1/rounds/:id`). */
  path: string;
  summary: string;
  tag: string;
  /** Who may call it, in words (the authorization test holds the exact table). */
  access: string;
  body?: ZodType | 'octet-stream' | 'json';
  query?: z.ZodObject;
  /** Response media type when not JSON. */
  produces?: string;
}

const OFFICER = 'officer (person)';

export const API_ROUTES: ApiRouteDoc[] = [
  { method: 'get', path: '/healthz', summary: 'Liveness', tag: 'system', access: 'anyone' },
  { method: 'get', path: '/readyz', summary: 'Readiness: database and blob store usable', tag: 'system', access: 'anyone' },
  { method: 'get', path: '/metrics', summary: 'Prometheus metrics', tag: 'system', access: 'anyone (bind to a private network)', produces: 'text/plain' },
  { method: 'get', path: '/openapi.json', summary: 'This document', tag: 'system', access: 'anyone' },
  { method: 'get', path: '/docs', summary: 'A page rendering this document', tag: 'system', access: 'anyone', produces: 'text/html' },
  { method: 'get', path: '/docs/render.js', summary: 'The docs page renderer', tag: 'system', access: 'anyone', produces: 'text/javascript' },
  { method: 'get', path: '/docs/style.css', summary: 'The docs page stylesheet', tag: 'system', access: 'anyone', produces: 'text/css' },
  { method: 'post', path: '/v1/rounds/:id/contributions', summary: 'Upload a robot-signed encrypted update package', tag: 'contributions', access: 'robot of the round’s fleet (10/min)', body: 'octet-stream' },
  { method: 'get', path: '/v1/rounds/:id/contributions/:cid/package', summary: 'One stored update package', tag: 'contributions', access: OFFICER, produces: 'application/octet-stream' },
  { method: 'post', path: '/v1/bench/null-sink', summary: 'Benchmark sink (TG_BENCH_NULL_SINK=1 only, refused in production)', tag: 'system', access: 'anyone (development only)', body: 'octet-stream' },
  { method: 'get', path: '/*', summary: 'The PWA: pages, scripts, workers, static assets', tag: 'pwa', access: 'anyone', produces: 'text/html' },
  { method: 'head', path: '/*', summary: 'The PWA (HEAD)', tag: 'pwa', access: 'anyone', produces: 'text/html' },
];

/** `/v1/rounds/:id` -> `/v1/rounds/{id}`; the PWA catch-all `*` -> `/{asset}`. */
export function openApiPath(honoPath: string): string {
  if (honoPath === '*' || honoPath === '/*') return '/{asset}';
  return honoPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
}

const ErrorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), errorId: z.string().optional(), details: z.record(z.string(), z.unknown()).optional() }) });

function register(registry: OpenAPIRegistry, r: ApiRouteDoc): void {
  const params = [...r.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]!);
  const body =
    r.body === undefined
      ? undefined
      : r.body === 'octet-stream'
        ? { content: { 'application/octet-stream': { schema: z.string().describe('binary') } } }
        : r.body === 'json'
          ? { content: { 'application/json': { schema: z.record(z.string(), z.unknown()) } } }
          : { content: { 'application/json': { schema: r.body } } };
  registry.registerPath({
    method: r.method,
    path: openApiPath(r.path),
    summary: r.summary,
    description: `Who may call it: ${r.access}.`,
    tags: [r.tag],
    request: {
      ...(params.length > 0 ? { params: z.object(Object.fromEntries(params.map((p) => [p, z.string()]))) } : {}),
      ...(r.path === '/*' ? { params: z.object({ asset: z.string() }) } : {}),
      ...(r.query ? { query: r.query } : {}),
      ...(body ? { body } : {}),
    },
    responses: {
      200: { description: 'success', content: r.produces ? { [r.produces]: { schema: z.string() } } : { 'application/json': { schema: z.unknown() } } },
      default: { description: 'error: a stable code, and an errorId for 5xx', content: { 'application/json': { schema: ErrorBody } } },
    },
  });
}

type Definition = OpenAPIRegistry['definitions'][number];

/** The definitions an OpenAPIHono route file registered, with its mount prefix (`/v1`) added. */
export function mountedDefinitions(options: { registry: OpenAPIRegistry; prefix: string }): Definition[] {
  return options.registry.definitions.map((d) => (d.type === 'route' ? { ...d, route: { ...d.route, path: options.prefix + d.route.path } } : d));
}

/** Builds the document from API_ROUTES plus the definitions of OpenAPIHono route files. */
export function buildOpenApiDocument(options: { definitions?: Definition[] } = {}) {
  const registry = new OpenAPIRegistry();
  for (const r of API_ROUTES) register(registry, r);
  return new OpenApiGeneratorV31([...registry.definitions, ...(options.definitions ?? [])]).generateDocument({
    openapi: '3.1.0',
    info: { title: 'TensorGuard sync server', version: '1', description: 'docs/API.md explains the flows; errors are { error: { code, message, errorId? } }.' },
    servers: [{ url: '/' }],
  });
}

/** GET /docs: a self-contained page (no CDN, the CSP forbids one) that renders /openapi.json. */
export const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>TensorGuard API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/style.css"></head>
<body><h1>TensorGuard API</h1><p>Generated from <a href="/openapi.json">/openapi.json</a>.</p><main id="paths">Loading…</main>
<script src="/docs/render.js"></script></body></html>`;

export const DOCS_CSS = `body{font:15px system-ui,sans-serif;margin:2rem;max-width:70rem}section{border-top:1px solid #ccc;padding:.5rem 0}
.m{display:inline-block;min-width:4.5rem;font-weight:bold;text-transform:uppercase}code{font-size:14px}pre{background:#f4f4f4;padding:.5rem;overflow:auto;font-size:12px}`;

export const DOCS_JS = `(async () => {
  const doc = await (await fetch('/openapi.json')).json();
  const main = document.getElementById('paths');
  main.textContent = '';
  const el = (tag, text) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = text; return e; };
  for (const [path, ops] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const s = el('section');
      const h = el('h3'); const m = el('span', method); m.className = 'm'; h.append(m, el('code', path)); s.append(h);
      s.append(el('p', op.summary || ''), el('p', op.description || ''));
      const body = op.requestBody && Object.entries(op.requestBody.content)[0];
      if (body) { s.append(el('p', 'Request body (' + body[0] + '):')); s.append(el('pre', JSON.stringify(body[1].schema, null, 2))); }
      const params = (op.parameters || []).map((p) => p.in + ' ' + p.name + (p.required ? '' : '?'));
      if (params.length) s.append(el('p', 'Parameters: ' + params.join(', ')));
      main.append(s);
    }
  }
})();`;
