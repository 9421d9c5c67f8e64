// A man-in-the-middle in front of the real server, standing in for a malicious sync server operator:
// it forwards every request unchanged unless a test installs a rewrite for the response.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Rewrite = (req: { method: string; path: string }, body: Buffer) => Buffer | null;

export async function startProxy(target: string): Promise<{ url: string; setRewrite(r: Rewrite | null): void; close(): Promise<void> }> {
  let rewrite: Rewrite | null = null;
  const server: Server = createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
    const upstream = await fetch(new URL(req.url!, target), {
      method: req.method,
      headers,
      body: req.method === 'GET' || req.method === 'HEAD' ? undefined : Buffer.concat(chunks),
    });
    let body: Buffer = Buffer.from(await upstream.arrayBuffer());
    if (rewrite) body = rewrite({ method: req.method!, path: req.url! }, body) ?? body;
    const out: Record<string, string> = {};
    upstream.headers.forEach((v, k) => {
      if (k !== 'content-length' && k !== 'content-encoding' && k !== 'transfer-encoding') out[k] = v;
    });
    res.writeHead(upstream.status, out);
    res.end(body);
  });
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    setRewrite: (r) => (rewrite = r),
    close: () => new Promise((ok) => server.close(() => ok())),
  };
}
