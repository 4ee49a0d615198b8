import { hmacHex } from '../secrets.ts';

/** A stable, keyed, one-way reference to a customer: the same customer always maps to the same value. */
export const customerRef = (key: Buffer, customerId: string) => `psn_${hmacHex(key, `customer:${customerId}`).slice(0, 40)}`;
