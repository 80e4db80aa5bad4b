// The MessageSink of a large batch (netlink/batch.ts): its messages built one after another into one
// growing buffer, which is the datagram once they are all in it.
import type { MessageSink } from '../../kernel/netlink-codec.ts';

/**
 * One buffer for a batch's messages instead of a buffer of its own per message joined at the end (at
 * 50,000 pods 14,000 buffers of 512 bytes with their objects, then a 7 MB join, at the agent's memory
 * peak).
 */
export class GrowingSink implements MessageSink {
  /** The bytes; replaced by a larger buffer as it grows, so take a view only when all is written. */
  buf: Buffer;
  /** Bytes written (or reserved by the message being built). */
  used = 0;

  constructor(initialSize = 4096) {
    // A buffer of its own (not a slice of Node's pool), so that growing can hand its memory over.
    this.buf = Buffer.allocUnsafeSlow(Math.max(initialSize, 64));
  }

  /** Makes room for `need` bytes in all, keeping what is written. */
  grow(need: number): Buffer {
    if (need > this.buf.length) {
      const size = Math.max(need, this.buf.length * 2);
      // ArrayBuffer.transfer (ES2024) frees the old memory at once instead of leaving it garbage (at
      // 50,000 pods 8 MB of outgrown buffers until the next collection, at the memory peak).
      const old = this.buf.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
      if (typeof old.transfer === 'function') this.buf = Buffer.from(old.transfer(size));
      else {
        const bigger = Buffer.allocUnsafeSlow(size);
        this.buf.copy(bigger, 0, 0, this.used);
        this.buf = bigger;
      }
    }
    return this.buf;
  }

  /** Gives the memory back now (views of it read as empty after): the batch is sent, and a
   * rebuild's 7 MB would otherwise wait for a collection, through the drift check that follows it. */
  free(): void {
    const old = this.buf.buffer as ArrayBuffer & { transfer?: (length: number) => ArrayBuffer };
    if (typeof old.transfer === 'function') old.transfer(0);
    this.buf = Buffer.alloc(0);
    this.used = 0;
  }

  /** What is written, as a view of the current buffer. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }
}
