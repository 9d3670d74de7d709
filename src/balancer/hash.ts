/**
 * MurmurHash3 x86_32 (Austin Appleby, public domain) over the UTF-16LE encoding
 * of a string, i.e. two UTF-16 code units per 32-bit block.
 *
 * Why our own: ring_hash needs a fast, well-mixed, non-cryptographic hash that is
 * identical in every process (so every client maps a key to the same host).
 * Node has none built in (`node:crypto` hashes are slow per call and allocate), a
 * dependency for 30 lines is not worth it, and FNV-1a mixes short, similar inputs
 * such as `id#1`, `id#2` poorly (its last byte only reaches the low bits), which
 * clusters virtual nodes. Murmur3's final avalanche fixes that. Hashing code units
 * instead of UTF-8 bytes avoids an encode step and is still a well-defined byte
 * string (UTF-16LE), so the values can be checked against any Murmur3
 * implementation. O(length), no allocation.
 */
export function murmur3(key: string, seed = 0): number {
  const len = key.length;
  let h = seed >>> 0;
  let i = 0;
  const blocks = len & ~1;
  for (; i < blocks; i += 2) {
    let k = (key.charCodeAt(i) & 0xffff) | ((key.charCodeAt(i + 1) & 0xffff) << 16);
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  if (i < len) {
    // Two tail bytes (one code unit).
    let k = key.charCodeAt(i) & 0xffff;
    k = Math.imul(k, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    h ^= k;
  }
  h ^= len * 2; // length in bytes
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}
