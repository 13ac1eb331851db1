// Medians and their spread; every figure in the report is a median with min..max.

export function median(values) {
  const sorted = values.filter((value) => Number.isFinite(value)).sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** { median, min, max, count } of the finite values. */
export function summarize(values) {
  const finite = values.filter((value) => Number.isFinite(value));
  return {
    median: median(finite),
    min: finite.length === 0 ? Number.NaN : Math.min(...finite),
    max: finite.length === 0 ? Number.NaN : Math.max(...finite),
    count: finite.length,
  };
}

/** "123.4 (120.1..130.2)"; a single run prints just the value. */
export function formatSummary(summary, digits = 1) {
  if (!Number.isFinite(summary.median)) return 'n/a';
  const value = summary.median.toFixed(digits);
  if (summary.count <= 1) return value;
  return `${value} (${summary.min.toFixed(digits)}..${summary.max.toFixed(digits)})`;
}

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** "64MiB", "1GiB", "1.5GiB", "100MB" (decimal), or a plain byte count. */
export function parseSize(text) {
  const match = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|kB|MB|GB)?$/i.exec(text.trim());
  if (match === null) throw new Error(`invalid size "${text}": use e.g. 64MiB, 1GiB or 4GiB`);
  const unit = (match[2] ?? 'B').toLowerCase();
  const factor = { b: 1, kib: 1024, mib: MiB, gib: GiB, kb: 1e3, mb: 1e6, gb: 1e9 }[unit];
  return Math.round(Number(match[1]) * factor);
}

export function formatSize(bytes) {
  if (bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes % MiB === 0) return `${bytes / MiB} MiB`;
  return `${(bytes / MiB).toFixed(1)} MiB`;
}

/** A Markdown table from a header row and rows of cells. */
export function markdownTable(header, rows) {
  const lines = [`| ${header.join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}
