import type { VerifyReport } from '@wal/verify';

/** Exit statuses of `wal verify`: sound; problems found (each listed); could not verify. */
export const EXIT_SOUND = 0;
export const EXIT_PROBLEMS = 2;
export const EXIT_FAILED = 1;

/**
 * The text report: a summary line, then one line per missing range and per problem, each naming
 * the file and the LSN, in the words of the JSON report's fields.
 */
export function verifyReportText(report: VerifyReport, program: string): string {
  const lines: string[] = [];
  const range =
    report.firstFile === undefined ? 'no file' : `files ${report.firstFile} to ${report.lastFile}`;
  lines.push(
    `${program}: checked ${report.filesChecked} files (${report.bytesChecked} bytes), ${range}, timeline ${report.timeline}, segment size ${report.segmentSize}`,
  );
  for (const gap of report.missing) {
    lines.push(
      `${program}: missing: ${gap.firstFile} to ${gap.lastFile} (WAL ${gap.startLsn} to ${gap.endLsn})`,
    );
  }
  for (const problem of report.problems) {
    const where = [problem.file, problem.lsn === undefined ? undefined : `at ${problem.lsn}`]
      .filter((part) => part !== undefined)
      .join(' ');
    lines.push(`${program}: ${problem.kind}: ${where === '' ? '' : `${where}: `}${problem.message}`);
  }
  const count = report.problems.length + report.missing.length;
  lines.push(
    report.sound
      ? `${program}: the archive is sound`
      : `${program}: ${count} problem${count === 1 ? '' : 's'} found`,
  );
  return `${lines.join('\n')}\n`;
}

/** The JSON report: one document with the text report's fields. */
export function verifyReportJson(report: VerifyReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}
