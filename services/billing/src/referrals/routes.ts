import type { FastifyInstance } from 'fastify';
import { Type } from '@sinclair/typebox';
import {
  CreateReferralProgramBody,
  ErrorResponse,
  Page,
  PaginationQuery,
  RedeemReferralBody,
  ReferralCode,
  ReferralCodeBody,
  ReferralCodeParams,
  ReferralProgram,
  ReferralProgramParams,
  ReferralRedemption,
} from '@meterline/contracts';
import type { Deps } from '../deps.ts';
import { pageOf, pageParams } from '../http/pagination.ts';
import { typed } from '../http/typed.ts';
import * as svc from './service.ts';

export async function referralRoutes(instance: FastifyInstance, deps: Deps): Promise<void> {
  const app = typed(instance);
  app.post(
    '/v1/referral_programs',
    {
      schema: {
        summary: 'Create a referral program (rewards: a coupon and/or credits for the referrer and/or the redeemer)',
        tags: ['referrals'],
        body: CreateReferralProgramBody,
        response: { 201: ReferralProgram, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => reply.code(201).send(await svc.createProgram(deps, req.orgId, req.body)),
  );
  app.get(
    '/v1/referral_programs',
    {
      schema: {
        summary: 'List referral programs',
        tags: ['referrals'],
        querystring: Type.Object(PaginationQuery, { additionalProperties: false }),
        response: { 200: Page(ReferralProgram) },
      },
    },
    async (req) => pageOf(await svc.listPrograms(deps, req.orgId, pageParams(req.query)), req.query),
  );
  app.get(
    '/v1/referral_programs/:program_id',
    {
      schema: {
        summary: 'Get a referral program',
        tags: ['referrals'],
        params: ReferralProgramParams,
        response: { 200: ReferralProgram, 404: ErrorResponse },
      },
    },
    async (req) => svc.getProgram(deps, req.orgId, req.params.program_id),
  );
  app.delete(
    '/v1/referral_programs/:program_id',
    {
      schema: {
        summary: 'Archive a referral program (no new codes or redemptions; granted rewards stay)',
        tags: ['referrals'],
        params: ReferralProgramParams,
        response: { 200: ReferralProgram, 404: ErrorResponse },
      },
    },
    async (req) => svc.archiveProgram(deps, req.orgId, req.params.program_id),
  );
  app.post(
    '/v1/referrals/code',
    {
      schema: {
        summary: "A customer's referral code in a program (the same code on every call)",
        tags: ['referrals'],
        body: ReferralCodeBody,
        response: { 201: ReferralCode, 200: ReferralCode, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.referralCode(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.code);
    },
  );
  app.get(
    '/v1/referrals/codes/:code',
    {
      schema: {
        summary: 'A referral code',
        tags: ['referrals'],
        params: ReferralCodeParams,
        response: { 200: ReferralCode, 404: ErrorResponse },
      },
    },
    async (req) => svc.getCode(deps, req.orgId, req.params.code),
  );
  app.get(
    '/v1/referrals/codes/:code/redemptions',
    {
      schema: {
        summary: "A referral code's redemptions",
        tags: ['referrals'],
        params: ReferralCodeParams,
        querystring: Type.Object(PaginationQuery, { additionalProperties: false }),
        response: { 200: Page(ReferralRedemption), 404: ErrorResponse },
      },
    },
    async (req) => pageOf(await svc.codeRedemptions(deps, req.orgId, req.params.code, pageParams(req.query)), req.query),
  );
  app.post(
    '/v1/referrals/redeem',
    {
      schema: {
        summary: 'Redeem a referral code for a customer: grants the rewards with the redemption (a repeat answers the first, 200)',
        tags: ['referrals'],
        body: RedeemReferralBody,
        response: { 201: ReferralRedemption, 200: ReferralRedemption, 400: ErrorResponse, 404: ErrorResponse, 409: ErrorResponse },
      },
    },
    async (req, reply) => {
      const r = await svc.redeem(deps, req.orgId, req.body);
      return reply.code(r.created ? 201 : 200).send(r.redemption);
    },
  );
}
