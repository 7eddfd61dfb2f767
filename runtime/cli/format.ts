/* Text output formats that must match runc byte for byte. */

/**
 * A table laid out like Go's text/tabwriter with minwidth 12, tabwidth 1, padding 3 and ' ' as
 * padding (runc list): every column but the last is padded to max(width + 3, 12).
 */
export function tabwriter(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      if (i === row.length - 1) return;
      widths[i] = Math.max(widths[i] ?? 0, Math.max(cell.length + 3, 12));
    });
  }
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 12))).join('') + '\n').join('');
}
