// The room's protocol, limits and server (in this process), the participant's
// report hook, and the projector's compact views (diff, --trace=compact).
// The browser end-to-end test is room-browser.test.ts.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { describe, test, before, after } from 'node:test';
import { REPO_ROOT } from '../lib/paths.js';
import { commonTemplate, fitArgs, shortenPaths, splitArgs, traceSetting } from '../lib/kernel/trace-compact.js';
import { checksUpTo } from '../workshop/checks.js';
import { Board } from '../workshop/room/board.js';
import { reportFor, reportToRoom, send, type JoinedRoom } from '../workshop/room/client.js';
import { LIMITS, RateLimiter, TOKEN_PATTERN, cleanText, newToken, parseRoomUrl, tokenMatches, validateReport, type Report } from '../workshop/room/protocol.js';
import { openRoom, type Room } from '../workshop/room/server.js';
import { codeLines, compactDiff, plainSolutionOf, renderCompact } from '../workshop/step-diff.js';
import { STEPS } from '../workshop/steps.js';

const ID = '0123456789abcdef';

function report(overrides: Partial<Report> = {}): Report {
  return {
    v: 1,
    id: ID,
    name: 'ada',
    machine: 'ada-laptop',
    step: 3,
    checks: [
      { step: 1, name: 'runs the command', passed: true },
      { step: 3, name: 'the command is PID 1', passed: false, error: 'CheckFailure' },
    ],
    ...overrides,
  };
}

/** POST `body` to the room; the status and the answer's text. */
function post(port: number, path: string, body: string, headers: Record<string, string> = { 'content-type': 'application/json' }): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: { ...headers, 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function get(port: number, path: string): Promise<{ status: number; text: string; headers: Headers }> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: response.status, text: await response.text(), headers: response.headers };
}

