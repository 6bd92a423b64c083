import { PrivateStack } from '/work/main/test/support/private-stack.ts';
const s = new PrivateStack(19230);
(s as any).stateDir = process.argv[2];
await s.start('clickhouse');
