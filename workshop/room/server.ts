// The instructor's room: a small HTTP server on the LAN (`npm run room`).
//
//   /<code>/              the live board (public/board.js, updated by Server-Sent Events)
//   /<code>/events        the board's stream: one `board` event per change
//   /<code>/board.json    the board, once
//   /<code>/report        POST: a participant's check result (protocol.ts)
//   /<code>/leave         POST: a participant stops reporting (npm run leave)
//   /<code>/slides/[page] WORKSHOP.md as pages, Mermaid drawn in the browser
//   /<code>/assets/…      the page's CSS and scripts, mermaid.js from node_modules
//
// node:http, no framework: six routes, and Server-Sent Events are a response
// left open — nothing a framework would make shorter, and nothing more for
// every participant to install. Every URL carries the room's code; anything
// else gets the same 404, and wrong codes count against the sender's rate.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createRequire } from 'node:module';
import { REPO_ROOT } from '../../lib/paths.js';
import { STEPS } from '../steps.js';
import { Board, type Snapshot } from './board.js';
import { ID_PATTERN, LIMITS, RateLimiter, cleanText, tokenMatches, validateReport } from './protocol.js';
import { escapeHtml, loadGuide, slidePage } from './slides.js';

export interface RoomOptions {
  token: string;
  /** Address to listen on: 0.0.0.0 (the LAN) unless told otherwise. */
  host?: string;
  /** 0: any free port. */
  port?: number;
  /** A failing participant with no change for this long is highlighted as stuck. */
  stuckAfterMs?: number;
  /** The join URL to show on the board, once the port is known. */
  joinUrl?: (port: number) => string;
  guideFile?: string;
  now?: () => number;
  /** One line per event worth the instructor's terminal (joins, leaves, rejected senders). */
  log?: (line: string) => void;
}

export interface Room {
  port: number;
  board: Board;
  close(): Promise<void>;
}

export const DEFAULT_STUCK_MS = 10 * 60_000;

const PUBLIC = `${REPO_ROOT}/workshop/room/public`;

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  // The room's code is in every URL: never send it to another site.
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
};

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  html: 'text/html; charset=utf-8',
  json: 'application/json; charset=utf-8',
  text: 'text/plain; charset=utf-8',
};

/** The page's own files, and mermaid's browser bundle (from npm: the room works offline). */
function assetPath(name: string): string | undefined {
  if (name === 'mermaid.js') return createRequire(`${REPO_ROOT}/package.json`).resolve('@mermaid-js/tiny/dist/mermaid.tiny.js');
  return ['room.css', 'board.js', 'slides.js'].includes(name) ? `${PUBLIC}/${name}` : undefined;
}

function send(res: ServerResponse, status: number, type: keyof typeof TYPES, body: string | Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { ...SECURITY_HEADERS, 'content-type': TYPES[type]!, 'cache-control': 'no-store', ...headers });
  res.end(body);
}

const NOT_FOUND = 'This is a workshop room. Open the link your instructor gave you: it ends with the room\'s 10-letter code.\n';

type Body = { ok: true; text: string } | { ok: false; status: number; error: string };

/** The request's body, at most LIMITS.bodyBytes; JSON only. */
function readBody(req: IncomingMessage): Promise<Body> {
  return new Promise((resolve) => {
    if (!/^application\/json\b/.test(req.headers['content-type'] ?? '')) {
      resolve({ ok: false, status: 415, error: 'send application/json' });
      return;
    }
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > LIMITS.bodyBytes) {
      resolve({ ok: false, status: 413, error: `at most ${LIMITS.bodyBytes} bytes` });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > LIMITS.bodyBytes) {
        done = true;
        resolve({ ok: false, status: 413, error: `at most ${LIMITS.bodyBytes} bytes` });
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (!done) resolve({ ok: true, text: Buffer.concat(chunks).toString('utf8') });
      done = true;
    });
    req.on('error', () => {
      if (!done) resolve({ ok: false, status: 400, error: 'the request broke off' });
      done = true;
    });
  });
}

