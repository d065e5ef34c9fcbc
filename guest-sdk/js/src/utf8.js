// UTF-8 for engines without TextEncoder/TextDecoder (the SDK uses them when
// present).

const Encoder = globalThis.TextEncoder;
const Decoder = globalThis.TextDecoder;
const encoder = Encoder ? new Encoder() : null;
const decoder = Decoder ? new Decoder() : null;

/** `text` as UTF-8 bytes (lone surrogates become U+FFFD). */
export function encode(text) {
  if (encoder) return encoder.encode(text);
  const out = [];
  for (const ch of String(text)) {
    let cp = ch.codePointAt(0);
    if (cp >= 0xd800 && cp <= 0xdfff) cp = 0xfffd;
    if (cp < 0x80) out.push(cp);
    else if (cp < 0x800) out.push(0xc0 | (cp >> 6), 0x80 | (cp & 63));
    else if (cp < 0x10000) out.push(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
    else out.push(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 63), 0x80 | ((cp >> 6) & 63), 0x80 | (cp & 63));
  }
  return Uint8Array.from(out);
}

/**
 * `bytes` decoded as UTF-8, each maximal invalid subsequence replaced with
 * U+FFFD (the WHATWG decoder's rules, as TextDecoder does).
 */
export function decode(bytes) {
  if (decoder) return decoder.decode(bytes);
  let out = '';
  let cp = 0;
  let needed = 0;
  let seen = 0;
  let lower = 0x80;
  let upper = 0xbf;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (needed === 0) {
      if (b < 0x80) out += String.fromCharCode(b);
      else if (b >= 0xc2 && b <= 0xdf) [needed, cp] = [1, b & 0x1f];
      else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0;
        if (b === 0xed) upper = 0x9f;
        [needed, cp] = [2, b & 0x0f];
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90;
        if (b === 0xf4) upper = 0x8f;
        [needed, cp] = [3, b & 0x07];
      } else out += '\ufffd';
      continue;
    }
    if (b < lower || b > upper) {
      // Not a continuation here: the sequence so far is one error, and this
      // byte starts over.
      [cp, needed, seen, lower, upper] = [0, 0, 0, 0x80, 0xbf];
      out += '\ufffd';
      i--;
      continue;
    }
    [lower, upper] = [0x80, 0xbf];
    cp = (cp << 6) | (b & 0x3f);
    if (++seen === needed) {
      out += String.fromCodePoint(cp);
      [cp, needed, seen] = [0, 0, 0];
    }
  }
  if (needed !== 0) out += '\ufffd';
  return out;
}
