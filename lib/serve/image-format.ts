// The image formats `mnq serve` accepts, told by their first bytes (whatever the Content-Type says): JPEG, PNG
// and WebP. Anything else is refused before it reaches the decoder, so a server never hands SVG, TIFF or other
// formats with larger attack surfaces to libvips.

export type ImageFormat = 'jpeg' | 'png' | 'webp';

/** The Content-Types of image bodies (octet-stream: told by the bytes). */
export const IMAGE_CONTENT_TYPES = ['image/jpeg', 'image/jpg', 'image/png', 'image/webp', 'application/octet-stream'];

const PNG = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** The format of an encoded image, or null when it is none of JPEG, PNG, WebP. */
export function imageFormat(b: Uint8Array): ImageFormat | null {
  if (b.length >= 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'jpeg';
  if (b.length >= 8 && PNG.every((v, i) => b[i] === v)) return 'png';
  const ascii = (from: number, to: number): string => String.fromCharCode(...b.subarray(from, to));
  if (b.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return null;
}

/** What a body that is not JPEG, PNG or WebP seems to be, for the error message. */
export function describeBytes(b: Uint8Array): string {
  if (b.length === 0) return 'an empty body';
  const ascii = String.fromCharCode(...b.subarray(0, 12));
  if (ascii.startsWith('GIF8')) return 'a GIF';
  if (ascii.startsWith('II*\0') || ascii.startsWith('MM\0*')) return 'a TIFF';
  if (ascii.startsWith('BM')) return 'a BMP';
  if (ascii.slice(4, 8) === 'ftyp') return 'an AVIF / HEIF';
  if (/^\s*(<\?xml|<svg)/i.test(ascii)) return 'SVG';
  if (/^\s*[{[]/.test(ascii)) return 'JSON';
  return `unrecognised bytes (${b.length} bytes starting ${Buffer.from(b.subarray(0, 4)).toString('hex')})`;
}
