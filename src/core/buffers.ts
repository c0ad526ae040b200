/**
 * Bytes kept for long (cache entries, cached data keys) get memory of their own. Node serves a
 * small Buffer.from() (under 4 KiB) as a slice of a shared 8 KiB slab, and a slice keeps its whole
 * slab alive: an entry cached between other allocations (the SDK's, the request's) pins a slab
 * that is mostly garbage. Copies made here cost their own length plus an ArrayBuffer's header.
 */
export function ownedBytes(data: string | Uint8Array): Buffer {
  const bytes = typeof data === 'string' ? Buffer.byteLength(data, 'utf8') : data.length;
  const owned = Buffer.allocUnsafeSlow(bytes);
  if (typeof data === 'string') owned.write(data, 'utf8');
  else owned.set(data);
  return owned;
}
