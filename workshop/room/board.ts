// The room's board: one row per participant, built from their reports.
// The server keeps one Board; every browser gets its snapshot (server.ts).
import { LIMITS, type CheckOutcome, type Report } from './protocol.js';

export type RowStatus = 'joined' | 'done' | 'failing';

export interface Row {
  id: string;
  name: string;
  machine: string;
  /** The step last checked (0: joined, nothing checked yet). */
  step: number;
  status: RowStatus;
  checks: CheckOutcome[];
  passed: number;
  failed: number;
  /** The first failing check, "[step 3] the command is PID 1". */
  failing?: string;
  /** When the step or a check's result last changed (ms since the epoch). */
  changedAt: number;
  /** When the last report came, changed or not. */
  reportedAt: number;
  /** Failing, and nothing changed for longer than the room's stuck time. */
  stuck: boolean;
}

export interface Snapshot {
  /** The server's clock when the snapshot was taken (browsers correct their own by it). */
  now: number;
  stuckAfterMs: number;
  steps: { number: number; title: string }[];
  rows: Row[];
}

/** What applying a report did. */
export type Applied = 'new' | 'changed' | 'same' | 'full';

type StoredRow = Omit<Row, 'stuck'>;

const STATUS_ORDER: Record<RowStatus, number> = { failing: 0, done: 1, joined: 2 };

/** What counts as a change: the step, and which checks pass. */
function signature(report: Report): string {
  return JSON.stringify([report.step, report.checks.map((check) => [check.step, check.name, check.passed])]);
}

export class Board {
  private readonly rows = new Map<string, StoredRow & { signature: string }>();

  constructor(
    private readonly steps: { number: number; title: string }[],
    readonly stuckAfterMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get size(): number {
    return this.rows.size;
  }

  apply(report: Report): Applied {
    const now = this.now();
    const previous = this.rows.get(report.id);
    if (!previous && this.rows.size >= LIMITS.participants) return 'full';
    const failures = report.checks.filter((check) => !check.passed);
    const firstFailure = failures[0];
    const newSignature = signature(report);
    // A "joined" hello after real results (a second `npm run join`) keeps the results.
    if (previous && report.step === 0 && previous.step !== 0) {
      const renamed = previous.name !== report.name || previous.machine !== report.machine;
      Object.assign(previous, { name: report.name, machine: report.machine, reportedAt: now });
      return renamed ? 'changed' : 'same';
    }
    const changed = previous?.signature !== newSignature;
    const row = {
      id: report.id,
      name: report.name,
      machine: report.machine,
      step: report.step,
      status: (report.step === 0 ? 'joined' : failures.length === 0 ? 'done' : 'failing') as RowStatus,
      checks: report.checks,
      passed: report.checks.length - failures.length,
      failed: failures.length,
      ...(firstFailure ? { failing: `[step ${firstFailure.step}] ${firstFailure.name}` } : {}),
      changedAt: changed || !previous ? now : previous.changedAt,
      reportedAt: now,
      signature: newSignature,
    };
    this.rows.set(report.id, row);
    if (!previous) return 'new';
    return changed || previous.name !== row.name || previous.machine !== row.machine ? 'changed' : 'same';
  }

  remove(id: string): boolean {
    return this.rows.delete(id);
  }

  name(id: string): string | undefined {
    return this.rows.get(id)?.name;
  }

  snapshot(): Snapshot {
    const now = this.now();
    const rows: Row[] = [...this.rows.values()].map(({ signature: _, ...row }) => ({
      ...row,
      stuck: row.status === 'failing' && now - row.changedAt > this.stuckAfterMs,
    }));
    // The ones who need help first, then the room from behind to ahead.
    rows.sort((a, b) => Number(b.stuck) - Number(a.stuck) || a.step - b.step || STATUS_ORDER[a.status] - STATUS_ORDER[b.status] || a.name.localeCompare(b.name));
    return { now, stuckAfterMs: this.stuckAfterMs, steps: this.steps, rows };
  }
}
