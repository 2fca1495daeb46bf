/** `mesh-injector check`'s human output: one ✓/✗ line per check, its details beneath, a hint under each problem. */
import type { CheckReport, CheckStatus } from './check-report.js';

const MARKS: Record<CheckStatus, string> = { ok: '✓', fail: '✗', warn: '‼', skip: '–' };

export function formatReport(report: CheckReport): string {
  const lines: string[] = ['mesh-injector check', '-------------------'];
  for (const check of report.checks) {
    lines.push(`${MARKS[check.status]} ${check.description} [${check.id}]`);
    for (const detail of check.details) lines.push(`    ${detail}`);
    if ((check.status === 'fail' || check.status === 'warn') && check.hint)
      lines.push(`    hint: ${check.hint}`);
  }
  const failed = report.checks.filter((check) => check.status === 'fail').length;
  const warned = report.checks.filter((check) => check.status === 'warn').length;
  lines.push(
    '',
    failed > 0
      ? `Status check results are ✗ (${failed} failed${warned > 0 ? `, ${warned} warnings` : ''})`
      : `Status check results are ✓${warned > 0 ? ` (${warned} warnings)` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
