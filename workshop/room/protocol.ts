// What a participant's `npm run check` sends to the instructor's room, and
// the rules the room applies to it. Shared by the sender (client.ts) and the
// server (server.ts), so both agree on every limit.
//
// A report is the outcome of one check run, nothing more:
//
//   { "v": 1, "id": "5f0c…", "name": "ada", "machine": "ada-laptop",
//     "step": 3, "checks": [{ "step": 1, "name": "runs the command…", "passed": true }, …,
//                           { "step": 3, "name": "the command is PID 1", "passed": false, "error": "CheckFailure" }] }
//
// Never file contents, messages, paths or the environment: a failing check
// is reported by its name and the class of its error only.
import { randomBytes, timingSafeEqual } from 'node:crypto';

export const PROTOCOL_VERSION = 1;

/** Every bound the room enforces (and the sender respects). */
export const LIMITS = {
  /** Largest request body, in bytes (a step-8 report is about 2.6 KB). */
  bodyBytes: 16 * 1024,
  nameChars: 32,
  machineChars: 64,
  checks: 100,
  checkNameChars: 160,
  errorClassChars: 40,
  highestStep: 99,
  /** Rows on the board: new participants beyond this are turned away. */
  participants: 500,
  /** Browsers watching the board (or the slides) at once. */
  boardClients: 50,
  /** Requests per address: a bucket of `burst`, refilled at `perSecond`. */
  burst: 60,
  perSecond: 2,
} as const;

/** The room's code, part of every URL: 10 characters, easy to read off a projector (no 0/o, 1/l/i). */
const TOKEN_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';
const TOKEN_LENGTH = 10;
export const TOKEN_PATTERN = new RegExp(`^[${TOKEN_ALPHABET}]{${TOKEN_LENGTH}}$`);

export function newToken(): string {
  // 31 symbols: rejection sampling keeps every symbol equally likely. 10 of them ≈ 49 bits.
  let token = '';
  while (token.length < TOKEN_LENGTH) {
    for (const byte of randomBytes(16)) {
      if (byte < 248 && token.length < TOKEN_LENGTH) token += TOKEN_ALPHABET[byte % TOKEN_ALPHABET.length];
    }
  }
  return token;
}

/** Compare a presented token with the room's in constant time (no timing hint of how much matched). */
export function tokenMatches(presented: string, token: string): boolean {
  const a = Buffer.from(presented);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A participant's id: random, made at `npm run join`, so two "ada"s are two rows. */
export const ID_PATTERN = /^[0-9a-f]{16}$/;

export function newParticipantId(): string {
  return randomBytes(8).toString('hex');
}

export interface CheckOutcome {
  /** The step that introduced the check. */
  step: number;
  name: string;
  passed: boolean;
  /** For a failed check: the class of its error ("CheckFailure", "LibcError", ...), never its message. */
  error?: string;
}

export interface Report {
  v: typeof PROTOCOL_VERSION;
  id: string;
  name: string;
  machine: string;
  /** The step that was checked; 0 for "joined, nothing checked yet". */
  step: number;
  checks: CheckOutcome[];
}

/**
 * Text fit for the board: no control or formatting characters (they could
 * hide or reorder what the instructor reads), single spaces, at most `max`
 * characters. Empty when nothing printable is left.
 */
export function cleanText(text: string, max: number): string {
  const printable = text.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, ' ').replace(/\s+/g, ' ').trim();
  return [...printable].slice(0, max).join('').trim();
}

/** The class name of a thrown value, shaped to the protocol ("Error" when it has none usable). */
export function errorClassOf(error: unknown): string {
  const name = error instanceof Error ? error.name : typeof error;
  return /^[A-Za-z][A-Za-z0-9_]*$/.test(name) ? name.slice(0, LIMITS.errorClassChars) : 'Error';
}

type Validation = { ok: true; report: Report } | { ok: false; error: string };

function isStep(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= LIMITS.highestStep;
}

/** A text field that is already clean: the room stores exactly what was validated. */
function isCleanText(value: unknown, max: number): value is string {
  return typeof value === 'string' && value.length > 0 && cleanText(value, max) === value;
}

