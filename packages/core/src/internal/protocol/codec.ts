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