describe('room protocol', () => {
  test('a report is accepted only when every field is within the limits', () => {
    assert.deepEqual(validateReport(report()), { ok: true, report: report() });
    const tooMany = Array.from({ length: LIMITS.checks + 1 }, (_, i) => ({ step: 1, name: `check ${i}`, passed: true }));
    const rejected: [string, unknown][] = [
      ['not an object', 'hello'],
      ['an unknown field (no smuggled data)', { ...report(), env: { HOME: '/root' } }],
      ['another protocol version', { ...report(), v: 2 }],
      ['an id that is not 16 hex digits', report({ id: 'ada' })],
      ['an empty name', report({ name: '' })],
      ['a name past the limit', report({ name: 'a'.repeat(LIMITS.nameChars + 1) })],
      ['a name with control characters', report({ name: 'ada\u001b[2J' })],
      ['a name with a right-to-left override', report({ name: 'ada\u202Egnp.exe' })],
      ['a machine past the limit', report({ machine: 'm'.repeat(LIMITS.machineChars + 1) })],
      ['a step out of range', report({ step: LIMITS.highestStep + 1 })],
      ['a fractional step', report({ step: 2.5 })],
      ['too many checks', report({ checks: tooMany })],
      ['a check name past the limit', report({ checks: [{ step: 1, name: 'x'.repeat(LIMITS.checkNameChars + 1), passed: true }] })],
      ['pass/fail that is not a boolean', report({ checks: [{ step: 1, name: 'x', passed: 'yes' as unknown as boolean }] })],
      ['an error message instead of a class', report({ checks: [{ step: 1, name: 'x', passed: false, error: 'ENOENT: /home/ada/secret' }] })],
      ['an error on a passed check', report({ checks: [{ step: 1, name: 'x', passed: true, error: 'CheckFailure' }] })],
      ['extra fields in a check', { ...report(), checks: [{ step: 1, name: 'x', passed: false, stderr: 'the file' }] }],
      ['checks on a "joined" report', report({ step: 0 })],
    ];
    for (const [what, value] of rejected) assert.equal(validateReport(value).ok, false, `accepted ${what}`);
  });

  test('names are cleaned of control and formatting characters, and cut to the limit', () => {
    assert.equal(cleanText('  Ada\t\nLovelace\u200B ', 32), 'Ada Lovelace');
    assert.equal(cleanText('\u202Eevil', 32), 'evil');
    assert.equal(cleanText('é'.repeat(40), LIMITS.nameChars), 'é'.repeat(LIMITS.nameChars));
    assert.equal(cleanText('\u0000\u0007', 32), '');
  });

  test('room codes: 10 readable characters, random, compared whole', () => {
    const tokens = new Set(Array.from({ length: 50 }, () => newToken()));
    assert.equal(tokens.size, 50);
    for (const token of tokens) assert.match(token, TOKEN_PATTERN);
    const [token] = tokens as unknown as [string];
    assert.equal(tokenMatches(token, token), true);
    assert.equal(tokenMatches(token.slice(0, 9), token), false);
    assert.equal(tokenMatches(`${token}x`, token), false);
    assert.equal(tokenMatches(token.replace(/^./, (c) => (c === 'a' ? 'b' : 'a')), token), false);
  });

  test('join URLs: with or without http://, the code is required, https is not spoken', () => {
    assert.deepEqual(parseRoomUrl('http://192.168.1.20:8042/k3j9x2qawe'), { origin: 'http://192.168.1.20:8042', token: 'k3j9x2qawe' });
    assert.deepEqual(parseRoomUrl('192.168.1.20:8042/k3j9x2qawe/'), { origin: 'http://192.168.1.20:8042', token: 'k3j9x2qawe' });
    assert.match((parseRoomUrl('http://192.168.1.20:8042/') as { error: string }).error, /no room code/);
    assert.match((parseRoomUrl('https://192.168.1.20:8042/k3j9x2qawe') as { error: string }).error, /speaks http/);
    assert.match((parseRoomUrl('http://a:b@host:1/k3j9x2qawe') as { error: string }).error, /no user name/);
  });

  test('the rate limit: a burst, then the refill rate', () => {
    let now = 0;
    const limiter = new RateLimiter(3, 1, () => now);
    assert.deepEqual([1, 2, 3, 4].map(() => limiter.take('10.0.0.5')), [true, true, true, false]);
    assert.equal(limiter.take('10.0.0.6'), true, 'another address has its own bucket');
    now += 1000;
    assert.deepEqual([limiter.take('10.0.0.5'), limiter.take('10.0.0.5')], [true, false]);
  });

  test('what a check sends: names, pass/fail and error classes — no message, no path', (t) => {
    const room: JoinedRoom = { origin: 'http://127.0.0.1:1', token: 'k3j9x2qawe', id: ID, name: 'ada' };
    const secret = new Error('cannot read /home/ada/.ssh/id_rsa: EACCES');
    secret.name = 'LibcError';
    const checks = checksUpTo(STEPS.length).map((check, index) => ({ step: check.step, name: check.name, passed: index !== 0, ...(index === 0 ? { error: secret } : {}) }));
    const sent = reportFor(room, { step: STEPS.length, checks }, 'ada-laptop');
    const body = JSON.stringify(sent);
    assert.equal(validateReport(JSON.parse(body)).ok, true);
    assert.equal(sent.checks[0]!.error, 'LibcError');
    assert.doesNotMatch(body, /ssh|EACCES|\/home/);
    assert.ok(Buffer.byteLength(body) <= LIMITS.bodyBytes);
    t.diagnostic(`a step-${STEPS.length} report (${checks.length} checks) is ${Buffer.byteLength(body)} bytes of JSON`);
    // A thrown non-Error, or an odd class name, is still just a class.
    const odd = reportFor(room, { step: 1, checks: [{ step: 1, name: 'x', passed: false, error: 'a string' }, { step: 1, name: 'y', passed: false, error: Object.assign(new Error(), { name: 'Bad Name!' }) }] });
    assert.deepEqual(odd.checks.map((check) => check.error), ['string', 'Error']);
  });
});

