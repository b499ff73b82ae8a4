/**
 * Frames on the wire: one ZeroMQ frame carries a batch of messages,
 * `[PROTOCOL_VERSION, [message, ...]]`, encoded with msgpack. Decoding never
 * throws: a frame that is not valid yields a reason, and invalid messages
 * inside a valid frame are dropped one by one.
 * @internal
 */
import { Packr } from 'msgpackr';
import { PROTOCOL_VERSION, invalidReason, type Message } from './messages';

// plain msgpack maps: records (useRecords) would repeat each message's key
// list in every frame anyway (no structures are shared between peers) and
// cost more to write and read
const packr = new Packr({ useRecords: false, moreTypes: false, bundleStrings: false });

/** Encodes a batch of messages into one frame. */
export function encodeFrame(msgs: readonly Message[]): Buffer {
  return packr.pack([PROTOCOL_VERSION, msgs]);
}

/**
 * zeromq.js sends a buffer of more than 128 bytes without copying it, and
 * then must release it on the main thread: its I/O thread wakes the main
 * thread once more for every such message, which costs a sync call ~10 µs
 * of CPU and a context switch on each side. Frames up to CHUNKED_MAX bytes
 * therefore travel as copied parts of at most CHUNK bytes, behind a
 * one-byte marker part (0xc1, a byte msgpack never uses, so no frame
 * starts with it); larger frames go as one part, where not copying pays.
 */
const CHUNK = 128;
/** Frames up to this size go in copied chunks (see CHUNK). */
export const CHUNKED_MAX = 1024;
const CHUNK_MARK = Buffer.from([0xc1]);

/** The ZeroMQ message parts that carry `frame` (see CHUNK). */
export function frameParts(frame: Buffer): Buffer[] {
  if (frame.length <= CHUNK || frame.length > CHUNKED_MAX) return [frame];
  const parts: Buffer[] = [CHUNK_MARK];
  for (let at = 0; at < frame.length; at += CHUNK) parts.push(frame.subarray(at, at + CHUNK));
  return parts;
}

/**
 * The frame that message parts carry, and the parts after it (a bulk
 * attachment): chunked parts (see frameParts) are joined again.
 */
export function partsFrame(parts: readonly Buffer[]): { frame: Buffer | undefined; rest: Buffer[] } {
  const first = parts[0];
  if (first !== undefined && first.length === 1 && first[0] === 0xc1) return { frame: Buffer.concat(parts.slice(1)), rest: [] };
  return { frame: first, rest: parts.slice(1) };
}

/** A decoded frame: the valid messages and why others were dropped. */
export interface DecodedFrame {
  msgs: Message[];
  dropped: string[];
}

/** Decodes a frame; never throws. */
export function decodeFrame(buf: Uint8Array): DecodedFrame {
  let root: unknown;
  try {
    root = packr.unpack(buf);
  } catch (e) {
    return { msgs: [], dropped: [`undecodable frame of ${buf.length} bytes (${(e as Error).message})`] };
  }
  if (!Array.isArray(root) || root.length < 2) return { msgs: [], dropped: ['frame is not [version, messages]'] };
  if (root[0] !== PROTOCOL_VERSION) return { msgs: [], dropped: [`protocol version ${String(root[0])} (expected ${PROTOCOL_VERSION})`] };
  const list: unknown = root[1];
  if (!Array.isArray(list)) return { msgs: [], dropped: ['frame has no message list'] };
  const msgs: Message[] = [];
  const dropped: string[] = [];
  for (const m of list) {
    const why = invalidReason(m);
    if (why) dropped.push(why);
    else msgs.push(m as Message);
  }
  return { msgs, dropped };
}
