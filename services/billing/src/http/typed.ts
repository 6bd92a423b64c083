// Routes are declared on a TypeBox-typed instance: req.body / req.params / req.query and the handler's
// reply are typed from the same schemas Fastify validates and serializes with (@meterline/contracts).
import type { FastifyInstance } from 'fastify';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';

export const typed = (app: FastifyInstance) => app.withTypeProvider<TypeBoxTypeProvider>();