describe('room board', () => {
  test('a change restarts the clock, a repeat does not; failing with no change past the limit is stuck', () => {
    let now = 1_000;
    const board = new Board([{ number: 1, title: 'exec' }], 60_000, () => now);
    assert.equal(board.apply(report()), 'new');
    now += 30_000;
    assert.equal(board.apply(report()), 'same');
    assert.equal(board.snapshot().rows[0]!.changedAt, 1_000);
    now += 31_000;
    assert.equal(board.snapshot().rows[0]!.stuck, true);
    const fixed = report({ checks: [{ step: 1, name: 'runs the command', passed: true }] });
    assert.equal(board.apply(fixed), 'changed');
    const [row] = board.snapshot().rows;
    assert.deepEqual([row!.status, row!.stuck, row!.changedAt, row!.failing], ['done', false, now, undefined]);
    // Joining again (a new name) keeps the results.
    assert.equal(board.apply(report({ step: 0, checks: [], name: 'Ada L.' })), 'changed');
    assert.deepEqual([board.snapshot().rows[0]!.name, board.snapshot().rows[0]!.status], ['Ada L.', 'done']);
  });

  test('the board holds at most LIMITS.participants rows', () => {
    const board = new Board([], 60_000);
    for (let i = 0; i < LIMITS.participants; i++) assert.equal(board.apply(report({ id: i.toString(16).padStart(16, '0') })), 'new');
    assert.equal(board.apply(report({ id: 'ffffffffffffffff' })), 'full');
    assert.equal(board.apply(report({ id: '0000000000000000', name: 'still known' })), 'changed');
    assert.equal(board.size, LIMITS.participants);
  });
});

describe('room server', () => {
  let room: Room;
  const token = newToken();
  const lines: string[] = [];
  before(async () => {
    room = await openRoom({ token, host: '127.0.0.1', port: 0, log: (line) => lines.push(line) });
  });
  after(() => room.close());

  test('reports need the room code; the board never shows participant ids', async () => {
    assert.equal((await post(room.port, `/${newToken()}/report`, JSON.stringify(report()))).status, 404);
    assert.equal((await post(room.port, '/report', JSON.stringify(report()))).status, 404);
    assert.equal(room.board.size, 0);
    assert.equal((await post(room.port, `/${token}/report`, JSON.stringify(report()))).status, 204);
    const board = await get(room.port, `/${token}/board.json`);
    assert.equal(board.status, 200);
    assert.equal(board.headers.get('referrer-policy'), 'no-referrer');
    const rows = (JSON.parse(board.text) as { rows: { name: string; id: string; failing?: string }[] }).rows;
    assert.deepEqual(rows.map((row) => [row.name, row.failing]), [['ada', '[step 3] the command is PID 1']]);
    assert.notEqual(rows[0]!.id, ID);
    assert.doesNotMatch(board.text, new RegExp(ID));
    assert.ok(lines.includes('+ ada (ada-laptop) joined'));
    assert.equal((await get(room.port, `/${newToken()}/board.json`)).status, 404);
  });

  test('bad bodies are refused: too large, not JSON, not the protocol', async () => {
    const huge = JSON.stringify({ ...report(), name: 'x'.repeat(LIMITS.bodyBytes) });
    assert.equal((await post(room.port, `/${token}/report`, huge)).status, 413);
    assert.equal((await post(room.port, `/${token}/report`, 'name=ada', { 'content-type': 'application/x-www-form-urlencoded' })).status, 415);
    assert.equal((await post(room.port, `/${token}/report`, '{"v":1,')).status, 400);
    const invalid = await post(room.port, `/${token}/report`, JSON.stringify(report({ name: 'a'.repeat(100) })));
    assert.deepEqual([invalid.status, invalid.text], [400, `name must be 1–${LIMITS.nameChars} printable characters\n`]);
  });

  test('leaving takes the row off the board', async () => {
    const other = { ...report(), id: 'fedcba9876543210', name: 'grace' };
    assert.equal((await post(room.port, `/${token}/report`, JSON.stringify(other))).status, 204);
    const before = room.board.size;
    assert.equal((await post(room.port, `/${token}/leave`, JSON.stringify({ v: 1, id: other.id }))).status, 204);
    assert.equal(room.board.size, before - 1);
    assert.ok(lines.includes('- grace left'));
  });

  test('one address sending too fast is slowed down (429), and told once in the log', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < LIMITS.burst + 5; i++) statuses.push((await post(room.port, `/${token}/report`, JSON.stringify(report()))).status);
    assert.ok(statuses.includes(429), `no 429 in ${statuses.length} quick reports`);
    assert.equal(lines.filter((line) => line.startsWith('! too many requests')).length, 1);
  });
});

