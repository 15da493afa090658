/**
 * CRC-32 (IEEE 802.3, the polynomial zlib, PNG and GitHub's token checksums use), table-driven.
 * Our own because zlib.crc32 exists only from Node 22.2 and the local stack runs Node 20. A
 * checksum, not a MAC: it lets a secret scanner (and our own parser) tell a real key from noise
 * without a request; it proves nothing about who made the key.
 */
const TABLE = new Uint32Array(256);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c >>> 0;
}

export function crc32(data: Uint8Array | string): number {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  let crc = 0xffffffff;
  for (const byte of bytes) crc = TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The CRC-32 of `text` as 4 big-endian bytes in base64url: 6 characters. */
export function crc32Base64url(text: string): string {
  const out = Buffer.alloc(4);
  out.writeUInt32BE(crc32(text));
  return out.toString('base64url');
}