/** Check a parsed request body against the protocol; the room stores only what passes. */
export function validateReport(value: unknown): Validation {
  const fail = (error: string): Validation => ({ ok: false, error });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return fail('the report must be a JSON object');
  const body = value as Record<string, unknown>;
  const known = new Set(['v', 'id', 'name', 'machine', 'step', 'checks']);
  const unknown = Object.keys(body).filter((key) => !known.has(key));
  if (unknown.length > 0) return fail(`unknown field ${JSON.stringify(unknown[0])}`);
  if (body.v !== PROTOCOL_VERSION) return fail(`unsupported protocol version ${JSON.stringify(body.v)} (this room speaks ${PROTOCOL_VERSION})`);
  if (typeof body.id !== 'string' || !ID_PATTERN.test(body.id)) return fail('id must be 16 hex digits');
  if (!isCleanText(body.name, LIMITS.nameChars)) return fail(`name must be 1–${LIMITS.nameChars} printable characters`);
  if (!isCleanText(body.machine, LIMITS.machineChars)) return fail(`machine must be 1–${LIMITS.machineChars} printable characters`);
  if (!isStep(body.step)) return fail(`step must be a whole number from 0 to ${LIMITS.highestStep}`);
  if (!Array.isArray(body.checks)) return fail('checks must be a list');
  if (body.checks.length > LIMITS.checks) return fail(`at most ${LIMITS.checks} checks`);
  if (body.step === 0 && body.checks.length > 0) return fail('step 0 (joined) has no checks');
  const checks: CheckOutcome[] = [];
  for (const [index, item] of body.checks.entries()) {
    const where = `checks[${index}]`;
    if (typeof item !== 'object' || item === null || Array.isArray(item)) return fail(`${where} must be an object`);
    const check = item as Record<string, unknown>;
    const extra = Object.keys(check).find((key) => !['step', 'name', 'passed', 'error'].includes(key));
    if (extra !== undefined) return fail(`${where}: unknown field ${JSON.stringify(extra)}`);
    if (!isStep(check.step) || check.step === 0) return fail(`${where}.step must be a step number`);
    if (!isCleanText(check.name, LIMITS.checkNameChars)) return fail(`${where}.name must be 1–${LIMITS.checkNameChars} printable characters`);
    if (typeof check.passed !== 'boolean') return fail(`${where}.passed must be true or false`);
    if (check.error !== undefined) {
      if (check.passed) return fail(`${where}: a passed check has no error`);
      if (typeof check.error !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(check.error) || check.error.length > LIMITS.errorClassChars) {
        return fail(`${where}.error must be an error class name`);
      }
    }
    checks.push({ step: check.step, name: check.name, passed: check.passed, ...(check.error === undefined ? {} : { error: check.error }) });
  }
  return { ok: true, report: { v: PROTOCOL_VERSION, id: body.id, name: body.name, machine: body.machine, step: body.step, checks } };
}

/**
 * Requests per address, as a token bucket: `burst` at once, then `perSecond`.
 * Keeps one flooding laptop (or a script guessing the room's code) from
 * drowning the room; a participant checking every few seconds never notices.
 */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(
    private readonly burst: number = LIMITS.burst,
    private readonly perSecond: number = LIMITS.perSecond,
    private readonly now: () => number = Date.now,
  ) {}

  /** Take one request's worth for `key`; false when its bucket is empty. */
  take(key: string): boolean {
    const now = this.now();
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond);
    bucket.at = now;
    if (this.buckets.size > 10_000) this.forgetFull(now);
    this.buckets.set(key, bucket);
    if (bucket.tokens < 1) return false;
    bucket.tokens -= 1;
    return true;
  }

  /** Drop buckets that have refilled (their addresses are back to a clean slate anyway). */
  private forgetFull(now: number): void {
    for (const [key, bucket] of this.buckets) {
      if (bucket.tokens + ((now - bucket.at) / 1000) * this.perSecond >= this.burst) this.buckets.delete(key);
    }
  }
}

/** "http://192.168.1.20:8042/k3j9x2qawe" → where the room is, and its code. */
export interface RoomAddress {
  /** http://host:port */
  origin: string;
  token: string;
}

export function parseRoomUrl(text: string): RoomAddress | { error: string } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    return { error: `"${text}" is not a URL` };
  }
  if (url.protocol !== 'http:') return { error: `the room speaks http, not ${url.protocol.replace(/:$/, '')}` };
  if (url.username || url.password) return { error: 'the room URL has no user name or password' };
  const token = url.pathname.replace(/^\/+|\/+$/g, '').split('/')[0] ?? '';
  if (!TOKEN_PATTERN.test(token)) {
    return { error: `"${text}" has no room code: the URL the room prints ends with a 10-letter code, like http://192.168.1.20:8042/k3j9x2qawe` };
  }
  return { origin: url.origin, token };
}
