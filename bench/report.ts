/**
 * What the bench found: every figure as it is measured (printed at once, kept for results.json), the targets
 * checked against them, sections skipped with the reason, and markdown tables for the summary at the end.
 */
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem } from 'node:os';

export interface Figure {
  section: string;
  name: string;
  value: number;
  unit: string;
}

export interface TargetCheck {
  section: string;
  /** What is measured, e.g. `typical pod, c=16: throughput vs baseline`. */
  figure: string;
  value: number;
  unit: string;
  /** e.g. `≥0.5× baseline`. */
  target: string;
  met: boolean;
}

export interface Table {
  title: string;
  header: string[];
  rows: string[][];
  notes: string[];
}

export class Report {
  readonly figures: Figure[] = [];
  readonly targets: TargetCheck[] = [];
  readonly tables: Table[] = [];
  readonly skipped: { section: string; reason: string }[] = [];
  /** Checks whose failure fails the bench run (the memory growth check). */
  readonly failures: string[] = [];
  readonly details: Record<string, unknown> = {};
  readonly startedAt = new Date();

  section(title: string): void {
    console.log(`\n== ${title} ==`);
  }

  figure(section: string, name: string, value: number, unit: string): number {
    this.figures.push({ section, name, value, unit });
    console.log(`  ${name}: ${formatNumber(value)} ${unit}`);
    return value;
  }

  /** Records a target; a missed one is printed as `MISSED target <target>`. */
  target(check: Omit<TargetCheck, 'met'>, met: boolean): boolean {
    this.targets.push({ ...check, met });
    const verdict = met ? `met target ${check.target}` : `MISSED target ${check.target}`;
    console.log(`  ${check.figure}: ${formatNumber(check.value)} ${check.unit} — ${verdict}`);
    return met;
  }

  fail(message: string): void {
    this.failures.push(message);
    console.log(`  FAILED: ${message}`);
  }

  skip(section: string, reason: string): void {
    this.skipped.push({ section, reason });
    console.log(`  skipped: ${reason}`);
  }

  note(message: string): void {
    console.log(`  ${message}`);
  }

  table(table: Table): void {
    this.tables.push(table);
  }

  /** The summary: every table, then the targets, as markdown. */
  markdown(): string {
    const parts: string[] = [];
    for (const table of this.tables) {
      parts.push(`### ${table.title}`, '', ...markdownTable(table.header, table.rows));
      if (table.notes.length > 0) parts.push('', ...table.notes);
      parts.push('');
    }
    if (this.targets.length > 0) {
      parts.push(
        '### Targets',
        '',
        ...markdownTable(
          ['Figure', 'Value', 'Target', 'Result'],
          this.targets.map((t) => [
            t.figure,
            `${formatNumber(t.value)} ${t.unit}`,
            t.target,
            t.met ? 'met' : '**MISSED**',
          ]),
        ),
        '',
      );
    }
    for (const { section, reason } of this.skipped) parts.push(`- ${section}: skipped: ${reason}`);
    for (const failure of this.failures) parts.push(`- **FAILED**: ${failure}`);
    return parts.join('\n');
  }

  async writeJson(path: string, settings: Record<string, unknown>): Promise<void> {
    const cpuList = cpus();
    const result = {
      date: this.startedAt.toISOString(),
      finished: new Date().toISOString(),
      node: process.version,
      machine: {
        cpus: cpuList.length,
        model: cpuList[0]?.model ?? 'unknown',
        memoryBytes: totalmem(),
        platform: `${process.platform} ${process.arch}`,
      },
      settings,
      figures: this.figures,
      targets: this.targets,
      skipped: this.skipped,
      failures: this.failures,
      details: this.details,
    };
    await writeFile(path, `${JSON.stringify(result, null, 2)}\n`);
  }
}

export function markdownTable(header: string[], rows: string[][]): string[] {
  return [
    `| ${header.join(' | ')} |`,
    `|${header.map(() => ' --- ').join('|')}|`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ];
}

/** Three significant digits, at least; no exponent notation; `n/a` for a missing value. */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return 'n/a';
  if (Number.isInteger(value)) return String(value);
  const magnitude = Math.abs(value);
  if (magnitude >= 100) return Math.round(value).toString();
  if (magnitude >= 10) return value.toFixed(1);
  if (magnitude >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

export function formatRatio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}×` : 'n/a';
}
