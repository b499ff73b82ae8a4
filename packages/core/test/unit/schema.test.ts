import { S } from '../../src/internal/protocol/schema';
import { MT, invalidReason, ResourcesS } from '../../src/internal/protocol/messages';
import { decodeFrame, encodeFrame } from '../../src/internal/protocol/codec';
import type { Message } from '../../src/internal/protocol/messages';

const lease = (resources: unknown, extra: Record<string, unknown> = {}): unknown => ({
  t: MT.RequestLease,
  leaseReqId: 'r1',
  jobId: '01000000',
  resources,
  name: 'f',
  ...extra,
});

describe('wire schemas', () => {
  test('resource amounts must be finite and non-negative', () => {
    expect(ResourcesS({ CPU: 1, GPU: 0.5, custom: 0 })).toBe(true);
    expect(ResourcesS({ CPU: -1 })).toBe(false);
    expect(ResourcesS({ CPU: Infinity })).toBe(false);
    expect(ResourcesS({ CPU: NaN })).toBe(false);
    expect(ResourcesS({ CPU: '1' })).toBe(false);
    expect(invalidReason(lease({ CPU: 1 }))).toBeUndefined();
    expect(invalidReason(lease({ CPU: -0.5 }))).toMatch(/do not match its schema/);
    expect(invalidReason(lease({ CPU: 1 }, { placement: { CPU: -1 } }))).toMatch(/do not match its schema/);
  });

  test('optional fields may be absent but not null', () => {
    const opt = S.optional(S.str);
    expect(opt(undefined)).toBe(true);
    expect(opt('x')).toBe(true);
    expect(opt(null)).toBe(false);
    expect(invalidReason(lease({ CPU: 1 }, { actorId: null }))).toMatch(/do not match its schema/);
    expect(invalidReason(lease({ CPU: 1 }, { env: null }))).toMatch(/do not match its schema/);
  });

  test('a null optional field is dropped at decoding with a reason, and valid messages in the frame still arrive', () => {
    const good = lease({ CPU: 1 }) as Message;
    const bad = lease({ CPU: 1 }, { placement: null }) as Message;
    const { msgs, dropped } = decodeFrame(encodeFrame([bad, good]));
    expect(msgs).toHaveLength(1);
    expect(dropped).toEqual([expect.stringMatching(/type 41/)]);
  });

  test('absent optional fields survive the round trip', () => {
    const m = lease({ CPU: 1 }, { actorId: undefined }) as Message;
    expect(decodeFrame(encodeFrame([m])).msgs).toHaveLength(1);
  });

  test('object locations need non-negative sizes and offsets', () => {
    const reply = (loc: unknown): unknown => ({ t: MT.ObjectReply, reqId: 1, id: 'o', st: 0, val: { loc } });
    expect(invalidReason(reply({ node: 'n', off: 64, size: 10 }))).toBeUndefined();
    expect(invalidReason(reply({ node: 'n', off: -64, size: 10 }))).toMatch(/schema/);
    expect(invalidReason(reply({ node: 'n', size: -1, spill: '/x' }))).toMatch(/schema/);
  });
});
