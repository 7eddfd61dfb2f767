/*
 * docker's progress display for pull and push on a terminal: one line per layer, redrawn in place
 * as its state and byte count change:
 *
 *   3f4d90098f5b: Downloading [=========>                                         ]  1.84MB/9.63MB
 *   a1b2c3d4e5f6: Pull complete
 *
 * A line is redrawn by moving the cursor up to it (ESC [ n A), clearing it (ESC [ 2K) and moving
 * back down (ESC [ n B), as docker's jsonmessage does; lines are only ever added at the bottom, so
 * what scrolled off stays as it was last drawn. Off a terminal the callers print one line per
 * state change instead (the non-TTY form), which is what scripts and the tests read.
 */
import { bytesDecimal } from './format';

const BAR_WIDTH = 50;

/** docker's `[====>    ]  1.2MB/3.4MB`; just the count when the total is unknown. */
export function progressBar(current: number, total: number): string {
  if (total <= 0) return bytesDecimal(current);
  const filled = Math.min(BAR_WIDTH, Math.floor((Math.min(current, total) * BAR_WIDTH) / total));
  const bar = filled === 0 ? ' '.repeat(BAR_WIDTH) : `${'='.repeat(filled - 1)}>${' '.repeat(BAR_WIDTH - filled)}`;
  return `[${bar}] ${bytesDecimal(current).padStart(8)}/${bytesDecimal(total)}`;
}

/** Lines keyed by id, drawn with `write`; a new id adds a line at the bottom. */
export class TtyLines {
  private readonly order: string[] = [];
  private readonly text = new Map<string, string>();

  constructor(private readonly write: (s: string) => void) {}

  /** Set the line of `id` to `line`, drawing only when it changed. */
  set(id: string, line: string): void {
    const old = this.text.get(id);
    if (old === line) return;
    this.text.set(id, line);
    if (old === undefined) {
      this.order.push(id);
      this.write(`${line}\n`);
      return;
    }
    const up = this.order.length - this.order.indexOf(id);
    this.write(`\x1b[${up}A\r\x1b[2K${line}\r\x1b[${up}B`);
  }
}