describe('reporting from npm run check', () => {
  const folder = mkdtempSync(`${tmpdir()}/cfs-room-`);
  after(() => rmSync(folder, { recursive: true, force: true }));
  const result = { step: 1, checks: [{ step: 1, name: 'runs the command', passed: false, error: new Error('nope') }] };

  function joined(origin: string): string {
    const file = `${folder}/room-${Math.random().toString(16).slice(2)}.json`;
    writeFileSync(file, JSON.stringify({ origin, token: 'k3j9x2qawe', id: ID, name: 'ada' }));
    return file;
  }

  test('not joined: nothing is sent, nothing is printed', async () => {
    const lines: string[] = [];
    await reportToRoom(result, { roomFile: `${folder}/none.json`, log: (line) => lines.push(line) });
    assert.deepEqual(lines, []);
  });

  test('a closed room, or one that never answers: the hook returns, one quiet line, no error', { timeout: 10_000 }, async () => {
    // A port nobody listens on...
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // ...and a server that takes the connection and never answers.
    const silent: Server = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentPort = (silent.address() as AddressInfo).port;
    try {
      const lines: string[] = [];
      await reportToRoom(result, { roomFile: joined(`http://127.0.0.1:${closedPort}`), log: (line) => lines.push(line) });
      await reportToRoom(result, { roomFile: joined(`http://127.0.0.1:${silentPort}`), log: (line) => lines.push(line) });
      assert.equal(lines.length, 2);
      assert.match(lines[0]!, /ECONNREFUSED/);
      assert.match(lines[1]!, /no answer within 300 ms/);
      const outcome = await send({ origin: `http://127.0.0.1:${silentPort}`, token: 'k3j9x2qawe' }, 'report', '{}', 50);
      assert.deepEqual(outcome, { ok: false, reason: 'no answer within 50 ms' });
    } finally {
      silent.closeAllConnections();
      silent.close();
    }
  });
});

