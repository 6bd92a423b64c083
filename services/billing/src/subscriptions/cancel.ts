// One cancel body on both cancel routes (POST /v1/subscriptions/{id}/cancel and PATCH
// /v1/subscriptions/{id}, contracts' CancelFields): the ways Lotus users say it, resolved to one intent.
//   type: turn_off_auto_renew | end_current_subscription_and_bill | end_current_subscription_and_dont_bill
//   turn_off_auto_renew: true                          (Lotus Python)
//   replace_immediately_type: end_current_subscription_* (Lotus Python)
//   revoke_access / bill_now                           (Lotus Node): revoke_access true = end now, billed
//     unless bill_now is false; revoke_access false = turn_off_auto_renew (bill_now true then: 400, as in
//     Lotus "bill_now true needs revoke_access true"); bill_now alone: true = end now and bill, false =
//     turn_off_auto_renew.
// Two ways that disagree are a 400 naming both fields; ways that agree are fine.
import type { CancelType } from '@meterline/contracts';
import { badRequest } from '../http/errors.ts';
import type { UpdateInput } from './service.ts';

export interface CancelOptions {
  type?: CancelType;
  turn_off_auto_renew?: boolean;
  replace_immediately_type?: string;
  revoke_access?: boolean;
  bill_now?: boolean;
}

/** The cancel intent of a body and the field(s) that said it, or null when it says none. */
export function cancelIntent(b: CancelOptions): CancelType | null {
  const said: { how: CancelType | 'change_subscription_plan'; by: string }[] = [];
  if (b.type !== undefined) said.push({ how: b.type, by: `type "${b.type}"` });
  if (b.turn_off_auto_renew === true) said.push({ how: 'turn_off_auto_renew', by: 'turn_off_auto_renew: true' });
  if (b.replace_immediately_type !== undefined)
    said.push({
      how: b.replace_immediately_type as CancelType | 'change_subscription_plan',
      by: `replace_immediately_type "${b.replace_immediately_type}"`,
    });
  if (b.revoke_access !== undefined || b.bill_now !== undefined) {
    const by = [
      ...(b.revoke_access !== undefined ? [`revoke_access: ${b.revoke_access}`] : []),
      ...(b.bill_now !== undefined ? [`bill_now: ${b.bill_now}`] : []),
    ].join(', ');
    if (b.revoke_access === false && b.bill_now === true)
      throw badRequest(
        'bill_now: true needs revoke_access: true (billing now ends the subscription now); to let it run out to the period end send revoke_access: false alone',
        [{ field: 'bill_now', reason: 'conflict', with: 'revoke_access' }],
      );
    const endsNow = b.revoke_access === true || (b.revoke_access === undefined && b.bill_now === true);
    said.push({
      how: !endsNow
        ? 'turn_off_auto_renew'
        : b.bill_now === false
          ? 'end_current_subscription_and_dont_bill'
          : 'end_current_subscription_and_bill',
      by,
    });
  }
  const distinct = [...new Set(said.map((s) => s.how))];
  if (distinct.length > 1) {
    const a = said[0]!;
    const b2 = said.find((s) => s.how !== a.how)!;
    throw badRequest(`conflicting cancel options: ${a.by} and ${b2.by} ask for different things; send one`, [
      { field: a.by.split(/[ :]/)[0], reason: 'conflict' },
      { field: b2.by.split(/[ :]/)[0], reason: 'conflict' },
    ]);
  }
  const how = distinct[0];
  return how === undefined || how === 'change_subscription_plan' ? null : how;
}

/** The update a cancel intent makes (what PATCH's service takes). */
export function cancelUpdate(how: CancelType, prorate: boolean | undefined): UpdateInput {
  return how === 'turn_off_auto_renew'
    ? { turn_off_auto_renew: true }
    : { replace_immediately_type: how, ...(prorate !== undefined ? { prorate } : {}) };
}

/** PATCH's body with its cancel options (if any) resolved to turn_off_auto_renew / replace_immediately_type. */
export function patchUpdate(body: UpdateInput & CancelOptions): UpdateInput {
  const how = cancelIntent(body);
  const { type: _t, revoke_access: _r, bill_now: _b, turn_off_auto_renew, replace_immediately_type, ...rest } = body;
  const out: UpdateInput = { ...rest };
  if (replace_immediately_type === 'change_subscription_plan') out.replace_immediately_type = replace_immediately_type;
  if (turn_off_auto_renew === false) out.turn_off_auto_renew = false;
  if (how) Object.assign(out, cancelUpdate(how, body.prorate));
  return out;
}
