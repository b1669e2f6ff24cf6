// The room's board, in the browser: one row per participant and a histogram
// of the room per step, redrawn on every `board` event from /events and
// every second (for the "last change" times and the stuck highlight).
// Text goes in with textContent only: a participant's name is never HTML.
'use strict';

/**
 * @typedef {{ step: number, name: string, passed: boolean, error?: string }} Check
 * @typedef {{ id: string, name: string, machine: string, step: number, status: 'joined' | 'done' | 'failing',
 *   checks: Check[], passed: number, failed: number, failing?: string, changedAt: number, reportedAt: number, stuck: boolean }} Row
 * @typedef {{ now: number, stuckAfterMs: number, steps: { number: number, title: string }[], rows: Row[] }} Snapshot
 */

/** @type {Snapshot | undefined} */
let snapshot;
/** The server's clock minus ours, so "3 min ago" is right even if this machine's clock is off. */
let clockOffset = 0;

/** @param {string} selector */
function element(selector) {
  const found = document.querySelector(selector);
  if (!(found instanceof HTMLElement)) throw new Error(`the page has no ${selector}`);
  return found;
}

/**
 * @param {string} tag
 * @param {string} [className]
 * @param {string} [text]
 */
function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** @param {number} ms */
function age(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** @param {Snapshot} board @param {number} number */
function stepLabel(board, number) {
  if (number === 0) return 'joined';
  const step = board.steps.find((s) => s.number === number);
  return step ? `${number} · ${step.title}` : String(number);
}

/** @param {Row} row @param {number} now @param {Snapshot} board */
function isStuck(row, now, board) {
  return row.status === 'failing' && now - row.changedAt > board.stuckAfterMs;
}

/** One square per check, grouped by the step that introduced it. @param {Check[]} checks */
function checkStrip(checks) {
  const strip = make('span', 'checks');
  let group = make('span', 'group');
  let groupStep = checks[0]?.step;
  for (const check of checks) {
    if (check.step !== groupStep) {
      strip.append(group);
      group = make('span', 'group');
      groupStep = check.step;
    }
    const square = make('span', check.passed ? 'check pass' : 'check fail');
    square.title = `[step ${check.step}] ${check.name}${check.passed ? '' : ` — ${check.error ?? 'failed'}`}`;
    group.append(square);
  }
  strip.append(group);
  return strip;
}

/** @param {Row} row @param {number} now @param {Snapshot} board */
function rowElement(row, now, board) {
  const stuck = isStuck(row, now, board);
  const tr = make('tr', `status-${row.status}${stuck ? ' stuck' : ''}`);
  tr.dataset.key = row.id;
  tr.dataset.status = row.status;
  tr.dataset.step = String(row.step);
  tr.dataset.stuck = String(stuck);
  tr.append(make('td', 'name', row.name), make('td', 'machine', row.machine), make('td', 'step', stepLabel(board, row.step)));
  const checks = make('td', 'checks-cell');
  if (row.checks.length > 0) {
    checks.append(checkStrip(row.checks), make('span', 'count', ` ${row.passed}/${row.checks.length}`));
  } else {
    checks.append(make('span', 'count', 'no check yet'));
  }
  const failing = make('td', 'failing', row.failing ?? (row.status === 'done' ? '✓ all pass' : ''));
  const last = make('td', 'age', age(now - row.changedAt));
  if (stuck) last.append(make('span', 'stuck-badge', `stuck > ${age(board.stuckAfterMs)}`));
  tr.append(checks, failing, last);
  return tr;
}

/** Bars: how many participants are at each step, done and failing. @param {Snapshot} board */
function histogram(board) {
  const section = element('#histogram');
  const columns = [{ number: 0, title: 'joined' }, ...board.steps];
  const counts = columns.map(({ number }) => {
    const here = board.rows.filter((row) => row.step === number);
    return { number, done: here.filter((r) => r.status === 'done').length, failing: here.filter((r) => r.status === 'failing').length, joined: here.filter((r) => r.status === 'joined').length };
  });
  const most = Math.max(1, ...counts.map((c) => c.done + c.failing + c.joined));
  section.replaceChildren(
    ...counts.map((count) => {
      const column = make('div', 'bar-column');
      column.dataset.step = String(count.number);
      const total = count.done + count.failing + count.joined;
      const bar = make('div', 'bar');
      for (const [kind, n] of /** @type {const} */ ([['failing', count.failing], ['done', count.done], ['joined', count.joined]])) {
        if (n === 0) continue;
        const part = make('div', `part ${kind}`);
        part.style.height = `${(n / most) * 100}%`;
        part.title = `${n} ${kind}`;
        bar.append(part);
      }
      column.append(make('div', 'total', total > 0 ? String(total) : ''), bar, make('div', 'label', stepLabel(board, count.number)));
      return column;
    }),
  );
}

function render() {
  if (!snapshot) return;
  const now = Date.now() + clockOffset;
  const board = snapshot;
  element('#participants tbody').replaceChildren(...board.rows.map((row) => rowElement(row, now, board)));
  element('#empty').hidden = board.rows.length > 0;
  const done = board.rows.filter((row) => row.status === 'done').length;
  const stuck = board.rows.filter((row) => isStuck(row, now, board)).length;
  const people = `${board.rows.length} participant${board.rows.length === 1 ? '' : 's'}`;
  element('#summary').textContent = `${people} · ${done} with their step done · ${stuck} stuck`;
  histogram(board);
}

function connect() {
  const status = element('#connection');
  const source = new EventSource('events');
  source.addEventListener('board', (event) => {
    snapshot = JSON.parse(/** @type {MessageEvent<string>} */ (event).data);
    if (!snapshot) return;
    clockOffset = snapshot.now - Date.now();
    status.textContent = '';
    document.body.dataset.updates = String(Number(document.body.dataset.updates ?? '0') + 1);
    render();
  });
  source.addEventListener('error', () => {
    status.textContent = 'Lost the room: reconnecting… (is `npm run room` still running?)';
  });
}

connect();
setInterval(render, 1000);
