// `mnq compare <float.onnx> <int8.onnx> --images DIR [--json] [--html report.html]`
import * as fs from 'fs';
import * as path from 'path';
import { compare, formatCompare, compareHtml } from '../calibrate/compare';
import { writeFileAtomic } from '../onnx/writer';
import { parseArgs, reportUsageError, UsageError } from './args';
import { checkInstalled } from '../optional-dependencies';

export const summary = 'int8 vs float: top-1/top-5, agreement, logits and per-layer SQNR (text, JSON or HTML)';

const USAGE = `usage: mnq compare <float.onnx> <int8.onnx> --images DIR [options]

  --images DIR        images; top-1 / top-5 need labels: an ImageNet wnid in each file name
  --limit N           use the first N images only
  --preprocess P      tf | torch | raw | paddle | JSON (default: the int8 model's metadata)
  --no-layers         skip the per-layer table (faster)
  --no-mnq            do not run the int8 model through mnq
  --json              print the result as JSON
  --html FILE         also write an offline HTML report: per-layer SQNR chart, flipped images
  --force             compare even when the float model is not the one the int8 file records as its
                      source (mnq calibrate writes its sha256); overwrite the HTML file
  -h, --help          this help`;

const FLAGS = {
  images: { type: 'string' }, limit: { type: 'string' }, preprocess: { type: 'string' }, html: { type: 'string' },
  json: { type: 'boolean' }, 'no-layers': { type: 'boolean' }, 'no-mnq': { type: 'boolean' }, force: { type: 'boolean' },
} as const;

/** `mnq compare ...` as typed (arguments with spaces or quotes quoted), for the report. */
function commandLine(argv: string[]): string {
  return ['mnq', 'compare', ...argv].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
}

export async function run(argv: string[]): Promise<number> {
  let args: ReturnType<typeof parseArgs<typeof FLAGS>>, images: string, limit: number | undefined;
  try {
    args = parseArgs(argv, FLAGS);
    if (args.help) { console.log(USAGE); return 0; }
    checkInstalled(['onnxruntime-node']);
    if (args.positional.length !== 2) throw new UsageError(`need a float model and an int8 model, got ${args.positional.length} file(s)`);
    images = args.required('images', '--images DIR is required');
    limit = args.int('limit', { min: 1 });
  } catch (e) {
    return reportUsageError('compare', e, USAGE);
  }
  const html = args.string('html');
  if (html && fs.existsSync(html) && !args.bool('force')) {
    console.error(`mnq compare: '${html}' exists: use --force to overwrite it`);
    return 1;
  }
  const json = args.bool('json');
  const r = await compare(args.positional[0], args.positional[1], {
    images, limit, preprocess: args.string('preprocess'),
    layers: !args.bool('no-layers'), mnq: !args.bool('no-mnq'),
    onWarning: (m) => { if (!json) console.error(`warning: ${m}`); }, progress: !json,
    force: args.bool('force'), thumbnails: !!html, command: commandLine(argv),
  });
  if (html) {
    const title = `int8 vs float: ${path.basename(args.positional[1])} vs ${path.basename(args.positional[0])}`;
    writeFileAtomic(html, Buffer.from(compareHtml(r, title), 'utf8'));
  }
  if (json) console.log(JSON.stringify(r, (_k, v) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : v), 2));
  else {
    console.log(formatCompare(r));
    if (html) console.log(`\nwrote ${html}`);
  }
  return 0;
}
