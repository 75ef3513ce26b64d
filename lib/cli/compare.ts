// `mnq compare <float.onnx> <int8.onnx> --images DIR [--json] [--html report.html]`
import * as fs from 'fs';
import * as path from 'path';
import { compare, formatCompare, compareHtml } from '../calibrate/compare';
import { parseArgs, ParsedArgs } from './calibrate';

export const summary = 'int8 vs float: top-1/top-5, agreement, logits and per-layer SQNR (text, JSON or HTML)';

const USAGE = `usage: mnq compare <float.onnx> <int8.onnx> --images DIR [options]

  --images DIR        labelled images (ImageNet wnid in each file name)
  --limit N           use the first N images only
  --preprocess P      tf | torch | raw | paddle | JSON (default: the int8 model's metadata)
  --no-layers         skip the per-layer table (faster)
  --no-mnq            do not run the int8 model through mnq
  --json              print the result as JSON
  --html FILE         also write an offline HTML report with a per-layer SQNR chart
  --force             overwrite the HTML file
  -h, --help          this help`;

export async function run(argv: string[]): Promise<number> {
  if (argv.includes('-h') || argv.includes('--help')) { console.log(USAGE); return 0; }
  let args: ParsedArgs;
  try {
    args = parseArgs(argv, ['images', 'limit', 'preprocess', 'html'], ['json', 'no-layers', 'no-mnq', 'force']);
  } catch (e) {
    console.error(`mnq compare: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const f = (k: string) => args.flags.get(k)?.[0];
  if (args.positional.length !== 2 || !f('images')) {
    console.error(`mnq compare: need a float model, an int8 model and --images DIR\n\n${USAGE}`);
    return 2;
  }
  const html = f('html');
  if (html && fs.existsSync(html) && !args.flags.has('force')) {
    console.error(`mnq compare: '${html}' exists: use --force to overwrite it`);
    return 1;
  }
  let limit: number | undefined;
  if (f('limit') !== undefined) {
    limit = Number(f('limit'));
    if (!Number.isInteger(limit) || limit <= 0) { console.error(`mnq compare: --limit must be a positive integer`); return 2; }
  }
  const json = args.flags.has('json');
  const r = await compare(args.positional[0], args.positional[1], {
    images: f('images')!, limit, preprocess: f('preprocess'),
    layers: !args.flags.has('no-layers'), mnq: !args.flags.has('no-mnq'),
    onWarning: (m) => { if (!json) console.error(`warning: ${m}`); }, progress: !json,
  });
  if (html) {
    const title = `int8 vs float: ${path.basename(args.positional[1])} vs ${path.basename(args.positional[0])}`;
    const tmp = `${html}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, compareHtml(r, title));
    fs.renameSync(tmp, html);
  }
  if (json) console.log(JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2));
  else {
    console.log(formatCompare(r));
    if (html) console.log(`\nwrote ${html}`);
  }
  return 0;
}