describe('projector views', () => {
  test('npm run diff N -- --compact: only code, one screen (≤ 30 lines, ≤ 100 columns) for steps 1–4', () => {
    for (const number of [1, 2, 3, 4]) {
      const step = STEPS.find((s) => s.number === number)!;
      const text = renderCompact(`Step ${number}`, compactDiff(plainSolutionOf(number - 1), plainSolutionOf(number)));
      const lines = text.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
      assert.ok(lines.length <= 30, `step ${number}: ${lines.length} lines`);
      assert.ok(lines.every((line) => line.length <= 100), `step ${number}: a line is wider than 100 columns`);
      assert.ok(!lines.some((line) => /^[+-]\s*(\/\/|\/\*|\*)/.test(line)), `step ${number}: a comment line is shown (${step.stem})`);
    }
    const step2 = compactDiff(plainSolutionOf(1), plainSolutionOf(2));
    assert.deepEqual(step2.hunks.map((hunk) => [hunk.where, hunk.lines.filter((l) => l.kind === 'add').map((l) => l.text.trim())]), [
      ['parent(container)', ['unshare(CLONE_NEWUTS);']],
      ['child(container)', ['sethostname(container.hostname);']],
    ]);
    assert.deepEqual(step2.imports.map((i) => i.added), [['CLONE_NEWUTS'], ['sethostname', 'unshare']]);
  });

  test('comments go, strings and template literals stay (even with // inside)', () => {
    const source = "const a = 'http://x'; // a comment\n/* block\n comment */ const b = `${a}//y`; /* tail */\n  // only a comment\n\nconst c = \"/*not*/\";";
    assert.deepEqual(codeLines(source), ["const a = 'http://x';", ' const b = `${a}//y`;', 'const c = "/*not*/";']);
  });

  test('--trace forms: compact on a narrow terminal, full otherwise or when asked', () => {
    assert.equal(traceSetting('--trace', { isTTY: true, columns: 100 }), 'compact:100');
    assert.equal(traceSetting('--trace', { isTTY: true, columns: 80 }), 'compact:80');
    assert.equal(traceSetting('--trace', { isTTY: true, columns: 200 }), '1');
    assert.equal(traceSetting('--trace', { isTTY: false }), '1');
    assert.equal(traceSetting('--trace=compact', { isTTY: false }), 'compact:100');
    assert.equal(traceSetting('--trace=compact', { isTTY: true, columns: 300 }), 'compact:100');
    assert.equal(traceSetting('--trace=full', { isTTY: true, columns: 80 }), '1');
    assert.equal(traceSetting('--trace=wide'), undefined);
  });

  test('compact trace helpers: split, shorten, cut, and a run of one call as one line', () => {
    assert.deepEqual(splitArgs('"a, b", [1, 2], {x="y", z=1}, MS_BIND|MS_REC'), ['"a, b"', '[1, 2]', '{x="y", z=1}', 'MS_BIND|MS_REC']);
    assert.equal(shortenPaths(`"${REPO_ROOT}/rootfs/proc", "${REPO_ROOT}"`), '"rootfs/proc", "."');
    const fitted = fitArgs(['"proc"', '"/a/very/long/path/that/goes/on/and/on/proc"', 'MS_NOSUID|MS_NODEV|MS_NOEXEC', '""'], 60);
    assert.ok(fitted.length <= 60, fitted);
    assert.match(fitted, /^"proc", "\/a\/very.*….*proc", MS_NOSUID\|/);
    const devices = ['null', 'zero', 'tty'].map((name) => ({ call: 'mount', parts: [`"/dev/${name}"`, `"rootfs/dev/${name}"`, '""', 'MS_BIND', '""'], result: '0' }));
    assert.deepEqual(commonTemplate(devices), { parts: ['"/dev/{X}"', '"rootfs/dev/{X}"', '""', 'MS_BIND', '""'], values: ['null', 'zero', 'tty'] });
    assert.equal(commonTemplate([devices[0]!, { ...devices[1]!, result: '-1 EPERM' }]), undefined, 'different results stay separate lines');
    const remounts = [
      { call: 'mount', parts: ['"/proc/sys"', '"/proc/sys"', '""', 'MS_BIND', '""'], result: '0' },
      { call: 'mount', parts: ['"/proc/sys"', '"/proc/sys"', '""', 'MS_RDONLY|MS_REMOUNT|MS_BIND', '""'], result: '0' },
    ];
    assert.equal(commonTemplate(remounts), undefined, 'different flag sets stay separate lines');
  });

  test('npm run step 8 -- --trace=compact fits 100 columns, with short paths and both columns', async () => {
    const child = spawn(process.execPath, ['cli/launch.mjs', 'cli/step.ts', '8', '--solution', '--trace=compact', 'sh', '-c', 'hostname'], {
      cwd: REPO_ROOT,
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const status = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(status, 0, stderr);
    assert.equal(stdout, 'container\n');
    const lines = stderr.trimEnd().split('\n');
    const widest = Math.max(...lines.map((line) => [...line].length));
    assert.ok(widest <= 100, `a line is ${widest} columns wide:\n${stderr}`);
    assert.ok(!stderr.includes(`${REPO_ROOT}/`), 'an absolute path into the repository');
    assert.match(lines[0]!, /^parent · pid \d+ +│ child/);
    assert.ok(lines.some((line) => /^unshare\(CLONE_NEWUTS\|CLONE_NEWPID\|CLONE_NEWNET\) = 0$/.test(line)), 'the parent writes in the left column');
    assert.ok(lines.some((line) => / +│ mount\("proc", "merged\/proc", "proc", /.test(line)), 'the child writes in the right column, paths named');
    assert.ok(lines.some((line) => /│ +X: null zero full random urandom tty$/.test(line) || /X: null zero full random urandom tty$/.test(line)), 'the /dev bind mounts as one run');
    assert.ok(lines.some((line) => /prctl\(PR_CAPBSET_DROP, CAP_\{X\}\) = 0/.test(line)), 'the dropped capabilities as one run');
    assert.ok(lines.length < 70, `${lines.length} lines`); // issue 15 added the runtime's own work before exec (9 lines)
  });

  test('--trace=wide is a usage error', () => {
    const result = spawnSync(process.execPath, ['cli/launch.mjs', 'cli/step.ts', '1', '--solution', '--trace=wide', 'true'], { cwd: REPO_ROOT, encoding: 'utf8', env: { ...process.env, FORCE_COLOR: '0' } });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /unknown option "?--trace=wide"?: --trace takes =compact or =full/);
  });
});
