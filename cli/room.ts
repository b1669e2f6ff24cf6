// npm run room [-- --port N] [--host ADDR] [--stuck-after 10m] [--new-code]
//
// The instructor's room: a live board of everyone's `npm run check` results,
// and WORKSHOP.md as slides, served on the LAN. Prints the URL to project
// and the command participants type to join. Ctrl-C closes it.
import chalk from 'chalk';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { parseArgs } from 'node:util';
import { EXIT, WorkshopError } from '../lib/kernel/errors.js';
import { WORKSHOP_DIR } from '../workshop/progress.js';
import { TOKEN_PATTERN, newToken } from '../workshop/room/protocol.js';
import { DEFAULT_STUCK_MS, openRoom } from '../workshop/room/server.js';
import { main } from './common.js';

const USAGE = 'Usage: npm run room [-- --port N] [--host ADDRESS] [--stuck-after 10m] [--new-code]';
const DEFAULT_PORT = 8042;
/** The room's code and port, kept so that a restarted room has the same URL (participants need not join again). */
const SAVED = `${WORKSHOP_DIR}/room-server.json`;

function usage(message: string): never {
  throw new WorkshopError(message, USAGE, EXIT.usage);
}

/** "10m", "90s", "10" (minutes) → milliseconds. */
function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(s|m|min)?$/.exec(text.trim());
  if (!match) usage(`--stuck-after takes a duration like 10m or 90s, not "${text}"`);
  const value = Number(match[1]);
  return Math.round(match[2] === 's' ? value * 1000 : value * 60_000);
}

function savedRoom(): { token?: string; port?: number } {
  try {
    const saved = JSON.parse(readFileSync(SAVED, 'utf8')) as { token?: unknown; port?: unknown };
    return {
      ...(typeof saved.token === 'string' && TOKEN_PATTERN.test(saved.token) ? { token: saved.token } : {}),
      ...(Number.isInteger(saved.port) ? { port: saved.port as number } : {}),
    };
  } catch {
    return {};
  }
}

/** This machine's IPv4 addresses on its networks (not loopback): where participants can reach it. */
function lanAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((info) => info !== undefined && info.family === 'IPv4' && !info.internal)
    .map((info) => info!.address);
}

main(async () => {
  let values;
  try {
    ({ values } = parseArgs({
      args: process.argv.slice(2),
      options: { port: { type: 'string' }, host: { type: 'string' }, 'stuck-after': { type: 'string' }, 'new-code': { type: 'boolean' } },
    }));
  } catch (error) {
    usage((error as Error).message);
  }
  const saved = savedRoom();
  const port = values.port === undefined ? (saved.port ?? DEFAULT_PORT) : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) usage(`--port takes a port number, not "${values.port}"`);
  const host = values.host ?? '0.0.0.0';
  const stuckAfterMs = values['stuck-after'] === undefined ? DEFAULT_STUCK_MS : parseDuration(values['stuck-after']);
  const token = values['new-code'] || !saved.token ? newToken() : saved.token;

  const listenAll = host === '0.0.0.0' || host === '::';
  const lan = lanAddresses();
  const shownHost = listenAll ? (lan[0] ?? '127.0.0.1') : host;
  const log = (line: string): void => console.log(`${chalk.dim(new Date().toLocaleTimeString())} ${line}`);
  let room;
  try {
    room = await openRoom({ token, host, port, stuckAfterMs, log, joinUrl: (actual) => `http://${shownHost}:${actual}/${token}` });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') {
      throw new WorkshopError(`port ${port} is already taken (another room?).`, `Close the other one, or choose another port: npm run room -- --port ${port + 1}`);
    }
    if (code === 'EADDRNOTAVAIL') throw new WorkshopError(`${host} is not an address of this machine.`, 'Leave out --host to listen on all its networks.', EXIT.usage);
    throw error;
  }
  mkdirSync(WORKSHOP_DIR, { recursive: true });
  writeFileSync(SAVED, JSON.stringify({ token, port: room.port }, null, 2) + '\n', { mode: 0o600 });

  const base = `http://${shownHost}:${room.port}/${token}`;
  console.log(chalk.bold('The room is open') + chalk.dim(' (Ctrl-C closes it; restarted, it keeps this URL — --new-code for a new one)'));
  console.log(`  board, for the projector:  ${chalk.cyan(`${base}/`)}`);
  console.log(`  slides:                    ${chalk.cyan(`${base}/slides/`)}`);
  console.log('Participants join with:');
  console.log(`  ${chalk.bold(`npm run join ${base} -- --name THEIR-NAME`)}`);
  if (listenAll && lan.length === 0) console.log(chalk.yellow('! This machine has no network address: only this machine can join. Connect to the room\'s network and restart.'));
  if (listenAll && lan.length > 1) console.log(chalk.dim(`  (this machine also answers at ${lan.slice(1).join(', ')})`));
  const stuck = stuckAfterMs < 60_000 ? `${stuckAfterMs / 1000} s` : `${Math.round(stuckAfterMs / 6000) / 10} min`;
  console.log(chalk.dim(`A participant failing with no change for ${stuck} is highlighted as stuck.`));

  return new Promise<number>((resolve) => {
    const close = (): void => {
      void room.close().then(() => resolve(0));
    };
    process.once('SIGINT', close);
    process.once('SIGTERM', close);
  });
});
