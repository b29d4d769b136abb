import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { BenchReport, BenchSettings } from './report.ts';
import { DEFAULT_PARTS, renderMarkdown } from './report.ts';

/**
 * What tells a run's files apart from a full run's: "-quick" for --quick (or --scaling-quick),
 * "-<parts>" when the parts are not the default set ("-pipeline", "-quick-raw-train", "-scaling"),
 * "-compression" after "-scaling" for --scaling-compression, "-methods" for --scaling-methods;
 * "-one-profile" last for --one-profile;
 * "" for a full run of the default parts.
 */
export function runKind(
  settings: Pick<BenchSettings, 'quick' | 'parts' | 'oneProfile'> & {
    scaling?: Pick<BenchSettings['scaling'], 'quick' | 'compressionOnly' | 'methodsOnly'>;
  },
): string {
  const { parts } = settings;
  const partial = parts.length !== DEFAULT_PARTS.length || DEFAULT_PARTS.some((p) => !parts.includes(p));
  const scaling = parts.includes('scaling') ? settings.scaling : undefined;
  const quick = settings.quick || scaling?.quick === true;
  const only =
    scaling?.compressionOnly === true ? '-compression' : scaling?.methodsOnly === true ? '-methods' : '';
  const profile = settings.oneProfile === true ? '-one-profile' : '';
  return `${quick ? '-quick' : ''}${partial ? `-${parts.join('-')}` : ''}${only}${profile}`;
}

/**
 * Writes DIR/<name>.json and DIR/<name>.md, and copies them to DIR/latest<kind>.* (runKind: a
 * smoke check or a run of some parts never replaces the last full figures in DIR/latest.*), and
 * each attachment as DIR/<name><suffix>. Returns the paths of the report.
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
  const latest = `latest${runKind(report.settings)}`;
  await copyFile(json, join(dir, `${latest}.json`));
  await copyFile(md, join(dir, `${latest}.md`));
  return { json, md };
}
