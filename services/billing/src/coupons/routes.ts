import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  Coupon,
  CouponParams,
  CouponRedemption,
  CreateCouponBody,
  CustomerParams,
  ErrorResponse,
  Page,
  PaginationQuery,
  RedeemCouponBody,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function couponRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/coupons',
    {
      schema: {
        summary: 'Create a coupon (percent or amount off; once, repeating N invoices, or forever)',
        tags: ['coupons'],
        body: CreateCouponBody,
        response: { 201: Coupon, 400: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.createCoupon(deps, req.orgId, req.body)),
  );
  app.get(
    '/v1/coupons',
    {
      schema: {
        summary: 'List coupons',
        tags: ['coupons'],
        querystring: Type.Object(PaginationQuery, { additionalProperties: false }),
        response: { 200: Page(Coupon) },
      },
    },
    async (req) => pageOf(await svc.listCoupons(deps, req.orgId, pageParams(req.query)), req.query),
  );
  app.get(
    '/v1/coupons/:coupon_id',
    { schema: { summary: 'Get a coupon', tags: ['coupons'], params: CouponParams, response: { 200: Coupon, 404: ErrorResponse } } },
    async (req) => svc.getCoupon(deps, req.orgId, req.params.coupon_id),
  );
  app.delete(
    '/v1/coupons/:coupon_id',
    {
      schema: {
        summary: 'Archive a coupon (no new redemptions; running ones continue)',
        tags: ['coupons'],
        params: CouponParams,
        response: { 200: Coupon, 404: ErrorResponse },
      },
    },
    async (req) => svc.archiveCoupon(deps, req.orgId, req.params.coupon_id),
  );
  app.post(
    '/v1/customers/:customer_id/coupons',
    {
      schema: {
        summary: "Redeem a coupon for a customer's invoices (or one subscription's)",
        tags: ['coupons'],
        params: CustomerParams,
        body: RedeemCouponBody,
        response: { 201: CouponRedemption, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.redeemCoupon(deps, req.orgId, req.params.customer_id, req.body)),
  );
}
