// Test inputs: real images, preprocessed for a model as the shared README says
// (TF models: central 87.5% crop, bilinear resize, (p - 127.5) / 127.5;
// torchvision models: shorter side to 256, centre crop, ImageNet mean / std).
import * as fs from 'fs';
import * as path from 'path';
import sharp from 'sharp';
import { sharedPath } from './shared';

export type Preprocess = 'tf' | 'torch';

/** The preprocessing of a shared model, from its file name. */
export function preprocessFor(modelPath: string): Preprocess {
  const f = path.basename(modelPath);
  return f.startsWith('mobilenetv2-12') || f.includes('.random.') ? 'torch' : 'tf';
}

/** A few real test images: the coral ones, then ImageNet eval images (for measuring, never calibration). */
export function testImages(count: number): string[] {
  const out: string[] = [];
  const coral = sharedPath('data', 'coral');
  if (coral) {
    for (const f of ['cat.png', 'grace_hopper.png', 'parrot.jpg', 'hot_dog.jpg', 'bird.png', 'dragonfly.png', 'owl.jpg', 'sunflower.png']) {
      if (fs.existsSync(path.join(coral, f))) out.push(path.join(coral, f));
    }
  }
  const evalDir = sharedPath('data', 'imagenet-sample', 'eval');
  if (evalDir && out.length < count) {
    const files = fs.readdirSync(evalDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort();
    // spread over the classes
    const step = Math.max(1, Math.floor(files.length / Math.max(1, count - out.length)));
    for (let i = 0; i < files.length && out.length < count; i += step) out.push(path.join(evalDir, files[i]));
  }
  return out.slice(0, count);
}

/** One image as float NCHW [1][3][size][size]. */
export async function loadImage(file: string, size: number, pp: Preprocess): Promise<Float32Array> {
  const img = sharp(file).removeAlpha().toColourspace('srgb');
  const meta = await sharp(file).metadata();
  const W = meta.width ?? size, H = meta.height ?? size;
  let pipeline: sharp.Sharp;
  if (pp === 'tf') {
    const cw = Math.round(W * 0.875), ch = Math.round(H * 0.875);
    pipeline = img.extract({ left: Math.floor((W - cw) / 2), top: Math.floor((H - ch) / 2), width: cw, height: ch })
      .resize(size, size, { fit: 'fill', kernel: 'linear' } as sharp.ResizeOptions);
  } else {
    const short = Math.round(size * 256 / 224);
    pipeline = img.resize(W < H ? short : null, W < H ? null : short, { kernel: 'linear' } as sharp.ResizeOptions)
      .resize(size, size, { fit: 'cover', position: 'centre' });
  }
  const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
  if (info.channels !== 3 || info.width !== size || info.height !== size) throw new Error(`${file}: decoded to ${info.width}x${info.height}x${info.channels}`);
  const out = new Float32Array(3 * size * size);
  const mean = [0.485, 0.456, 0.406], std = [0.229, 0.224, 0.225];
  for (let p = 0; p < size * size; p++) for (let c = 0; c < 3; c++) {
    const v = data[p * 3 + c];
    out[c * size * size + p] = pp === 'tf' ? (v - 127.5) / 127.5 : (v / 255 - mean[c]) / std[c];
  }
  return out;
}

/** `count` images stacked into one NCHW batch. */
export async function loadBatch(files: string[], size: number, pp: Preprocess): Promise<Float32Array> {
  const one = 3 * size * size;
  const out = new Float32Array(files.length * one);
  for (let i = 0; i < files.length; i++) out.set(await loadImage(files[i], size, pp), i * one);
  return out;
}