/** The board for browsers: rows keyed by a hash, so a participant's id (their "password" for reports) never leaves the server. */
function publicSnapshot(snapshot: Snapshot, token: string): Snapshot {
  return { ...snapshot, rows: snapshot.rows.map((row) => ({ ...row, id: createHash('sha256').update(`${token}:${row.id}`).digest('hex').slice(0, 12) })) };
}

function boardPage(joinUrl: string | undefined): string {
  const join = joinUrl ? `<p class="join">Join: <code>npm run join ${escapeHtml(joinUrl)} -- --name YOUR-NAME</code></p>` : '';
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>The room — containers from scratch</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/room.css">
</head>
<body class="board" data-updates="0">
<header>
<h1>The room</h1>
<p id="summary" aria-live="polite">connecting…</p>
<nav><a href="slides/">slides</a></nav>
</header>
${join}
<section id="histogram" aria-label="participants per step"></section>
<table id="participants">
<thead><tr><th>name</th><th>machine</th><th>step</th><th>checks</th><th>failing check</th><th>last change</th></tr></thead>
<tbody></tbody>
</table>
<p id="empty" hidden>Nobody has joined yet.</p>
<p id="connection" class="connection"></p>
<script src="assets/board.js"></script>
</body>
</html>
`;
}

export function openRoom(options: RoomOptions): Promise<Room> {
  const { token } = options;
  const now = options.now ?? Date.now;
  const log = options.log ?? (() => {});
  const guideFile = options.guideFile ?? `${REPO_ROOT}/WORKSHOP.md`;
  const board = new Board(
    STEPS.map((step) => ({ number: step.number, title: step.title })),
    options.stuckAfterMs ?? DEFAULT_STUCK_MS,
    now,
  );
  const limiter = new RateLimiter(LIMITS.burst, LIMITS.perSecond, now);
  const clients = new Set<ServerResponse>();
  const assets = new Map<string, Buffer>();
  const told = new Set<string>();

  /** Say something about a sender once (a flood of the same complaint helps nobody). */
  const tellOnce = (key: string, line: string): void => {
    if (told.has(key) || told.size > 1000) return;
    told.add(key);
    log(line);
  };

  let pendingBroadcast: NodeJS.Timeout | undefined;
  const broadcast = (): void => {
    if (pendingBroadcast) return;
    // Coalesce a burst of reports into one update (at most ten a second).
    pendingBroadcast = setTimeout(() => {
      pendingBroadcast = undefined;
      const data = `event: board\ndata: ${JSON.stringify(publicSnapshot(board.snapshot(), token))}\n\n`;
      for (const client of clients) client.write(data);
    }, 100);
  };
  const heartbeat = setInterval(() => {
    for (const client of clients) client.write(': still here\n\n');
  }, 15_000);

  const events = (req: IncomingMessage, res: ServerResponse): void => {
    if (clients.size >= LIMITS.boardClients) return send(res, 503, 'text', `at most ${LIMITS.boardClients} boards at once\n`);
    res.writeHead(200, { ...SECURITY_HEADERS, 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store' });
    res.write(`retry: 2000\nevent: board\ndata: ${JSON.stringify(publicSnapshot(board.snapshot(), token))}\n\n`);
    clients.add(res);
    res.on('close', () => clients.delete(res));
  };

  const report = async (req: IncomingMessage, res: ServerResponse, address: string): Promise<void> => {
    const body = await readBody(req);
    if (!body.ok) {
      res.once('finish', () => req.destroy()); // do not read the rest of an oversized body
      return send(res, body.status, 'text', `${body.error}\n`, { connection: 'close' });
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.text);
    } catch {
      return send(res, 400, 'text', 'the body is not JSON\n');
    }
    const validation = validateReport(parsed);
    if (!validation.ok) {
      // The reason quotes what was sent: cleaned and cut before it reaches the instructor's terminal.
      tellOnce(`${address} ${validation.error}`, `! rejected a report from ${address}: ${cleanText(validation.error, 200)}`);
      return send(res, 400, 'text', `${validation.error}\n`);
    }
    const { report: accepted } = validation;
    const applied = board.apply(accepted);
    if (applied === 'full') {
      tellOnce('full', `! the room is full (${LIMITS.participants} participants): new ones are turned away`);
      return send(res, 503, 'text', 'the room is full\n');
    }
    if (applied === 'new') log(`+ ${accepted.name} (${accepted.machine}) joined`);
    if (applied !== 'same') broadcast();
    send(res, 204, 'text', '');
  };

  const leave = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readBody(req);
    if (!body.ok) return send(res, body.status, 'text', `${body.error}\n`, { connection: 'close' });
    let id: unknown;
    try {
      id = (JSON.parse(body.text) as { id?: unknown }).id;
    } catch {
      return send(res, 400, 'text', 'the body is not JSON\n');
    }
    if (typeof id !== 'string' || !ID_PATTERN.test(id)) return send(res, 400, 'text', 'id must be 16 hex digits\n');
    const name = board.name(id);
    if (board.remove(id)) {
      log(`- ${name} left`);
      broadcast();
    }
    send(res, 204, 'text', '');
  };

  const asset = (res: ServerResponse, name: string): void => {
    const path = assetPath(name);
    if (!path) return send(res, 404, 'text', 'no such file\n');
    let content = assets.get(name);
    if (!content) {
      content = readFileSync(path);
      assets.set(name, content);
    }
    send(res, 200, name.endsWith('.css') ? 'css' : 'js', content, { 'cache-control': 'max-age=300' });
  };

  const slides = (res: ServerResponse, id: string | undefined): void => {
    let guide;
    try {
      guide = loadGuide(guideFile);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      return send(res, 404, 'text', `${guideFile} is not there: the slides are made from it.\n`);
    }
    if (id === undefined || id === '') return send(res, 200, 'html', slidePage(guide, undefined));
    const page = guide.pages.find((p) => p.id === id);
    if (!page) return send(res, 404, 'text', `no page "${id}" in the guide\n`);
    send(res, 200, 'html', slidePage(guide, page));
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const address = req.socket.remoteAddress ?? 'unknown';
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://room.invalid').pathname;
    } catch {
      return send(res, 400, 'text', 'bad URL\n');
    }
    const [code = '', ...rest] = path.split('/').slice(1);
    const route = rest.join('/');
    if (!tokenMatches(code, token)) {
      if (!limiter.take(address)) return send(res, 429, 'text', 'too many requests\n', { 'retry-after': '5' });
      return send(res, 404, 'text', NOT_FOUND);
    }
    if (req.method === 'POST') {
      if (!limiter.take(address)) {
        tellOnce(`${address} rate`, `! too many requests from ${address}: slowing it down`);
        return send(res, 429, 'text', 'too many requests\n', { 'retry-after': '5', connection: 'close' });
      }
      if (route === 'report') return report(req, res, address);
      if (route === 'leave') return leave(req, res);
      return send(res, 404, 'text', 'no such thing to post to\n');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'text', 'GET or POST\n', { allow: 'GET, POST' });
    if (rest.length === 0) return send(res, 301, 'text', '', { location: `/${token}/` });
    if (route === '') return send(res, 200, 'html', boardPage(options.joinUrl?.(port)));
    if (route === 'events') return events(req, res);
    if (route === 'board.json') return send(res, 200, 'json', JSON.stringify(publicSnapshot(board.snapshot(), token)));
    if (rest[0] === 'slides' && rest.length <= 2) return slides(res, rest[1]);
    if (rest[0] === 'assets' && rest.length === 2) return asset(res, rest[1]!);
    send(res, 404, 'text', 'not here\n');
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      log(cleanText(`! ${req.method} ${req.url}: ${error instanceof Error ? error.message : String(error)}`, 300));
      if (!res.headersSent) send(res, 500, 'text', 'the room had a problem with this request\n');
      else res.end();
    });
  });
  // Slow or half-open senders cannot hold the room: requests must arrive whole, and soon.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 50;
  server.maxConnections = 1_000;

  let port = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      const address = server.address();
      port = typeof address === 'object' && address ? address.port : 0;
      resolve({
        port,
        board,
        close: () =>
          new Promise<void>((done) => {
            clearInterval(heartbeat);
            if (pendingBroadcast) clearTimeout(pendingBroadcast);
            for (const client of clients) client.end();
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}
