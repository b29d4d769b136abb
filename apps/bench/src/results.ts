import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport } from './report.ts';
import { renderMarkdown } from './report.ts';

/**
 * Writes DIR/<name>.json and DIR/<name>.md, and copies them to DIR/latest.* (DIR/latest-quick.*
 * for --quick runs, so a smoke check never replaces the last full figures), and each attachment as
 * DIR/<name><suffix>. Returns the paths of the report.
 */
export async function writeResults(
  dir: string,
  report: BenchReport,
  attachments: readonly { suffix: string; data: unknown }[] = [],
): Promise<{ json: string; md: string }> {
  await mkdir(dir, { recursive: true });
  for (const a of attachments)
    await writeFile(join(dir, `${report.name}${a.suffix}`), JSON.stringify(a.data));
  const json = join(dir, `${report.name}.json`);
  const md = join(dir, `${report.name}.md`);
  await writeFile(json, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(md, renderMarkdown(report));
  const latest = report.settings.quick ? 'latest-quick' : 'latest';
  await copyFile(json, join(dir, `${latest}.json`));
  await copyFile(md, join(dir, `${latest}.md`));
  return { json, md };
}
