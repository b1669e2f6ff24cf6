// The participant's side of the room: `npm run join` stores where the room
// is, `npm run check` reports each result there, `npm run leave` stops it.
//
// Reporting must never cost the participant anything: it is one small POST,
// given up after REPORT_TIMEOUT_MS, and every failure is swallowed (a dead
// Wi-Fi, a closed room, a wrong address: the check goes on exactly the same).
import chalk from 'chalk';
import { request } from 'node:http';
import { hostname, userInfo } from 'node:os';
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { WORKSHOP_DIR } from '../progress.js';
import { LIMITS, PROTOCOL_VERSION, ID_PATTERN, TOKEN_PATTERN, cleanText, errorClassOf, type CheckOutcome, type Report, type RoomAddress } from './protocol.js';

/** The longest a check waits for the room (a LAN answers in a few ms). */
export const REPORT_TIMEOUT_MS = 300;

const ROOM_FILE = `${WORKSHOP_DIR}/room.json`;

/** What `npm run join` stores in .workshop/room.json. */
export interface JoinedRoom extends RoomAddress {
  id: string;
  name: string;
}

export function joinedRoom(file = ROOM_FILE): JoinedRoom | undefined {
  try {
    const room = JSON.parse(readFileSync(file, 'utf8')) as Partial<JoinedRoom>;
    const valid =
      typeof room.origin === 'string' &&
      /^http:\/\/[^/]+$/.test(room.origin) &&
      typeof room.token === 'string' &&
      TOKEN_PATTERN.test(room.token) &&
      typeof room.id === 'string' &&
      ID_PATTERN.test(room.id) &&
      typeof room.name === 'string' &&
      cleanText(room.name, LIMITS.nameChars) === room.name &&
      room.name !== '';
    return valid ? (room as JoinedRoom) : undefined;
  } catch {
    return undefined; // not joined (or a damaged file: the same, for a check)
  }
}

export function saveJoinedRoom(room: JoinedRoom, file = ROOM_FILE): void {
  mkdirSync(WORKSHOP_DIR, { recursive: true });
  const temporary = `${file}.${process.pid}`;
  writeFileSync(temporary, JSON.stringify(room, null, 2) + '\n', { mode: 0o600 });
  renameSync(temporary, file);
}

export function forgetJoinedRoom(file = ROOM_FILE): void {
  rmSync(file, { force: true });
}

/** The name the board shows when --name is not given: the login name. */
export function defaultName(): string {
  let login = '';
  try {
    login = userInfo().username;
  } catch {
    // no passwd entry (some containers)
  }
  return cleanText(login || process.env.USER || 'participant', LIMITS.nameChars) || 'participant';
}

/** This machine's name, as the board shows it. */
export function machineName(): string {
  return cleanText(hostname(), LIMITS.machineChars) || 'unknown';
}

/** One check's outcome as the check runner knows it: `error` is whatever it threw (only its class is sent). */
export interface CheckRun {
  step: number;
  name: string;
  passed: boolean;
  error?: unknown;
}

/** A finished `npm run check N`: the hook's whole input (see reportToRoom). */
export interface CheckResult {
  step: number;
  checks: CheckRun[];
}

/** The report for `result`: names and pass/fail only, cut to the protocol's limits. */
export function reportFor(room: JoinedRoom, result: CheckResult, machine = machineName()): Report {
  const checks: CheckOutcome[] = result.checks.slice(0, LIMITS.checks).map((check) => ({
    step: check.step,
    name: cleanText(check.name, LIMITS.checkNameChars) || '(unnamed check)',
    passed: check.passed,
    ...(check.passed ? {} : { error: errorClassOf(check.error) }),
  }));
  return { v: PROTOCOL_VERSION, id: room.id, name: room.name, machine, step: result.step, checks };
}

export type SendOutcome = { ok: true } | { ok: false; status?: number; reason: string };

/**
 * POST `body` to the room's `path`, giving up after `timeoutMs`. Resolves,
 * never rejects: the outcome says what happened, for `join` to explain.
 */
export function send(room: RoomAddress, path: string, body: string, timeoutMs = REPORT_TIMEOUT_MS): Promise<SendOutcome> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (outcome: SendOutcome): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(outcome);
    };
    const url = new URL(`/${room.token}/${path}`, room.origin);
    const req = request(url, {
      method: 'POST',
      agent: false,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
    });
    const timer = setTimeout(() => finish({ ok: false, reason: `no answer within ${timeoutMs} ms` }), timeoutMs);
    req.on('error', (error: NodeJS.ErrnoException) => finish({ ok: false, reason: error.code ?? error.message }));
    req.on('response', (response) => {
      response.resume(); // the answer's body is not needed
      const status = response.statusCode ?? 0;
      finish(status >= 200 && status < 300 ? { ok: true } : { ok: false, status, reason: `HTTP ${status}` });
    });
    req.end(body);
  });
}

/**
 * The hook `npm run check` calls once its report is printed: send the result
 * to the room this checkout joined, if any. At most REPORT_TIMEOUT_MS, never
 * throws, and prints nothing unless the room could not be reached (one dim line).
 */
export async function reportToRoom(
  result: CheckResult,
  { roomFile = ROOM_FILE, log = console.log }: { roomFile?: string; log?: (line: string) => void } = {},
): Promise<void> {
  try {
    const room = joinedRoom(roomFile);
    if (!room) return;
    const outcome = await send(room, 'report', JSON.stringify(reportFor(room, result)));
    if (!outcome.ok) log(chalk.dim(`(the room at ${room.origin} did not take this result: ${outcome.reason}. \`npm run leave\` stops reporting.)`));
  } catch {
    // reporting is a courtesy: it never fails a check
  }
}
